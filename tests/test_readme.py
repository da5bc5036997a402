"""Every Python example in the README runs as written, each as its own script, on the embedded model.

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

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)
EXAMPLE_URL = "http://127.0.0.1:8000/v1"


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 4


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
