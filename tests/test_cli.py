"""The command line: bad input fails early with a clear message, a non-zero
exit and no output; commands run on the embedded model (a run in its own process: test_default_model.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import SHARED_DATA, TEST_MODEL, free_port, with_test_model
from testtime.cli import app

runner = CliRunner()


def run_cli(*args):
    return runner.invoke(app, with_test_model(args))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--n", "0"], "budget must be an integer >= 1, got 0"),
        (["--verifier", "nope"], "unknown verifier 'nope'"),
        (["--strategy", "best_of_n"], "needs a verifier"),
        (["--dataset", "nope"], "unknown dataset 'nope'"),
        (["--aggregation", "median", "--verifier", "arithmetic"],
         "verifier 'arithmetic': parameter aggregation = 'median': expected one of product, min, last, mean"),
        (["--limit", "0"], "limit must be >= 1"),
        (["--temperature", "-1"], "temperature must be >= 0"),
        (["--backend", "nope"], "unknown backend 'nope'"),
        (["--aggregation", "min"], "aggregation applies to a verifier's step scores: name a verifier too"),
        (["--strategy", "majority", "--width", "4"], "strategy 'majority' does not take width"),
        (["--strategy", "beam_search", "--verifier", "arithmetic", "--n", "6", "--width", "4"],
         "budget (6) must be a multiple of width (4)"),
        (["--strategy", "beam_search", "--verifier", "arithmetic", "--selector", "visits"], "selector must be one of"),
        (["--strategy", "rebase", "--verifier", "arithmetic", "--softmax-temperature", "0"], "temperature must be > 0"),
        (["--strategy", "mcts", "--verifier", "arithmetic", "--lookahead", "2"], "'mcts' does not take lookahead"),
        (["--strategy", "dvts"], "needs a verifier"),
        (["--strategy", "beam_search", "--verifier", "arithmetic", "--param", "width=x"],
         "strategy 'beam_search': parameter width = 'x': expected an integer"),
        (["--strategy", "beam_search", "--verifier", "arithmetic", "--param", "rollout=true"],
         "strategy 'beam_search' does not take rollout; strategies that do: mcts"),
        (["--param", "width"], "--param 'width': expected NAME=VALUE"),
        (["--param", "budget=3"], "budget is not a strategy parameter here"),
        (["--strategy", "mcts", "--verifier", "arithmetic", "--n", "4", "--width", "8"],
         "strategy 'mcts': width (8) must be at most the budget (4)"),
        (["--verifier", "served"], "verifier 'served' needs url"),
        (["--verifier", "llm_judge"], "verifier 'llm_judge' needs generator"),
        (["--model", "smollm2"], "unknown model 'smollm2': not an embedded model (smollm2-135m-instruct"),
        (["--dtype", "float8"], "dtype 'float8' is not one of auto, float32, bfloat16, float16"),
        (["--thinking-split", "words"], "thinking split 'words' is not one of paragraph, sentence, markers"),
        (["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--dtype", "float32"],
         "a served model's dtype is the server's own setting"),
    ],
)
def test_bad_arguments(tmp_path, args, message):
    out = tmp_path / "out"
    result = run_cli("run", "--data-root", str(SHARED_DATA), "--limit", "2", "--out", str(out), *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (out / "results.jsonl").exists() and not (out / "summary.json").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"question": "a", "answer": "1"}\nnot json\n', "bad.jsonl:2: malformed JSON"),
        ('{"question": "a", "answer": "1"}\n{"answer": "2"}\n', "bad.jsonl:2: missing field 'question'"),
    ],
)
def test_bad_dataset_file(tmp_path, content, message):
    data = tmp_path / "bad.jsonl"
    data.write_text(content)
    out = tmp_path / "out"
    result = run_cli("run", "--dataset", str(data), "--out", str(out))
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not out.exists()


def test_demo_rejects_an_unknown_strategy(tmp_path):
    result = run_cli("demo", "--strategy", "nope", "--out", str(tmp_path / "d"))
    assert result.exit_code == 2 and "unknown strategy 'nope'" in result.output
    assert not (tmp_path / "d").exists()


def test_custom_field_names_are_used(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text('{"q": "1+1?", "a": "2"}\n')
    result = run_cli("run", "--dataset", str(data), "--question-field", "q", "--answer-field", "a", "--out", str(tmp_path / "o"),
                     "--strategy", "nope")
    # the dataset parsed (its fields were found), so the next error is about the strategy
    assert "unknown strategy" in result.output


def test_strategies_lists_every_strategy():
    result = run_cli("strategies")
    for name in ("single", "majority", "best_of_n", "weighted_best_of_n", "adaptive_consistency", "arithmetic",
                 "beam_search", "dvts", "lookahead", "mcts", "particle_filtering", "rebase"):
        assert name in result.output


def test_prompt_longer_than_context_fails_before_any_engine_starts(tmp_path):
    data = tmp_path / "long.jsonl"
    data.write_text('{"question": "short?", "answer": "1"}\n' + json.dumps({"question": "word " * 3000, "answer": "1"}) + "\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "testtime", "run", "--dataset", str(data), "--out", str(out),
                           "--model", TEST_MODEL],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    assert "long.jsonl:2" in proc.stderr and "longer than the model's context" in proc.stderr
    # Counted with the tokenizer alone: the run stopped before its store (and so its engine) started.
    assert not (out / "results.jsonl").exists() and not (out / "run.db").exists()


def test_run_beam_search_from_the_cli_saves_the_tree(on_engine, tmp_path):
    out = tmp_path / "run"
    result = on_engine("run", "--dataset", "sample", "--limit", "2", "--strategy", "beam_search", "--verifier",
                       "arithmetic", "--n", "4", "--width", "2", "--depth", "4", "--delimiter", "\\n",
                       "--max-tokens", "96", "--out", out)
    assert result.exit_code == 0, result.output[-3000:]
    lines = [json.loads(l) for l in (out / "results.jsonl").read_text().splitlines()]
    assert len(lines) == 2
    for line in lines:
        nodes = line["tree"]["nodes"]
        assert max(n["depth"] for n in nodes) <= 4
        assert any(n["text"].endswith("\n") and not n["terminal"] for n in nodes[1:])  # the "\\n" reached the search
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"][0]["strategy"] == "beam_search" and summary["results"][0]["width"] == 2


def test_sweep_rejects_an_option_no_chosen_strategy_takes(tmp_path):
    result = run_cli("sweep", "--data-root", str(SHARED_DATA), "--limit", "2", "--out", str(tmp_path / "o"),
                     "--strategy", "majority", "--strategy", "single", "--width", "4")
    assert result.exit_code == 2
    assert "strategies 'majority', 'single' do not take width; strategies that do: beam_search" in (
        " ".join(result.output.split()))


def test_resume_needs_a_stored_run(tmp_path):
    result = run_cli("sweep", "--data-root", str(SHARED_DATA), "--limit", "2", "--out", str(tmp_path / "o"), "--resume")
    assert result.exit_code == 2 and "holds no run to resume" in " ".join(result.output.split())


def test_an_unreachable_server_fails_cleanly_and_a_resume_must_match_its_settings(tmp_path):
    out = tmp_path / "o"
    args = ["sweep", "--dataset", "sample", "--limit", "2", "--backend", "openai", "--base-url",
            f"http://127.0.0.1:{free_port()}/v1", "--parameters", "1000", "--retries", "2", "--out", str(out)]
    result = run_cli(*args)
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and "failed 2 times" in message and "APIConnectionError" in message
    assert "0 finished results are kept" in message and not (out / "results.jsonl").exists()
    changed = run_cli(*args, "--resume", "--max-tokens", "64", "--seed", "3")
    message = " ".join(changed.output.split())
    assert changed.exit_code == 2
    assert "sampling.max_tokens: stored 640, now 64" in message and '"seed": 3' in message
    again = run_cli(*args)
    assert again.exit_code == 2 and "failed 2 times" in " ".join(again.output.split())  # no results: may start anew


NEW_STRATEGY = '''from dataclasses import dataclass, field

from testtime.strategies.parallel import ParallelStrategy


@dataclass
class ShortestAnswer(ParallelStrategy):
    """The shortest of N samples that has at least min_tokens tokens."""

    name = "shortest"
    min_tokens: int = field(default=1, metadata={"help": "ignore samples shorter than this"})

    def choose(self, candidates):
        kept = [c for c in candidates if c.tokens >= self.min_tokens] or candidates
        return min(kept, key=lambda c: c.tokens) if kept else None
'''


@pytest.mark.engine
def test_a_new_strategy_is_one_new_file(tmp_path):
    """A copy of the package with one file added to strategies/ (the source tree is left alone)."""
    import shutil
    from pathlib import Path

    import testtime

    package = tmp_path / "site" / "testtime"
    shutil.copytree(Path(testtime.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "strategies" / "shortest.py").write_text(NEW_STRATEGY)
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path / "site")}

    def testtime_command(*args):
        return subprocess.run([sys.executable, "-m", "testtime", *with_test_model(args)], capture_output=True, text=True, env=env,
                              timeout=600)

    listing = testtime_command("strategies")
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert "shortest " in listing.stdout and "--param min_tokens: an integer = 1  (ignore samples shorter than this)" \
        in listing.stdout
    out = tmp_path / "run"
    ran = testtime_command("run", "--dataset", "sample", "--limit", "2", "--strategy", "shortest", "--budget", "2",
                           "--param", "min_tokens=3", "--max-tokens", "16", "--out", str(out))
    assert ran.returncode == 0, ran.stderr[-2000:]
    [row] = json.loads((out / "summary.json").read_text())["results"]
    assert (row["strategy"], row["budget"], row["min_tokens"], row["questions"]) == ("shortest", 2, 3, 2)
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    for line in lines:
        kept = [c for c in line["candidates"] if c["tokens"] >= 3] or line["candidates"]
        assert line["candidates"][line["chosen"]]["tokens"] == min(c["tokens"] for c in kept)


def test_a_label_in_brackets_is_printed_as_written_not_read_as_markup(capsys):
    from testtime.cli.console import print_points

    label = "revisions[chains=2]"
    print_points({"questions": 4, "orders": 64, "fits": {label: {"tokens": {"a": 0.1, "b": 0.02, "r2": 0.5}}},
                  "points": [{"strategy": label, "budget": 4, "source": "run", "accuracy": 0.5, "ci95": [0.1, 0.9],
                              "tokens": 100, "flops": 1e12, "wall_seconds": 1.0}]})
    printed = capsys.readouterr()
    assert " ".join((printed.out + printed.err).split()).count(label) == 2  # the table's row and the fit's line
