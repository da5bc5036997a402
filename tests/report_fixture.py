"""A small fake run for the report tests: a shared sample pool, two beam searches and revisions.

The generators are the deterministic fakes of fakes.py, not a model. Each question
"What is a + b?" has its own chance that a sample is right, so the questions span
easy to hard and the difficulty panels have something to bin. A wrong sample either
miscalculates (the arithmetic verifier catches it) or answers a - b with correct
arithmetic (it does not), so verifier-guided selection helps without being perfect.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fakes import SeededGenerator, StepGenerator
from testtime.analysis.sweep import SweepAnalysis
from testtime.analysis.train_vs_test import ModelCost, compare
from testtime.report import explorer_data, write_report
from testtime.runner import Unit
from testtime.strategies import Context, Strategy
from testtime.tasks import Task
from testtime.verifiers import Verifier

HOSTILE = "</script><b>x"  # a question text that must not break out of the embedded JSON


def make_tasks(count: int = 12) -> list[Task]:
    tasks = []
    for i in range(count):
        a, b = 3 + 7 * i, 2 + 3 * i
        question = f"What is {a} + {b}?" + (f" {HOSTILE}" if i == 1 else "")
        tasks.append(Task(f"q{i}", question, str(a + b), meta={"a": a, "b": b, "p_right": 1 - i / (count - 1)}))
    return tasks


def _solution(a: int, b: int, kind: str) -> list[str]:
    """The steps of one answer: "right", "slip" (false arithmetic) or "minus" (wrong operation)."""
    op, value = ("-", a - b) if kind == "minus" else ("+", a + b + (kind == "slip"))
    return [f"{a} {op} {b} = {value}\n\n", f"{value} * 1 = {value}\n\n", f"The answer is: {value}"]


def _task_of(tasks: list[Task], message: str) -> Task:
    return next(t for t in tasks if t.question in message)


def _kind(task: Task, draw: int) -> str:
    if draw % 100 < 100 * task.meta["p_right"]:
        return "right"
    return "slip" if draw % 2 else "minus"


def fake_run(tasks: list[Task], seeds: tuple[int, ...] = (0, 1)) -> list[tuple[dict, list[dict]]]:
    """(unit description, result lines) per unit, as the run store hands them to the analysis."""
    verifier = Verifier.create("arithmetic")

    def whole(message: str, draw: int) -> str:
        task = _task_of(tasks, message)
        return "".join(_solution(task.meta["a"], task.meta["b"], _kind(task, draw)))

    def step(message: str, steps: list[str], index: int) -> str:
        task = _task_of(tasks, message)
        a, b = task.meta["a"], task.meta["b"]
        # The first step's quality cycles with the sample index: an easy question's first sample
        # is right, a medium one needs four samples (budget 4), a hard one's "minus" always wins.
        p = task.meta["p_right"]
        kinds = ["right", "slip"] if p > 0.6 else ["slip", "slip", "right", "minus"] if p > 0.3 else ["slip", "minus"]
        if not steps:
            return _solution(a, b, kinds[index % len(kinds)])[0]
        kind = next(k for k in ("right", "slip", "minus") if steps[0] == _solution(a, b, k)[0].strip())
        return _solution(a, b, kind)[len(steps)]

    units = []
    for seed in seeds:
        units.append((Unit(Strategy.create("pool", budget=8), seed),
                      Context(generator=SeededGenerator(whole), verifier=verifier, seed=seed)))
    for budget in (2, 4):
        units.append((Unit(Strategy.create("beam_search", budget=budget, width=2), 0),
                      Context(generator=StepGenerator(step), verifier=verifier)))
    units.append((Unit(Strategy.create("revisions", budget=4, chains=2), 0),
                  Context(generator=SeededGenerator(whole), verifier=verifier)))
    out = []
    for unit, ctx in units:
        results = unit.strategy.solve(tasks, ctx)
        out.append((unit.description(), [unit.line(r) for r in results]))
    return out


def build_report(run_dir: Path, *, train_vs_test: bool = True) -> tuple[list[Path], dict, list[dict]]:
    """Run the fake sweep, analyse it, and write the report into run_dir."""
    tasks = make_tasks()
    lines_by_unit = fake_run(tasks)
    analysis = SweepAnalysis(lines_by_unit, strategies=["majority", "best_of_n", "single"])
    scaling = analysis.to_dict()
    if train_vs_test:  # the small model's sweep against a 10x larger fake model's greedy answers (60 % right)
        small, large = ModelCost("fake-small", 135_000_000, 2e12), ModelCost("fake-large", 1_350_000_000, 2e12)
        large_correct = np.arange(len(analysis.ids)) % 5 < 3
        scaling["train_vs_test"] = compare(small, large, large_correct, 30.0, scaling["points"],
                                           [p.correct for p in analysis.points], [0.1, 1.0, 10.0])
    explorer = explorer_data(lines_by_unit)
    meta = {"model": "scripted fake", "dataset": "synthetic addition", "questions": len(tasks),
            "date": "2025-01-01", "sampling": {"temperature": 0.8, "top_p": 1.0, "max_tokens": 256, "stop": None}}
    paths = write_report(run_dir, scaling, explorer, title="Fake scaling sweep", meta=meta)
    return paths, scaling, explorer
