"""Run strategies on tasks and write what they did.

Output (a run directory): ``results.jsonl`` with one line per question and
strategy/budget, and ``summary.json`` whose ``results`` list holds one row per
strategy and budget. Both are written to temporary files and renamed only once
everything succeeded, so a failed run leaves no half-written output.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from testtime import __version__
from testtime.analysis import summary_row
from testtime.generators.base import PromptTooLongError
from testtime.strategies.base import Context, QuestionResult, Strategy
from testtime.tasks import Task


@dataclass
class StrategyRun:
    """One strategy at one budget on a set of tasks."""

    strategy: dict  # the strategy's name and parameters
    results: list[QuestionResult]

    @property
    def summary(self) -> dict:
        return summary_row(
            self.strategy, [r.correct for r in self.results], [r.ledger for r in self.results]
        )


@dataclass
class RunRecord:
    """Everything a run directory holds."""

    runs: list[StrategyRun] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {"testtime_version": __version__, **self.meta, "results": [r.summary for r in self.runs]}

    def result_lines(self) -> Iterable[str]:
        for run in self.runs:
            for result in run.results:
                line = {"strategy": run.strategy["strategy"], "budget": run.strategy.get("budget"), **result.to_dict()}
                yield json.dumps(line, ensure_ascii=False)


def check_prompts_fit(tasks: Sequence[Task], ctx: Context) -> None:
    """Fail before any generation if a question's prompt cannot fit the model's context."""
    limit = ctx.generator.max_model_len
    if not limit:
        return
    for task in tasks:
        used = ctx.generator.count_prompt_tokens(ctx.template.build(task))
        if used is not None and used >= limit:
            where = task.source or task.id
            raise PromptTooLongError(
                f"{where}: the question's prompt is {used} tokens, longer than the model's context of {limit}"
            )


def run_strategy(strategy: Strategy, tasks: Sequence[Task], ctx: Context) -> StrategyRun:
    check_prompts_fit(tasks, ctx)
    return StrategyRun(strategy.describe(), strategy.solve(tasks, ctx))


def write_run(out_dir: str | Path, record: RunRecord) -> Path:
    """Write both files to temporaries first and rename them only when both are complete."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    contents = {
        "results.jsonl": "".join(line + "\n" for line in record.result_lines()),
        "summary.json": json.dumps(record.summary(), indent=2) + "\n",
    }
    temporaries = {}
    try:
        for name, text in contents.items():
            fd, temporaries[name] = tempfile.mkstemp(prefix=f".{name}.", dir=out)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
        for name, tmp in temporaries.items():
            os.replace(tmp, out / name)
    finally:
        for tmp in temporaries.values():
            if os.path.exists(tmp):
                os.unlink(tmp)
    return out


def run_meta(ctx: Context, dataset: str, model: str, verifier: str | None) -> dict:
    return {
        "dataset": dataset,
        "model": model,
        "generator": ctx.generator.name,
        "parameters": ctx.generator.parameter_count,
        "verifier": verifier,
        "seed": ctx.seed,
        "sampling": asdict(ctx.sampling),
    }
