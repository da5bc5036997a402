"""Run strategies on tasks, committing each batch of questions to the run store.

A ``Plan`` is units (a strategy with its parameters, and a seed) times tasks,
cut into fixed chunks of questions. Each chunk is one batched ``solve`` and one
committed transaction, so an interrupted run resumes by recomputing only the
chunks not stored, with exactly the batches (and so the results) it would have
had uninterrupted. ``results.jsonl`` and ``summary.json`` are derived from the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, Protocol, Sequence

from testtime.domains import grade_results
from testtime.generators.base import Prompt, PromptTooLongError
from testtime.prompting import PromptTemplate
from testtime.strategies.base import Context, QuestionResult, Strategy
from testtime.store import RunStore
from testtime.tasks import Task


@dataclass(frozen=True)
class Unit:
    """One strategy, with its parameters, at one seed: one row of a summary."""

    strategy: Strategy
    seed: int = 0

    def description(self) -> dict:
        return {**self.strategy.describe(), "seed": self.seed}

    @property
    def key(self) -> str:
        return json.dumps(self.description(), sort_keys=True)

    def line(self, result: QuestionResult) -> dict:
        return {"strategy": self.strategy.name, "budget": getattr(self.strategy, "budget", None),
                "seed": self.seed, **result.to_dict()}


Chunk = list[tuple[int, Task]]  # (position in the task list, task)


@dataclass
class Plan:
    units: list[Unit]
    tasks: list[Task]
    chunk_size: int = 32  # questions per batched solve and per committed transaction

    def __post_init__(self):
        if self.chunk_size < 1:
            raise ValueError(f"chunk size must be at least 1, got {self.chunk_size}")
        ids = [t.id for t in self.tasks]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids must be unique within a run")

    def chunks(self) -> list[Chunk]:
        indexed = list(enumerate(self.tasks))
        return [indexed[i : i + self.chunk_size] for i in range(0, len(indexed), self.chunk_size)]

    def pending(self, store: RunStore) -> Iterator[tuple[Unit, Chunk]]:
        """Every (unit, chunk) with questions not yet in the store, in plan order."""
        for unit in self.units:
            done = store.finished(unit.key)
            for chunk in self.chunks():
                left = [(i, t) for i, t in chunk if t.id not in done]
                if left:
                    yield unit, left

    def config(self) -> dict:
        """The settings a resumed run must share."""
        return {"questions": [t.id for t in self.tasks], "plan": [u.description() for u in self.units],
                "chunk_size": self.chunk_size}


class PromptCounter(Protocol):
    """What the prompt-length check needs: a generator, or a tokenizer alone (``GeneratorSpec.prompt_counter``)."""

    max_model_len: int | None

    def count_prompt_tokens(self, prompt: Prompt) -> int | None: ...


def check_prompts_fit(tasks: Sequence[Task], counter: PromptCounter | None,
                      template: PromptTemplate = PromptTemplate()) -> None:
    """Fail before any generation if a question's prompt cannot fit the model's context."""
    limit = counter.max_model_len if counter is not None else None
    if not limit:
        return
    for task in tasks:
        used = counter.count_prompt_tokens(template.build(task))
        if used is not None and used >= limit:
            where = task.source or task.id
            raise PromptTooLongError(
                f"{where}: the question's prompt is {used} tokens, longer than the model's context of {limit}"
            )


def solve_chunk(unit: Unit, chunk: Chunk, ctx: Context) -> list[tuple[int, dict]]:
    """Solve one chunk with the unit's strategy and seed; (position, result line) pairs."""
    ctx = replace(ctx, seed=unit.seed)
    results = unit.strategy.solve([t for _, t in chunk], ctx)
    grade_results([(r.task, r.candidates) for r in results])  # every candidate, once, as it is stored
    return [(i, unit.line(r)) for (i, _), r in zip(chunk, results)]


Solved = tuple[str, list[tuple[int, dict]], str]  # (unit key, (position, line) pairs, worker name)


def execute(plan: Plan, ctx: Context, store: RunStore,
            on_commit: Callable[[Unit, list[dict]], None] | None = None) -> int:
    """Solve every pending chunk in this process, committing each as it finishes; the number solved.

    Every prompt is checked against the context before anything is generated."""
    check_prompts_fit(plan.tasks, ctx.generator, ctx.template)
    return commit_all(plan, store, ((u.key, solve_chunk(u, chunk, ctx), "") for u, chunk in plan.pending(store)),
                      on_commit)


def commit_all(plan: Plan, store: RunStore, solved: Iterable[Solved],
               on_commit: Callable[[Unit, list[dict]], None] | None = None) -> int:
    """The one loop of every executor (this process, Ray): commit each solved chunk the moment it comes.

    ``on_commit`` gets the unit and the result lines just committed."""
    store.add_units([(u.key, u.description()) for u in plan.units])
    units = {u.key: u for u in plan.units}
    count = 0
    for key, lines, worker in solved:
        store.add(key, lines, worker=worker)
        count += len(lines)
        if on_commit:
            on_commit(units[key], [line for _, line in lines])
    return count
