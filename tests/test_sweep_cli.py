"""The scaling sweep through the real CLI: the demo on the embedded model writes the analysis,
the policy and the report; `compute_optimal` runs that policy; `report` and `train-vs-test`
rebuild from the store. Bad input fails with a message naming what was wrong."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from testtime.cli import app

runner = CliRunner()


def test_report_and_train_vs_test_need_stored_runs(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "holds no run (no run.db)" in " ".join(result.output.split())
    result = runner.invoke(app, ["train-vs-test", str(tmp_path), str(tmp_path / "large")])
    assert result.exit_code == 2 and "holds no run" in " ".join(result.output.split())


def test_a_bad_budget_spec_is_named(tmp_path):
    result = runner.invoke(app, ["sweep", "--strategy", "beam_search@4,x", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "'beam_search@4,x': budgets after '@' must be integers" in " ".join(result.output.split())
    assert not (tmp_path / "o").exists()


@pytest.mark.engine
def test_the_demo_writes_the_analysis_policy_and_report(demo_run):
    scaling = json.loads((demo_run / "scaling.json").read_text())
    points = {(p["strategy"], p["budget"]): p for p in scaling["points"]}
    for k in (1, 2, 4):
        assert {("pass@k", k), ("majority", k), ("best_of_n", k), ("adaptive_consistency", k)} <= set(points)
    assert points[("beam_search", 2)]["source"] == "run"
    for p in points.values():
        assert 0 <= p["ci95"][0] <= p["accuracy"] <= p["ci95"][1] <= 1 and p["tokens"] > 0 and p["flops"] > 0
    # One pool: majority@k costs grow with k; pass@k never falls.
    assert points[("majority", 1)]["tokens"] < points[("majority", 2)]["tokens"] < points[("majority", 4)]["tokens"]
    assert points[("pass@k", 1)]["accuracy"] <= points[("pass@k", 2)]["accuracy"] <= points[("pass@k", 4)]["accuracy"]
    assert set(scaling["fits"]["majority"]) == {"tokens", "flops"}
    assert len(scaling["difficulty"]["oracle_of_question"]) == 4
    # summary.json: the runs that ran (the pool, beam search), then every strategy and budget estimated from the pool.
    rows = json.loads((demo_run / "summary.json").read_text())["results"]
    assert [r["strategy"] for r in rows if not r.get("estimated")] == ["pool", "beam_search"]
    estimated = {(r["strategy"], r["budget"]) for r in rows if r.get("estimated")}
    assert {(s, k) for s in ("majority", "best_of_n", "adaptive_consistency") for k in (1, 2, 4)} <= estimated
    policy = json.loads((demo_run / "policy.json").read_text())
    assert policy["version"] == 1 and set(policy["budgets"]) == {"2", "4"}
    html = (demo_run / "report.html").read_text()
    assert "<script src=\"http" not in html and len(html) > 1_000_000  # plotly inlined
    for png in ("accuracy_vs_tokens.png", "coverage.png"):
        assert (demo_run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The report is rebuilt from the store alone, the same analysis.
    before = (demo_run / "scaling.json").read_text()
    (demo_run / "report.html").unlink()
    assert runner.invoke(app, ["report", str(demo_run)]).exit_code == 0
    assert (demo_run / "report.html").exists() and (demo_run / "scaling.json").read_text() == before


def test_compute_optimal_runs_the_policy_a_sweep_learned(demo_run, on_engine, tmp_path):
    out = tmp_path / "co"
    result = on_engine("run", "--dataset", "sample", "--limit", "3", "--strategy", "compute_optimal", "--policy",
                       demo_run / "policy.json", "--n", "4", "--verifier", "arithmetic", "--max-tokens", "96",
                       "--out", out)
    assert result.exit_code == 0, result.output[-3000:]
    policy = json.loads((demo_run / "policy.json").read_text())["budgets"]["4"]
    chosen = {f"{c['strategy']}@{c['budget']}" for c in policy["choices"]}
    for line in map(json.loads, (out / "results.jsonl").read_text().splitlines()):
        probe = line["probe"]
        assert probe["samples"] == 2 and 1 <= probe["level"] <= 5 and probe["choice"] in chosen
        assert line["ledger"]["completion_tokens"] >= sum(c["tokens"] for c in line["candidates"])
