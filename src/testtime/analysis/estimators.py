"""Estimators over a shared sample pool: what a strategy would score with k samples.

One pool of n samples per question gives every budget k <= n of every parallel
strategy without drawing again. pass@k has an exact unbiased estimator; a rule
that chooses among samples (majority, best-of-k, weighted, adaptive stopping)
is replayed on many random orders of the pool and averaged. Every strategy sees
the same orders (common random numbers), so their differences are not noise of
the ordering.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Sequence

import numpy as np

from testtime.selection import Candidate


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c right: 1 - C(n-c, k) / C(n, k) (Chen et al. 2021)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    # The product form avoids huge binomials: C(n-c, k)/C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i).
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_brute_force(correct: Sequence[bool], k: int) -> float:
    """Share of all k-subsets with a right sample; exponential, for tests on small n."""
    from itertools import combinations

    subsets = list(combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in s) for s in subsets) / comb(len(correct), k)


@dataclass(frozen=True)
class Replay:
    """A strategy replayed on one question's pool: mean correctness and mean samples used."""

    accuracy: float
    samples: float
    tokens: float  # mean completion tokens of the samples used


def sample_orders(n: int, orders: int, rng: np.random.Generator) -> np.ndarray:
    """``orders`` random permutations of range(n), one per row."""
    return np.argsort(rng.random((orders, n)), axis=1)


def replay(strategy, candidates: Sequence[Candidate], correct: Sequence[bool], orders: np.ndarray) -> Replay:
    """Run a parallel strategy's draw-and-choose rule on each order of the pool.

    ``strategy`` needs ``next_draw(drawn) -> int`` and ``choose(drawn)``, as every
    ``ParallelStrategy`` has: with a fixed budget k the drawn samples are a
    uniformly random k-subset; an adaptive rule stops where it would have.
    """
    index = {id(c): i for i, c in enumerate(candidates)}
    hits = samples = tokens = 0.0
    for order in orders:
        drawn: list[Candidate] = []
        while (want := strategy.next_draw(drawn)) > 0:
            if len(drawn) + want > len(candidates):
                raise ValueError(f"{strategy.name} at budget {strategy.budget} wants more samples than the "
                                 f"pool's {len(candidates)}")
            drawn.extend(candidates[i] for i in order[len(drawn): len(drawn) + want])
        chosen = strategy.choose(drawn)
        hits += bool(chosen is not None and correct[index[id(chosen)]])
        samples += len(drawn)
        tokens += sum(c.tokens for c in drawn)
    count = len(orders)
    return Replay(hits / count, samples / count, tokens / count)


def bootstrap_interval(values: Sequence[float], resamples: int = 2000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling questions."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1 - level) / 2
    return (float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)))
