"""What every strategy shares: the run context, the per-question result, and
the ``Strategy`` interface with its registry of names.
"""

from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable, ClassVar, Sequence

from testtime.domains import Reply, grade_results, make_candidates
from testtime.generators.base import GenerationRequest, GenerationResult, Generator, SamplingParams
from testtime.ledger import Ledger
from testtime.params import ParameterError
from testtime.prompting import PromptTemplate
from testtime.registry import Registered
from testtime.selection import Candidate, Selector
from testtime.steps import check_thinking_split
from testtime.tasks import Task
from testtime.verifiers.base import Verifier


@dataclass
class Context:
    """What a strategy runs with: the generator, an optional verifier, and settings."""

    generator: Generator
    verifier: Verifier | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    template: PromptTemplate = field(default_factory=PromptTemplate)
    seed: int = 0
    thinking_split: str = "paragraph"  # how a verifier cuts a thought in tags into steps (steps.THINKING_SPLITS)
    # Hooks for a caller that watches a run (the server): progress messages, what the strategy holds so
    # far (its tree, its samples), a per-question stop, and the answer's text as it is written, where a
    # strategy's answer is its one sample (``single``).
    progress: Callable[[Task, str], None] | None = None
    growing: Callable[[Task, dict], None] | None = None
    cancelled: Callable[[Task], bool] | None = None
    writing: Callable[[Task, str], None] | None = None

    def __post_init__(self):
        check_thinking_split(self.thinking_split)  # refused here, not at the first scored thought

    def report(self, task: Task, message: str, holding: Callable[[], dict] | None = None) -> None:
        """A progress message; ``holding`` makes what the strategy holds so far ({"tree": ...} or
        {"candidates": [...]}), called only when someone watches."""
        if self.progress is not None:
            self.progress(task, message)
        if self.growing is not None and holding is not None:
            self.growing(task, holding())

    def write(self, task: Task, text: str) -> None:
        if self.writing is not None and text:
            self.writing(task, text)

    def is_cancelled(self, task: Task) -> bool:
        return self.cancelled is not None and self.cancelled(task)

    def generate(self, requests: Sequence[GenerationRequest], ledgers: Sequence[Ledger] | None,
                 tasks: Sequence[Task], generator: Generator | None = None, watch=None) -> list[GenerationResult]:
        """The generator's batched call, each request (asked for ``tasks[i]``) aborted the moment its
        question is cancelled, where the backend streams (``Generator.generate``, also for ``watch``)."""
        stop = (lambda i: self.is_cancelled(tasks[i])) if self.cancelled is not None else None
        return (generator or self.generator).generate(requests, ledgers, stop=stop, watch=watch)

    def seed_for(self, task: Task, *keys: object) -> int:
        """A seed per question and keys (round, node): independent of batching and of question order."""
        key = ":".join(str(k) for k in (self.seed, task.id, *(keys or (0,))))
        return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little")

    def sampling_for(self, task: Task, *keys: object, **changes) -> SamplingParams:
        return replace(self.sampling, seed=self.seed_for(task, *keys), **changes)


def make_candidate(text: str, tokens: int, finish_reason: str = "stop", reasoning_tokens: int = 0,
                   task: Task | None = None) -> Candidate:
    """A solution as a candidate, read as its task's domain reads it (math where no task is given)."""
    [candidate] = make_candidates([Reply(task or _NO_TASK, text, tokens, finish_reason, reasoning_tokens)])
    return candidate


_NO_TASK = Task(id="", question="", answer="")


@dataclass
class QuestionResult:
    task: Task
    chosen: Candidate | None
    candidates: list[Candidate]
    ledger: Ledger
    details: dict = field(default_factory=dict)  # strategy-specific: rounds, the search tree, ...

    @property
    def prediction(self) -> str | None:
        return self.chosen.answer if self.chosen else None

    @cached_property  # math-verify can be slow; summary and results both ask
    def correct(self) -> bool:
        if self.chosen is None:
            return False
        if self.chosen.correct is None:
            grade_results([(self.task, [self.chosen])])
        return bool(self.chosen.correct)

    @property
    def chosen_index(self) -> int | None:
        """The chosen candidate's place: the very object where it is one of them (two attempts may be equal
        in every field, as a revision that repeats its attempt), else the first equal one."""
        same = next((k for k, c in enumerate(self.candidates) if c is self.chosen), None)
        if same is None and self.chosen in self.candidates:
            return self.candidates.index(self.chosen)
        return same

    def to_dict(self) -> dict:
        return {
            "id": self.task.id,
            "question": self.task.question,
            "gold": self.task.answer,
            "prediction": self.prediction,
            "correct": self.correct,
            "chosen": self.chosen_index,
            "candidates": [c.to_dict() for c in self.candidates],
            "ledger": self.ledger.to_dict(),
            **self.details,
        }


class Strategy(Registered, abc.ABC):
    """A way to spend compute on questions. Subclasses are dataclasses of their parameters."""

    kind, kind_plural = "strategy", "strategies"
    registry: ClassVar[dict[str, type[Strategy]]] = {}
    uses_verifier: ClassVar[bool] = False
    fixed_budget: ClassVar[int | None] = None  # a strategy that only exists at one budget (single: 1)
    internal: ClassVar[bool] = False  # a sweep's own device (the shared pool): never served or advertised

    @abc.abstractmethod
    def solve(self, tasks: Sequence[Task], ctx: Context) -> list[QuestionResult]:
        """Answer every task; all questions share each generator and verifier call."""

    @classmethod
    def parameters(cls) -> tuple[str, ...]:
        """The names this strategy takes, in order."""
        from testtime.params import parameters

        return tuple(p.name for p in parameters(cls))

    def require_integers(self, least: int, *names: str) -> None:
        """The named parameters are integers of at least ``least`` (a bool is not one), or a ValueError naming one."""
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{self.name}: {name} must be an integer >= {least}, got {value!r}")

    def check(self, verifier: Verifier | None) -> None:
        if self.uses_verifier and verifier is None:
            raise ParameterError(f"strategy {self.name!r} needs a verifier")
        selector = getattr(self, "selector", None)  # a strategy that chooses by score needs the scores
        if verifier is None and selector in (Selector.BEST.value, Selector.WEIGHTED.value, Selector.BORDA.value):
            raise ParameterError(f"strategy {self.name!r} with selector {selector!r} needs a verifier")

    def describe(self) -> dict:
        from dataclasses import asdict, is_dataclass

        return {"strategy": self.name, **(asdict(self) if is_dataclass(self) else {})}
