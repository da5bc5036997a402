"""`testtime report` and `train-vs-test`: analyses of stored runs."""

from __future__ import annotations

from pathlib import Path

import typer

from testtime.analysis.paired import Difference
from testtime.cli.app import app
from testtime.cli.console import console, fail, json_option, print_analysis
from testtime.store import RunStore
from testtime.workflows import train_vs_test


def open_run(run_dir: Path) -> RunStore:
    if not (run_dir / "run.db").exists():
        fail(f"{run_dir} holds no run (no run.db); make one with `testtime sweep --out {run_dir}`")
    try:
        return RunStore(run_dir)
    except ValueError as exc:
        fail(str(exc))


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a run directory (holding run.db)"),
           as_json: bool = json_option()):
    """(Re)write the scaling analysis, policy.json and report.html of a stored run."""
    store = open_run(run_dir)
    try:
        print_analysis(store, as_json=as_json)
    except ValueError as exc:
        fail(f"{run_dir}: {exc}")
    store.close()


@app.command("train-vs-test")
def train_vs_test_command(
    sweep_dir: Path = typer.Argument(..., help="the small model's sweep (run directory)"),
    large_run: Path = typer.Argument(..., help="a larger model's greedy run on the same questions "
                                               "(`run --strategy single --temperature 0`)"),
    # Qwen2.5-Coder 0.5B and 1.5B: Qwen2.5's 18T pretraining tokens (arXiv 2412.15115) continued on 5.5T
    # (arXiv 2409.12186), the same for both sizes; SmolLM2-135M: 2T (arXiv 2502.02737).
    small_pretrain_tokens: float = typer.Option(23.5e12, help="the small model's pretraining tokens "
                                                              "(Qwen2.5-Coder-0.5B: 18T + 5.5T)"),
    large_pretrain_tokens: float = typer.Option(23.5e12, help="the larger model's pretraining tokens "
                                                              "(Qwen2.5-Coder-1.5B: 18T + 5.5T)"),
    ratio: list[float] = typer.Option([0.1, 1.0, 10.0], help="R = inference tokens / pretraining tokens; repeat"),
):
    """FLOPs-matched: the small model with test-time compute against a larger model answering greedily."""
    small_store, large_store = open_run(sweep_dir), open_run(large_run)
    try:
        result = train_vs_test(small_store, large_store, small_pretrain_tokens, large_pretrain_tokens, ratio)
    except ValueError as exc:
        fail(f"train-vs-test: {exc}")
    for r in result["rows"]:
        small_side = f"{r['small_best']} {r['small_accuracy']:.1%}" if r["small_best"] else "no swept point fits"
        verdict = (Difference.from_dict(r["difference"]).describe("the small model", "the larger model")
                   if r["difference"] else "nothing to compare")
        console.print(f"  R={r['R']:g}: X={r['X']:.1f}; small model {small_side} against the larger model's "
                      f"greedy {r['large_accuracy']:.1%}: {verdict}")
    print_analysis(small_store)
    small_store.close()
    large_store.close()
