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


def compare(small: ModelCost, large: ModelCost, large_accuracy: float, large_ci95: Sequence[float],
            large_tokens_per_query: float, small_points: Sequence[dict], ratios: Sequence[float]) -> dict:
    """Per R: the small model's best swept point within the matched per-query FLOPs, against
    the larger model's greedy accuracy. ``small_points`` are the analysis's points (flops per query)."""
    rows = []
    for ratio in ratios:
        multiplier = test_time_multiplier(small, large, ratio)
        allowed = 2.0 * small.parameters * multiplier * large_tokens_per_query
        within = [p for p in small_points if p["strategy"] != "pass@k" and p["flops"] <= allowed]
        best = max(within, key=lambda p: (p["accuracy"], -p["flops"]), default=None)
        rows.append({
            "R": ratio, "X": multiplier, "small_flops_per_query_allowed": allowed,
            "small_best": f"{best['strategy']}@{best['budget']}" if best else None,
            "small_accuracy": best["accuracy"] if best else None,
            "small_ci95": best["ci95"] if best else None,
            "small_flops_per_query": best["flops"] if best else None,
            "large_accuracy": large_accuracy, "large_ci95": list(large_ci95),
            "winner": _winner(best, large_accuracy, large_ci95),
        })
    return {"small": vars(small), "large": vars(large), "large_tokens_per_query": large_tokens_per_query,
            "rows": rows,
            "note": "X = Nl/Ns + 3 (Nl Dl - Ns Ds) / (Ns R Dl); the small model's best point of the sweep whose "
                    "FLOPs per query are within 2 Ns X (large model's tokens per query)"}


def _winner(best: dict | None, large_accuracy: float, large_ci95: Sequence[float]) -> str | None:
    """Which side is more accurate, and whether the 95 % intervals even separate them."""
    if best is None:
        return None
    if best["accuracy"] == large_accuracy:
        return "tie"
    side = "test-time (small)" if best["accuracy"] > large_accuracy else "train-time (large)"
    overlap = best["ci95"][0] <= large_ci95[1] and large_ci95[0] <= best["ci95"][1]
    return f"{side}, within the intervals" if overlap else side
