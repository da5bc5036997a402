"""Process labels from the policy's own rollouts (Math-Shepherd's Monte Carlo estimate).

For each question a few solutions are sampled and split into steps. The value of
step i is estimated as the fraction of continuations from the prefix s_1..s_i that
reach the gold answer: ``rollouts`` fresh ones, plus the solution's own ending,
which is itself a draw from the policy given that prefix. Soft label = that
fraction; hard label = whether any continuation got there. The last step's value
is the solution's own correctness.

Fresh rollouts are spent only on questions one of whose samples is right: on a
weak policy the others' values are almost all 0, and rolling them out would cost
most of the budget. Their steps are labelled from their own endings alone (one
continuation each), which costs nothing; ``rollout_unsolved`` rolls them out too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

from testtime.answers import answers_match, extract_answer
from testtime.generators.base import DEFAULT_MAX_TOKENS, GenerationRequest
from testtime.steps import DEFAULT_STEP_DELIMITER, split_steps
from testtime.store import RunStore
from testtime.strategies.base import Context
from testtime.tasks import Task

LABEL_UNIT = "labels"


@dataclass(frozen=True)
class LabelParams:
    samples: int = 6  # solutions sampled per question
    rollouts: int = 2  # fresh continuations from each intermediate step prefix
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = 0.8
    rollout_unsolved: bool = False
    step_delimiter: str = DEFAULT_STEP_DELIMITER
    chunk: int = 16  # questions per batched engine call (and per commit)

    def __post_init__(self):
        for name in ("samples", "max_tokens", "chunk"):
            if getattr(self, name) < 1:
                raise ValueError(f"LabelParams.{name} must be >= 1, got {getattr(self, name)}")
        if self.rollouts < 0:
            raise ValueError(f"LabelParams.rollouts must be >= 0, got {self.rollouts}")

    def to_dict(self) -> dict:
        return asdict(self)


def _reaches(text: str, task: Task) -> bool:
    return answers_match(extract_answer(text), task.answer)


def label_tasks(tasks: Sequence[Task], ctx: Context, params: LabelParams) -> list[dict]:
    """One record per question: its solutions, and each labelled solution's steps with values."""
    prompts = [ctx.template.build(t) for t in tasks]

    def sampling(task: Task, *keys):
        return ctx.sampling_for(task, *keys, temperature=params.temperature, max_tokens=params.max_tokens)

    first = ctx.generator.generate(
        [GenerationRequest(p, params.samples, sampling(t, "sample")) for p, t in zip(prompts, tasks)])
    records, requests, targets = [], [], []
    for task, prompt, result in zip(tasks, prompts, first):
        solutions = [{"text": c.text, "answer": extract_answer(c.text), "tokens": c.token_count,
                      "correct": _reaches(c.text, task)} for c in result.completions]
        solved = any(s["correct"] for s in solutions)
        rolled_out = solved or params.rollout_unsolved
        record = {"id": task.id, "question": task.question, "gold": task.answer, "correct": solved,
                  "rolled_out": rolled_out, "solutions": solutions,
                  "tokens": result.completion_tokens}
        records.append(record)
        for j, solution in enumerate(solutions):
            steps = split_steps(solution["text"], params.step_delimiter)
            # The solution's own ending is one continuation of every one of its prefixes.
            solution["steps"] = [{"text": s, "hits": int(solution["correct"]), "rollouts": 1} for s in steps]
            for i in range(1, len(steps)) if params.rollouts and rolled_out else ():
                prefix = params.step_delimiter.join(steps[:i]) + params.step_delimiter
                requests.append(GenerationRequest(prompt.extend(prefix), params.rollouts,
                                                  sampling(task, "rollout", j, i)))
                targets.append((task, record, solution["steps"][i - 1], prefix))
    for (task, record, step, prefix), result in zip(targets, ctx.generator.generate(requests)):
        step["hits"] += sum(_reaches(prefix + c.text, task) for c in result.completions)
        step["rollouts"] += len(result.completions)
        record["tokens"] += result.completion_tokens
    for record in records:
        for solution in record["solutions"]:
            for step in solution["steps"]:
                step["value"] = step["hits"] / step["rollouts"]
    return records


def label_dataset(tasks: Sequence[Task], ctx: Context, params: LabelParams, store: RunStore,
                  on_commit: Callable[[list[dict]], None] | None = None) -> int:
    """Label every question the store does not hold yet, committing each chunk; the number labelled now."""
    store.add_units([(LABEL_UNIT, {"strategy": "mc_labels", **params.to_dict()})])
    done = store.finished(LABEL_UNIT)
    pending = [(i, t) for i, t in enumerate(tasks) if t.id not in done]
    for start in range(0, len(pending), params.chunk):
        chunk = pending[start:start + params.chunk]
        records = label_tasks([t for _, t in chunk], ctx, params)
        store.add(LABEL_UNIT, [(i, r) for (i, _), r in zip(chunk, records)])
        if on_commit:
            on_commit(records)
    return len(pending)

