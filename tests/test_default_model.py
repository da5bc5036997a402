"""The default model, Qwen2.5-Coder-0.5B-Instruct, through the real engine and the default prompt:
`testtime run` with no --model uses it, and its solutions end in a boxed answer that is read back.
The only test that starts it (its conversion, once per machine, is about a minute; every other
engine test runs the faster SmolLM2)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import SHARED_DATA
from testtime.cli import app
from testtime.models import DEFAULT_MODEL


@pytest.mark.engine
def test_run_without_a_model_uses_the_default_and_reads_its_boxed_answers(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--dataset", "gsm8k", "--data-root", str(SHARED_DATA), "--limit", "4",
                                      "--strategy", "majority", "--n", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output[-3000:]
    meta = json.loads((out / "summary.json").read_text())
    assert DEFAULT_MODEL == "qwen2.5-coder-0.5b-instruct" and meta["model"] == DEFAULT_MODEL
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    finished = [c for line in lines for c in line["candidates"] if c.get("finish_reason") == "stop"]
    assert len(finished) >= 6  # at most 2 of 8 solutions run past the default max_tokens
    boxed = [c for c in finished if "\\boxed{" in c["text"]]
    assert len(boxed) >= len(finished) - 1  # the default prompt's answer format is followed
    for c in boxed:
        assert c["answer"] and c["answer"] in c["text"]
