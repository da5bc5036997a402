"""Every Python example in the README and docs/ runs as written, each as its own script, on the embedded
model; every relative link in them points at a file (and heading) that exists.

A script runs in this process as ``__main__`` (its spawn guard taken), with the session's engine lent
wherever it opens the test model (``specs_on``), so no example waits for an engine of its own. The
OpenAI-client example talks to a real testtime server on loopback (the session's engine), put where
the example expects it."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

from conftest import specs_on
from test_server import Served
from testtime.server.config import ServerConfig

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
BLOCKS = [block for page in PAGES for block in re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.S | re.M)]
EXAMPLE_URL = "http://127.0.0.1:8000/v1"


def test_the_readme_has_python_examples():
    assert len(re.findall(r"^```python\n", README.read_text(), flags=re.M)) >= 2  # the Solver and the client
    assert len(BLOCKS) >= 6
    assert len(README.read_text().splitlines()) <= 300  # a guide; the rest lives in docs/


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    return {slug(h) for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_somewhere(page):
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):  # http:, mailto:: not checked here (no network)
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    assert not broken, broken


@pytest.mark.engine
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_a_readme_example_runs(index, engine, tmp_path, monkeypatch, capsys):
    code = BLOCKS[index]
    server = None
    if EXAMPLE_URL in code:
        server = Served(ServerConfig(api_keys=("KEY",), max_tokens=64), engine)
        code = code.replace(EXAMPLE_URL, server.url + "/v1")
    script = tmp_path / f"example_{index}.py"
    script.write_text(code)
    monkeypatch.chdir(tmp_path)
    try:
        with specs_on(engine):
            runpy.run_path(str(script), run_name="__main__")
    finally:
        if server is not None:
            server.close()
    assert capsys.readouterr().out.strip(), f"README example {index} prints what it computed:\n{code}"
