"""Difficulty bins and the compute-optimal policy (Snell et al. 2024).

A question's difficulty is binned into five levels (1 = easiest) by quantiles:
the oracle level from its pass@1 in the sample pool (uses gold answers), the
predicted level from a cheap probe of a few samples (their agreement and mean
verifier score; no gold answers). The policy picks, per predicted level, one
option (a strategy at a budget) so that the mean cost per question stays under
a limit and accuracy is highest. It is learned on one fold of questions and
scored on the other, both ways, so it is never tuned on its own test questions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

LEVELS = 5


def probe_easiness(keys: Sequence[str | None], scores: Sequence[float | None]) -> float:
    """How easy a question looks from a probe: the share agreeing with the commonest answer,
    averaged with the mean verifier score when the samples were scored. In [0, 1]."""
    answered = [k for k in keys if k is not None]
    agreement = Counter(answered).most_common(1)[0][1] / len(keys) if answered else 0.0
    known = [s for s in scores if s is not None]
    return (agreement + sum(known) / len(known)) / 2 if known else agreement


def level_edges(difficulty: Sequence[float], levels: int = LEVELS) -> list[float]:
    """The interior quantiles that cut difficulties into ``levels`` bins."""
    return [float(q) for q in np.quantile(np.asarray(difficulty, dtype=float), np.arange(1, levels) / levels)]


def assign_levels(difficulty: Sequence[float], edges: Sequence[float]) -> np.ndarray:
    """Level 1 (easiest) to len(edges)+1; ties at an edge go to the harder side."""
    return np.searchsorted(np.asarray(edges), np.asarray(difficulty, dtype=float), side="right") + 1


@dataclass(frozen=True)
class Option:
    """A strategy at a budget, with its per-question expected correctness and cost."""

    strategy: str  # as the analysis labels it ("revisions[chains=4]")
    budget: int
    correct: np.ndarray
    cost: np.ndarray  # computed tokens per question, probe included
    name: str = ""  # the strategy to create (default: the label)
    params: dict = field(default_factory=dict)  # its parameters besides the budget

    @property
    def label(self) -> str:
        return f"{self.strategy}@{self.budget}"


@dataclass
class Policy:
    """One option per difficulty level, for questions whose level is read from ``edges``."""

    edges: list[float]
    choices: list[Option]  # index = level - 1
    limit: float  # the mean cost per question it was chosen under
    train_accuracy: float = 0.0
    train_cost: float = 0.0
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"edges": self.edges, "limit": self.limit, "train_accuracy": self.train_accuracy,
                "train_cost": self.train_cost,
                "choices": [{"level": i + 1, "strategy": o.name or o.strategy, "budget": o.budget,
                             **({"params": o.params} if o.params else {})}
                            for i, o in enumerate(self.choices)], **self.meta}


def _level_means(options: Sequence[Option], levels: np.ndarray, rows: np.ndarray, count: int):
    """Per level: (questions in it, acc matrix [option], cost matrix [option]) on the given rows."""
    out = []
    for level in range(1, count + 1):
        members = rows[levels[rows] == level]
        if members.size == 0:
            out.append((0, None, None))
            continue
        out.append((members.size, np.array([o.correct[members].mean() for o in options]),
                    np.array([o.cost[members].mean() for o in options])))
    return out


def learn_policy(options: Sequence[Option], difficulty: Sequence[float], rows: Sequence[int],
                 limit: float, levels: int = LEVELS) -> Policy:
    """The best option per level on ``rows`` with mean cost <= ``limit``, exactly.

    Levels are combined one at a time, keeping only the combinations no other beats in both total
    cost and total accuracy: the best within the limit is among them. (A price per token, the
    Lagrangian, finds only the convex hull's corners and may stop well under the limit.) Ties in
    accuracy go to the cheaper; a limit below every combination gives the cheapest one.
    """
    rows = np.asarray(rows)
    edges = level_edges(np.asarray(difficulty)[rows], levels)
    per_level = _level_means(options, assign_levels(difficulty, edges), rows, levels)
    cheapest = int(np.argmin([o.cost[rows].mean() for o in options]))
    front: list[tuple[float, float, tuple[int, ...]]] = [(0.0, 0.0, ())]  # (cost, correct, picks), summed
    for size, accs, costs in per_level:
        if size == 0:  # an empty level costs nothing: its choice only matters for questions to come
            front = [(c, a, picks + (cheapest,)) for c, a, picks in front]
            continue
        front = pareto_front([(c + size * costs[i], a + size * accs[i], picks + (i,))
                              for c, a, picks in front for i in range(len(options))])
    within = [point for point in front if point[0] <= limit * rows.size + 1e-9] or front[:1]
    cost, correct, picks = max(within, key=lambda point: (point[1], -point[0]))
    return Policy(edges, [options[i] for i in picks], limit, correct / rows.size, cost / rows.size)


def pareto_front(points: list[tuple[float, float, tuple[int, ...]]]) -> list[tuple[float, float, tuple[int, ...]]]:
    """The (cost, accuracy, ...) points that no cheaper-or-equal point matches in accuracy, by cost."""
    front, best = [], -np.inf
    for point in sorted(points, key=lambda p: (p[0], -p[1])):
        if point[1] > best + 1e-12:
            front.append(point)
            best = point[1]
    return front


def apply_policy(policy: Policy, difficulty: Sequence[float], rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per question of ``rows``: the expected correctness and cost of the option its level gets."""
    level_of = assign_levels(np.asarray(difficulty)[np.asarray(rows)], policy.edges)
    correct = np.array([policy.choices[l - 1].correct[r] for r, l in zip(rows, level_of)])
    cost = np.array([policy.choices[l - 1].cost[r] for r, l in zip(rows, level_of)])
    return correct, cost


def two_folds(ids: Sequence[str], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random half of the questions, and the other half."""
    order = np.random.default_rng(seed).permutation(len(ids))
    half = len(ids) // 2
    return np.sort(order[:half]), np.sort(order[half:])


def cross_validated(options: Sequence[Option], difficulty: Sequence[float], ids: Sequence[str],
                    limit: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[Policy]]:
    """Learn on one fold, apply to the other, both ways: every question scored by a policy
    that never saw it. Per-question correctness and cost in question order, and both policies."""
    first, second = two_folds(ids, seed)
    correct, cost = np.zeros(len(ids)), np.zeros(len(ids))
    policies = []
    for train, test in ((first, second), (second, first)):
        policy = learn_policy(options, difficulty, train, limit)
        correct[test], cost[test] = apply_policy(policy, difficulty, test)
        policies.append(policy)
    return correct, cost, policies


def cost_to_match(costs: Sequence[float], accuracies: Sequence[float], target: float) -> float | None:
    """The least cost at which a baseline curve reaches ``target`` (linear in log cost between
    points, on the curve's running maximum); None if it never does."""
    pairs = sorted(zip(costs, accuracies))
    best_so_far, prev = -1.0, None
    for cost, acc in pairs:
        acc = max(acc, best_so_far)
        if acc >= target:
            if prev is None or prev[1] >= target or acc == prev[1]:
                return float(cost)
            frac = (target - prev[1]) / (acc - prev[1])
            return float(np.exp(np.log(prev[0]) + frac * (np.log(cost) - np.log(prev[0]))))
        best_so_far, prev = acc, (cost, acc)
    return None
