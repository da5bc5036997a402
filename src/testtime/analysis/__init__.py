"""Accuracy with confidence intervals, and the summary row of one strategy and budget."""

from __future__ import annotations

import math
from typing import Sequence

from testtime.ledger import Ledger


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion (well-behaved at 0 and 1, unlike the normal one)."""
    if trials == 0:
        return (0.0, 0.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def summary_row(strategy: dict, correct: Sequence[bool], ledgers: Sequence[Ledger]) -> dict:
    total = Ledger.total(ledgers)
    n = len(correct)
    hits = sum(bool(c) for c in correct)
    lo, hi = wilson_interval(hits, n)
    return {
        **strategy,
        "accuracy": hits / n if n else 0.0,
        "ci95": [lo, hi],
        "questions": n,
        "correct": hits,
        "completion_tokens": total.completion_tokens,
        "prompt_tokens": total.prompt_tokens,
        "cached_prompt_tokens": total.cached_prompt_tokens,
        "verifier_tokens": total.verifier_tokens,
        "flops": total.flops,
        "policy_flops": total.policy_flops,
        "verifier_flops": total.verifier_flops,
        "wall_seconds": total.wall_seconds,
    }
