"""Final answer selection, shared by every strategy (parallel and search).

A candidate is one complete solution with its extracted answer and, when a
verifier scored it, its score. Candidates without an answer never win while
any candidate has one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence


@dataclass
class Candidate:
    text: str
    answer: str | None  # extracted final answer
    key: str | None  # canonical form used for voting
    tokens: int = 0
    score: float | None = None
    step_scores: tuple[float, ...] = field(default_factory=tuple)
    verifier_tokens: int = 0  # what scoring this candidate cost the verifier
    finish_reason: str = "stop"  # "length" when the solution was cut at max_tokens (OpenAI's meaning)
    reasoning_tokens: int = 0  # of tokens, those thought in tags (testtime.reasoning)
    correct: bool | None = None  # graded against the task (``domains.grade_results``), where it was
    verdict: dict | None = None  # the code domain's hidden-test execution: status, error, stderr tail

    def to_dict(self) -> dict:
        graded = {"correct": self.correct} if self.correct is not None else {}
        return {**graded, **({"verdict": self.verdict} if self.verdict else {}),
            "text": self.text,
            "answer": self.answer,
            "key": self.key,
            "tokens": self.tokens,
            "score": self.score,
            "step_scores": list(self.step_scores),
            "finish_reason": self.finish_reason,
            "reasoning_tokens": self.reasoning_tokens,
        }


class Selector(str, Enum):
    BEST = "best"  # y* = argmax V(y)
    MAJORITY = "majority"  # most frequent answer
    WEIGHTED = "weighted"  # answer with the largest sum of verifier scores
    BORDA = "borda"  # answer with the largest sum of rank weights (Kang et al. 2025)


# Borda voting (Kang et al. 2025, arXiv 2502.18581): the candidate ranked r-th of N by score weighs
# (N - r + 1) ** p. p = 0 is majority voting; a large p approaches best-of-N. The paper tunes p per N;
# 0.5 sits between the two in its range.
BORDA_POWER = 0.5


def _answered(candidates: Sequence[Candidate]) -> list[Candidate]:
    return [c for c in candidates if c.key is not None]


def select_best(candidates: Sequence[Candidate]) -> Candidate | None:
    pool = _answered(candidates) or list(candidates)
    if not pool:
        return None
    return max(pool, key=lambda c: c.score if c.score is not None else float("-inf"))


def _vote(candidates: Sequence[Candidate], weight) -> Candidate | None:
    pool = _answered(candidates)
    if not pool:
        return candidates[0] if candidates else None
    totals: dict[str, float] = defaultdict(float)
    first: dict[str, Candidate] = {}
    for c in pool:
        totals[c.key] += weight(c)
        first.setdefault(c.key, c)
    # Ties go to the answer seen first, so the result does not depend on dict order.
    winner = max(totals, key=lambda k: (totals[k], -pool.index(first[k])))
    members = [c for c in pool if c.key == winner]
    return max(members, key=lambda c: c.score if c.score is not None else 0.0)


def select_majority(candidates: Sequence[Candidate]) -> Candidate | None:
    return _vote(candidates, lambda c: 1.0)


def select_weighted(candidates: Sequence[Candidate]) -> Candidate | None:
    return _vote(candidates, lambda c: c.score if c.score is not None else 0.0)


def select_borda(candidates: Sequence[Candidate], power: float = BORDA_POWER) -> Candidate | None:
    """Rank-weighted voting: scores count only through their order, so their scale does not matter.
    Unscored candidates rank last; tied scores share the higher rank."""
    pool = _answered(candidates)
    order = sorted((_score(c) for c in pool), reverse=True)
    return _vote(candidates, lambda c: (len(pool) - order.index(_score(c))) ** power)


def _score(c: Candidate) -> float:
    return c.score if c.score is not None else float("-inf")


def checked_selector(owner: str, value, allowed: Sequence[str] | None = None) -> str:
    """A strategy's ``selector`` parameter as its name, or a ValueError naming the choices
    (``allowed``: the shared selectors, or a strategy's own list that adds to them)."""
    value = getattr(value, "value", value)  # Selector.BEST or "best"
    allowed = tuple(allowed) if allowed is not None else tuple(s.value for s in Selector)
    if value not in allowed:
        raise ValueError(f"{owner}: selector must be one of {', '.join(allowed)}, got {value!r}")
    return value


def select(candidates: Sequence[Candidate], selector: Selector | str) -> Candidate | None:
    selector = Selector(selector)
    if selector is Selector.BEST:
        return select_best(candidates)
    if selector is Selector.MAJORITY:
        return select_majority(candidates)
    if selector is Selector.BORDA:
        return select_borda(candidates)
    return select_weighted(candidates)


def vote_counts(candidates: Sequence[Candidate]) -> list[int]:
    """Votes per distinct answer, largest first."""
    counts: dict[str, int] = defaultdict(int)
    for c in _answered(candidates):
        counts[c.key] += 1
    return sorted(counts.values(), reverse=True)
