"""Train-time versus test-time compute (Snell et al. 2024, section 7).

A larger model answering greedily against the small model spending more at test
time, with the same total FLOPs. Pretraining costs 6 N D_pretrain; inference
costs 2 N per token. R = D_inference / D_pretrain says how much inference the
larger model serves over its life. Matching totals, the small model may spend X
times the larger model's inference tokens per query:

    6 Ns Ds + 2 Ns X Dinf = 6 Nl Dl + 2 Nl Dinf,  Dinf = R Dl
    X = Nl/Ns + 3 (Nl Dl - Ns Ds) / (Ns R Dl)

With equal pretraining tokens this is Snell's X = M + 3 (M - 1) / R (M = Nl/Ns).
Small R (little inference) leaves much FLOPs for test-time compute; large R little.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from testtime.analysis.estimators import bootstrap_interval
from testtime.analysis.paired import Difference, paired_difference


@dataclass(frozen=True)
class ModelCost:
    name: str
    parameters: int
    pretrain_tokens: float


def test_time_multiplier(small: ModelCost, large: ModelCost, ratio: float) -> float:
    """X: how many times the larger model's inference tokens the small one may use per query."""
    if ratio <= 0:
        raise ValueError(f"R = D_inference / D_pretrain must be > 0, got {ratio}")
    ns, nl = small.parameters, large.parameters
    return nl / ns + 3 * (nl * large.pretrain_tokens - ns * small.pretrain_tokens) / (ns * ratio * large.pretrain_tokens)


def compare(small: ModelCost, large: ModelCost, large_correct: Sequence[float], large_tokens_per_query: float,
            small_points: Sequence[dict], small_correct: Sequence[Sequence[float]], ratios: Sequence[float],
            seed: int = 0) -> dict:
    """Per R: the small model's best swept point within the matched per-query FLOPs, against the larger
    model's greedy run on the same questions. ``small_points`` are the analysis's points (flops per
    query); ``small_correct`` their per-question correctness, in the order of ``large_correct``."""
    large_correct = np.asarray(large_correct, dtype=float)
    large_accuracy, large_ci95 = float(large_correct.mean()), list(bootstrap_interval(large_correct, seed=seed))
    rows = []
    for ratio in ratios:
        multiplier = test_time_multiplier(small, large, ratio)
        allowed = 2.0 * small.parameters * multiplier * large_tokens_per_query
        within = [i for i, p in enumerate(small_points) if p["strategy"] != "pass@k" and p["flops"] <= allowed]
        best = max(within, key=lambda i: (small_points[i]["accuracy"], -small_points[i]["flops"]), default=None)
        point = small_points[best] if best is not None else None
        difference = paired_difference(small_correct[best], large_correct, seed=seed) if point else None
        rows.append({
            "R": ratio, "X": multiplier, "small_flops_per_query_allowed": allowed,
            "small_best": f"{point['strategy']}@{point['budget']}" if point else None,
            "small_accuracy": point["accuracy"] if point else None,
            "small_ci95": point["ci95"] if point else None,
            "small_flops_per_query": point["flops"] if point else None,
            "large_accuracy": large_accuracy, "large_ci95": large_ci95,
            "difference": difference.to_dict() if difference else None,
            "winner": _winner(difference),
        })
    return {"small": vars(small), "large": vars(large), "large_tokens_per_query": large_tokens_per_query,
            "rows": rows,
            "note": "X = Nl/Ns + 3 (Nl Dl - Ns Ds) / (Ns R Dl); the small model's best point of the sweep whose "
                    "FLOPs per query are within 2 Ns X (large model's tokens per query); the winner is named only "
                    "where the paired bootstrap interval of small - large on the same questions excludes zero"}


def _winner(difference: Difference | None) -> str | None:
    """Which side is more accurate on the same questions, or "not separated"."""
    if difference is None:
        return None
    if not difference.separated:
        return "not separated"
    return "test-time (small)" if difference.difference > 0 else "train-time (large)"
