"""Verifier interfaces: outcome verifiers score a whole solution, process
verifiers score every step, and their step scores are aggregated into one.
"""

from __future__ import annotations

import abc
import math
import time
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Sequence

from testtime.ledger import Ledger, count_call
from testtime.registry import Registered
from testtime.steps import DEFAULT_STEP_DELIMITER, split_steps


class Aggregation(str, Enum):
    """How step scores become one solution score."""

    PRODUCT = "product"  # R = prod_i P(correct | s_1..s_i)
    MIN = "min"
    LAST = "last"
    MEAN = "mean"


def aggregate(step_scores: Sequence[float], how: Aggregation | str = Aggregation.PRODUCT) -> float:
    if not step_scores:
        return 0.0
    how = Aggregation(how)
    if how is Aggregation.PRODUCT:
        return math.prod(step_scores)
    if how is Aggregation.MIN:
        return min(step_scores)
    if how is Aggregation.LAST:
        return step_scores[-1]
    return sum(step_scores) / len(step_scores)


@dataclass(frozen=True)
class Solution:
    """A (possibly partial) solution to score: the question and the answer text so far."""

    question: str
    text: str
    step_delimiter: str = DEFAULT_STEP_DELIMITER
    thinking_split: str = "paragraph"  # how a thought in tags is cut into steps (steps.THINKING_SPLITS)

    @property
    def steps(self) -> list[str]:
        return split_steps(self.text, self.step_delimiter, self.thinking_split)


@dataclass(frozen=True)
class StepScores:
    scores: tuple[float, ...]
    tokens: int = 0  # tokens the verifier processed to produce them


class Verifier(Registered, abc.ABC):
    """Scores solutions in batches; higher is better, in [0, 1]."""

    kind, kind_plural = "verifier", "verifiers"
    registry: ClassVar[dict[str, type[Verifier]]] = {}
    parameter_count: int = 0
    # The constructor parameter that `--verifier-model` fills (a checkpoint, an artifact, a URL).
    model_parameter: ClassVar[str | None] = None

    @abc.abstractmethod
    def _score(self, solutions: Sequence[Solution]) -> list[StepScores]:
        """One StepScores per solution (a single score for an outcome verifier)."""

    def score_steps(self, solutions: Sequence[Solution], ledgers: Sequence[Ledger] | None = None) -> list[StepScores]:
        """Score every solution in one batch; charge each one's cost to its ledger."""
        if not solutions:
            return []
        start = time.perf_counter()
        out = self._score(solutions)
        elapsed = time.perf_counter() - start
        if ledgers is not None:
            for scores, ledger in zip(out, ledgers):
                ledger.charge_verifier(
                    tokens=scores.tokens, parameters=self.parameter_count, wall_seconds=elapsed / len(out)
                )
            count_call(ledgers, "verifier_calls")
        return out

    def score(self, solutions: Sequence[Solution], ledgers: Sequence[Ledger] | None = None) -> list[float]:
        return [self.reduce(s.scores) for s in self.score_steps(solutions, ledgers)]

    def reduce(self, step_scores: Sequence[float]) -> float:
        return step_scores[-1] if step_scores else 0.0

    def identity(self) -> str | None:
        """A digest of what, beyond its name and options, decides its scores (trained weights), so a
        resumed run can refuse other weights under the same name; None where nothing does."""
        return None


class OutcomeVerifier(Verifier):
    """Scores a whole solution; its StepScores hold one number."""


class ProcessVerifier(Verifier):
    """Scores every step; ``aggregation`` turns step scores into one."""

    def __init__(self, aggregation: Aggregation | str = Aggregation.PRODUCT):
        self.aggregation = Aggregation(aggregation)

    def reduce(self, step_scores: Sequence[float]) -> float:
        return aggregate(step_scores, self.aggregation)
