"""A model's own confidence in what it wrote, from the top log-probabilities of each generated token.

DeepConf (Fu et al. 2025, arXiv 2508.15260): a token's confidence is the negative mean log-probability
of its top-k alternatives (high where the distribution is peaked); a group's is the mean over a
sliding window of tokens; a trace's is the mean over all tokens, the mean of its lowest 10 % of
groups, its lowest group, or the mean over its last tokens (its tail). Self-certainty (Kang et al.
2025, arXiv 2502.18581) is the mean KL divergence of each token's distribution from the uniform one,
here over the top-k alternatives renormalised (the engine reports no more).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

MEASURES = ("mean", "bottom10", "lowest", "tail", "self_certainty")


def token_confidence(top: Mapping[str, float]) -> float:
    """-(1/k) sum of the top-k log-probabilities at one position (0 where none is reported)."""
    values = [v for v in top.values() if math.isfinite(v)]
    return -sum(values) / len(values) if values else 0.0


def token_self_certainty(top: Mapping[str, float]) -> float:
    """KL(uniform || p) over the top-k alternatives, renormalised: 0 for a flat distribution."""
    values = [v for v in top.values() if math.isfinite(v)]
    if len(values) < 2:
        return 0.0
    high = max(values)
    log_total = high + math.log(sum(math.exp(v - high) for v in values))
    k = len(values)
    return -sum(math.log(k) + v - log_total for v in values) / k


def group_confidences(confidences: Sequence[float], window: int) -> list[float]:
    """The mean confidence of every window of ``window`` consecutive tokens (one group where shorter)."""
    if not confidences:
        return []
    if len(confidences) <= window:
        return [sum(confidences) / len(confidences)]
    running = sum(confidences[:window])
    groups = [running / window]
    for i in range(window, len(confidences)):
        running += confidences[i] - confidences[i - window]
        groups.append(running / window)
    return groups


def lowest_group(confidences: Sequence[float], window: int) -> float:
    """The confidence of a trace's least confident group (0 for an empty trace)."""
    return min(group_confidences(confidences, window), default=0.0)


def trace_confidence(tops: Sequence[Mapping[str, float]], measure: str, window: int, tail: int) -> float:
    """One trace's confidence under ``measure`` (MEASURES); higher is more confident."""
    if measure == "self_certainty":
        values = [token_self_certainty(t) for t in tops]
        return sum(values) / len(values) if values else 0.0
    confidences = [token_confidence(t) for t in tops]
    if not confidences:
        return 0.0
    if measure == "mean":
        return sum(confidences) / len(confidences)
    if measure == "tail":
        last = confidences[-tail:]
        return sum(last) / len(last)
    if measure == "lowest":
        return lowest_group(confidences, window)
    groups = group_confidences(confidences, window)
    if measure == "bottom10":
        lowest = sorted(groups)[: max(1, math.ceil(0.1 * len(groups)))]
        return sum(lowest) / len(lowest)
    raise ValueError(f"confidence measure {measure!r} is not one of {', '.join(MEASURES)}")
