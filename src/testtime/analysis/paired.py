"""Paired comparisons: whether one strategy is better than another on the same questions.

Every "beats", "needs x times the compute" or "winner" that testtime prints rests on
one of these: the mean per-question difference with a percentile bootstrap
interval that resamples questions (each keeps both its values, so what the
questions share cancels). A claim is made only when the interval excludes zero;
otherwise it reads "not separated", with the interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from testtime.analysis.estimators import bootstrap_interval


@dataclass(frozen=True)
class Difference:
    """Mean of a - b over the same questions, and its 95 % interval."""

    difference: float
    low: float
    high: float
    questions: int

    @property
    def separated(self) -> bool:
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict:
        return {"difference": self.difference, "ci95": [self.low, self.high], "separated": self.separated,
                "questions": self.questions}

    @classmethod
    def from_dict(cls, row: dict) -> Difference:
        return cls(row["difference"], *row["ci95"], row["questions"])

    def describe(self, a: str, b: str) -> str:
        """'a beats b by ...', 'b beats a by ...' or 'a and b are not separated ...', with the interval."""
        interval = f"{self.difference * 100:+.1f} pp, 95% CI {self.low * 100:+.1f} to {self.high * 100:+.1f}"
        if not self.separated:
            return f"{a} and {b} are not separated ({interval}, {self.questions} questions)"
        winner, loser = (a, b) if self.difference > 0 else (b, a)
        return f"{winner} beats {loser} ({a} - {b}: {interval}, {self.questions} questions)"


def paired_difference(a: Sequence[float], b: Sequence[float], seed: int = 0, resamples: int = 2000) -> Difference:
    """The per-question difference a - b of two strategies' correctness on the same questions."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a paired comparison needs the same questions on both sides, got {a.shape} and {b.shape}")
    diff = a - b
    low, high = bootstrap_interval(diff, resamples=resamples, seed=seed)
    return Difference(float(diff.mean()) if diff.size else 0.0, low, high, int(diff.size))
