"""Workflows: what the commands do, as plain functions that print nothing.

The command line, the server and the Python API call these; each takes checked
objects (see ``testtime.specs``) and a run store, and reports progress through
callbacks, so that the same work runs the same way from every entry point.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from testtime.analysis.estimators import pass_at_k
from testtime.domains import Reply, grade_results, make_candidates
from testtime.generators import Generator, GeneratorSpec, SamplingParams
from testtime.runner import Plan, Unit, execute
from testtime.store import RunStore
from testtime.strategies import Context
from testtime.tasks import Task, json_object
from testtime.verifiers import Verifier


def execute_plan(plan: Plan, spec: GeneratorSpec, verifier: Verifier | None, sampling: SamplingParams,
                 store: RunStore, *, run_meta: dict, ray: str | None = None, workers: int = 2,
                 open_generator: Callable[[GeneratorSpec], Generator] = GeneratorSpec.open,
                 on_commit: Callable[[Unit, list[dict]], None] | None = None, thinking_split: str = "paragraph") -> None:
    """Solve every chunk the store lacks, in this process or on Ray workers.

    What ran (``run_meta`` with the generator's name and parameter count) is recorded in the
    store. A failure keeps every committed chunk: a later call with the same plan resumes.
    ``thinking_split``: how a process verifier cuts a thought in tags into steps (``Context``)."""
    if not any(True for _ in plan.pending(store)):
        return
    store.set_meta("started", time.time())  # this session's start: the live view's pace counts from it
    if ray:
        from testtime.distributed import execute_on_ray

        info = execute_on_ray(plan, spec, verifier, sampling, store, address=ray, workers=workers,
                              on_commit=on_commit, thinking_split=thinking_split)
        store.set_meta("run", {**run_meta, "ray": ray, "workers": workers, **info})
        return
    with open_generator(spec) as gen:
        store.set_meta("run", {**run_meta, "generator": gen.name, "parameters": gen.parameter_count})
        execute(plan, Context(generator=gen, verifier=verifier, sampling=sampling, seed=spec.seed,
                              thinking_split=thinking_split), store, on_commit=on_commit)


def analyse(store: RunStore) -> tuple[dict, list[Path]]:
    """The scaling analysis, the policy for ``compute_optimal`` and the report, from a stored sweep.

    Returns the analysis (as written to scaling.json) and the files written."""
    from testtime.analysis.sweep import SweepAnalysis
    from testtime.report import explorer_data, write_report

    lines_by_unit = store.lines_by_unit()
    config, meta = store.config, store.get_meta("run", {})
    analysis = SweepAnalysis(lines_by_unit, strategies=config.get("pool_strategies", ()),
                             seed=int(meta.get("seed", 0) or 0))
    scaling = analysis.to_dict()
    if train_vs_test := store.get_meta("train_vs_test"):
        scaling["train_vs_test"] = train_vs_test
    written = [store.write_derived("scaling.json", json.dumps(scaling, indent=1) + "\n")]
    # summary.json: the stored runs' rows, then one row per strategy and budget estimated from the pool.
    summary = store.summary(lines_by_unit)
    summary["results"] += [{**p, "estimated": True} for p in scaling["points"] if p["source"] == "pool"]
    written.append(store.write_derived("summary.json", json.dumps(summary, indent=2) + "\n"))
    if policy := analysis.deployable_policy():
        written.append(store.write_derived("policy.json", json.dumps(policy, indent=1) + "\n"))
    created = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(store.get_meta("created") or 0))
    written += write_report(store.run_dir, scaling, explorer_data(lines_by_unit),
                            title=f"testtime sweep: {meta.get('dataset', config.get('dataset', ''))}",
                            meta={**meta, "created": created})
    return scaling, written


def train_vs_test(small_store: RunStore, large_store: RunStore, small_pretrain_tokens: float,
                  large_pretrain_tokens: float, ratios: list[float]) -> dict:
    """FLOPs-matched comparison of the small model's sweep against a larger model's greedy run.

    The result is recorded in the small run's store (the next analysis shows it) and returned."""
    from testtime.analysis.sweep import SweepAnalysis
    from testtime.analysis.train_vs_test import ModelCost, compare

    large_units = [(d, lines) for d, lines in large_store.lines_by_unit() if lines]
    if not large_units:
        raise ValueError(f"{large_store.run_dir} holds no results")
    description, lines = large_units[0]
    small_lines = small_store.lines_by_unit()
    small_ids = {line["id"] for _, ls in small_lines for line in ls}
    if {line["id"] for line in lines} != small_ids:
        raise ValueError(f"{large_store.run_dir} and {small_store.run_dir} were run on different questions")
    small_meta, large_meta = small_store.get_meta("run", {}), large_store.get_meta("run", {})
    try:
        large = ModelCost(large_meta.get("model", "large"), int(large_meta["parameters"]), large_pretrain_tokens)
        small = ModelCost(small_meta.get("model", "small"), int(small_meta["parameters"]), small_pretrain_tokens)
    except KeyError as exc:
        raise ValueError(f"a run records no {exc} (was it made by `testtime run`?)") from None
    [row] = large_store.summary([(description, lines)])["results"]
    # Only the points are needed here; the whole analysis runs once, in analyse().
    analysis = SweepAnalysis(small_lines, strategies=small_store.config.get("pool_strategies", ()))
    points = [p.to_dict(analysis.seed) for p in analysis.points]
    large_correct = {str(line["id"]): float(bool(line["correct"])) for line in lines}
    result = compare(small, large, [large_correct[str(q)] for q in analysis.ids],
                     row["policy_flops"] / len(lines) / (2 * large.parameters), points,
                     [p.correct for p in analysis.points], ratios, seed=analysis.seed)
    result = {**result, "large_run": str(large_store.run_dir), "large_strategy": description}
    small_store.set_meta("train_vs_test", result)
    return result


def grade_samples(tasks: list[Task], samples: Path) -> tuple[list[dict], dict[str, float]]:
    """Samples made anywhere (JSONL rows with ``task_id`` and ``completion``) graded by their tasks'
    own checks; (each row with ``passed``, ``result`` and ``error``; unbiased pass@k for every k in
    1, 10, 100 that each graded task has samples for). Any bad row is an error naming its line, raised
    before anything runs."""
    by_id = {t.id: t for t in tasks}
    rows = _sample_rows(samples, by_id)
    replies = [Reply(by_id[r["task_id"]], r["completion"], 0) for r in rows]
    candidates = make_candidates(replies)
    grade_results([(reply.task, [c]) for reply, c in zip(replies, candidates)])
    graded = [{**row, "passed": bool(c.correct), "result": (c.verdict or {}).get("status", "error"),
               "error": (c.verdict or {}).get("error")} for row, c in zip(rows, candidates)]
    counts: dict[str, list[int]] = {}
    for row in graded:
        n_c = counts.setdefault(row["task_id"], [0, 0])
        n_c[0] += 1
        n_c[1] += row["passed"]
    fewest = min(n for n, _ in counts.values())
    return graded, {f"pass@{k}": float(np.mean([pass_at_k(n, c, k) for n, c in counts.values()]))
                    for k in (1, 10, 100) if k <= fewest}


def _sample_rows(samples: Path, by_id: dict[str, Task]) -> list[dict]:
    if not samples.is_file():
        raise ValueError(f"{samples}: no such file")
    rows = []
    with samples.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{samples}:{lineno}"
            row = json_object(line, where)
            for key in ("task_id", "completion"):
                if not isinstance(row.get(key), str):
                    raise ValueError(f"{where}: field {key!r} must be a string")
            if row["task_id"] not in by_id:
                raise ValueError(f"{where}: task_id {row['task_id']!r} is not a task of the dataset")
            if by_id[row["task_id"]].domain != "code":
                raise ValueError(f"{where}: task {row['task_id']!r} is not a code task; grade grades programs")
            rows.append(row)
    if not rows:
        raise ValueError(f"{samples}: the file holds no samples")
    return rows
