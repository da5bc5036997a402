"""The scaling analysis of a run: curves, fits, difficulty, and the compute-optimal policy.

Input is what the run store holds: per unit (strategy, budget, seed) the result
line of every question. A ``pool`` unit holds n samples per question; every
parallel strategy at every budget k <= n is estimated from it by replay on
random orders. Every other unit (a search) is one point as it ran. Every point
carries its cost per question: computed tokens (prompt tokens not served from
the cache, completion and verifier tokens), FLOPs and wall time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from testtime.analysis.estimators import bootstrap_interval, pass_at_k, replay, sample_orders
from testtime.analysis.fits import fit_coverage, fit_log_compute
from testtime.analysis.paired import paired_difference
from testtime.policy import (
    LEVELS, Option, assign_levels, cost_to_match, cross_validated, learn_policy, level_edges, probe_easiness,
)
from testtime.answers import normalize_answer, stored_correct
from testtime.selection import Candidate
from testtime.strategies import ParallelStrategy, Strategy

POOL = "pool"
PASS_AT_K = "pass@k"
DEFAULT_PROBE = 2  # samples: the cheapest probe whose agreement means something
BASELINES = ("best_of_n", "weighted_best_of_n", "majority")  # the first present is "best-of-N"


@dataclass
class Cost:
    """Per-question cost arrays of one point."""

    tokens: np.ndarray
    flops: np.ndarray
    wall: np.ndarray

    def means(self) -> dict:
        return {"tokens": float(self.tokens.mean()), "flops": float(self.flops.mean()),
                "wall_seconds": float(self.wall.mean())}


@dataclass
class Point:
    """One strategy at one budget: expected correctness and cost per question."""

    strategy: str  # its label: the strategy's name, with the parameters that tell its units apart
    budget: int
    source: str  # "pool" (estimated from the shared pool) or "run" (ran as itself)
    correct: np.ndarray
    cost: Cost
    samples: float | None = None  # mean samples used (pool estimates)
    params: dict | None = None  # a run's own parameters: what a policy that chooses it runs it with

    @property
    def name(self) -> str:
        """The strategy itself, without the parameters its label adds (``run_labels``)."""
        return self.strategy.partition("[")[0]

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    def to_dict(self, seed: int) -> dict:
        lo, hi = bootstrap_interval(self.correct, seed=seed)
        return {"strategy": self.strategy, "budget": self.budget, "source": self.source,
                "accuracy": self.accuracy, "ci95": [lo, hi], "questions": int(self.correct.size),
                **self.cost.means(), **({"samples": self.samples} if self.samples is not None else {}),
                **({"name": self.name, "params": self.params} if self.params else {})}


@dataclass
class PoolQuestion:
    """One question's pool under one seed, with what it cost."""

    candidates: list[Candidate]
    correct: list[bool]
    ledger: dict

    @classmethod
    def from_line(cls, line: dict) -> PoolQuestion:
        cands = [Candidate(text=c["text"], answer=c["answer"], key=c["key"] if "key" in c else normalize_answer(c["answer"]),
                           tokens=c["tokens"], score=c.get("score"), step_scores=tuple(c.get("step_scores") or ()),
                           reasoning_tokens=c.get("reasoning_tokens", 0))
                 for c in line["candidates"]]
        return cls(cands, [stored_correct(c, line["gold"]) for c in line["candidates"]], line["ledger"])

    def cost_of(self, samples: float, tokens: float) -> tuple[float, float, float]:
        """Computed tokens, FLOPs, wall seconds of using ``samples`` samples of ``tokens`` tokens."""
        led, n = self.ledger, len(self.candidates)
        prompt = led["prompt_tokens"] - led["cached_prompt_tokens"]
        computed = prompt + led["completion_tokens"]
        per_token = led["policy_flops"] / computed if computed else 0.0
        share = samples / n
        return (prompt + tokens + led["verifier_tokens"] * share,
                per_token * (prompt + tokens) + led["verifier_flops"] * share,
                led["wall_seconds"] * (tokens / led["completion_tokens"] if led["completion_tokens"] else share))


def run_cost(line: dict) -> tuple[float, float, float]:
    led = line["ledger"]
    tokens = led["prompt_tokens"] - led["cached_prompt_tokens"] + led["completion_tokens"] + led["verifier_tokens"]
    return (tokens, led["policy_flops"] + led["verifier_flops"], led["wall_seconds"])


def _fit_with_extrapolation(compute: list[float], accuracy: list[float], axis: str) -> dict:
    """The fit, and what it predicts at 4x and 16x the largest compute measured, with 95 % intervals."""
    fit = fit_log_compute(compute, accuracy, axis)
    far = [{"compute": c, "accuracy": (p := fit.predict(c))[0], "ci95": [p[1], p[2]]}
           for c in (4 * max(compute), 16 * max(compute))]
    return {**fit.to_dict(), "extrapolated": far}


def _power_budgets(largest: int) -> list[int]:
    return [2**i for i in range(int(math.log2(largest)) + 1)]


def run_settings(d: dict) -> dict:
    """A unit's own parameters: its description less its name, budget and seed."""
    return {k: v for k, v in d.items() if k not in ("strategy", "budget", "seed")}


def run_labels(descriptions: Sequence[dict]) -> list[str]:
    """A name per unit that ran as itself: its strategy's, with the parameters in which it differs from
    the strategy's other units where there are several ("revisions[chains=4]"); seeds and budgets
    are what a curve runs over, never part of the name."""
    by_strategy: dict[str, list[dict]] = {}
    for d in descriptions:
        by_strategy.setdefault(d["strategy"], []).append(run_settings(d))
    labels = []
    for d in descriptions:
        own, others = run_settings(d), by_strategy[d["strategy"]]
        varying = sorted(k for k in own if len({json.dumps(o.get(k), sort_keys=True) for o in others}) > 1)
        labels.append(d["strategy"] + (f"[{','.join(f'{k}={own[k]}' for k in varying)}]" if varying else ""))
    return labels


def split_finished(lines_by_unit: Sequence[tuple[dict, list[dict]]]):
    """The units that hold every question any unit holds, and how far each other unit got.

    An interrupted run is analysed on its finished units: a question a unit has not reached yet is not
    a wrong answer, and a curve over two question sets compares nothing."""
    asked = {line["id"] for _, lines in lines_by_unit for line in lines}
    labels = run_labels([d for d, _ in lines_by_unit])  # "revisions[chains=2]": units of one strategy apart
    finished, unfinished = [], []
    for label, (d, lines) in zip(labels, lines_by_unit):
        if len({line["id"] for line in lines}) == len(asked):
            finished.append((d, lines))
        else:
            unfinished.append({"unit": f"{label}@{d.get('budget')} seed {d.get('seed')}",
                               "questions": len(lines), "of": len(asked)})
    return finished, unfinished


class SweepAnalysis:
    """Everything the report shows, computed from one run's stored lines (its finished units)."""

    def __init__(self, lines_by_unit: Sequence[tuple[dict, list[dict]]], *, strategies: Sequence[str] = (),
                 orders: int = 64, probe: int = DEFAULT_PROBE, seed: int = 0):
        self.seed, self.orders_count = seed, orders
        lines_by_unit, self.unfinished = split_finished(lines_by_unit)
        pools = [(d, lines) for d, lines in lines_by_unit if d["strategy"] == POOL and lines]
        runs = [(d, lines) for d, lines in lines_by_unit if d["strategy"] != POOL and lines]
        first = (pools or runs or [({}, [])])[0][1]
        if not first:
            raise ValueError("the run holds no results to analyse")
        self.ids = [line["id"] for line in first]
        self.index = {qid: i for i, qid in enumerate(self.ids)}
        self.pools = [{line["id"]: PoolQuestion.from_line(line) for line in lines} for _, lines in pools]
        self.pool_size = min((len(q.candidates) for p in self.pools for q in p.values()), default=0)
        self.probe = min(probe, self.pool_size) if self.pool_size else 0
        labels = run_labels([d for d, _ in runs])
        self.run_lines = {(label, d.get("budget")): [] for label, (d, _) in zip(labels, runs)}
        self.run_params = {label: run_settings(d) for label, (d, _) in zip(labels, runs)}
        for label, (d, lines) in zip(labels, runs):
            self.run_lines[(label, d.get("budget"))].append({line["id"]: line for line in lines})
        self.points = self._pool_points(strategies) + self._run_points()

    # -- points -------------------------------------------------------------------------------------
    def _pool_points(self, names: Sequence[str]) -> list[Point]:
        if not self.pools:
            return []
        # A run that did not record its pooled strategies (the Python API) gets the two basic rules.
        names = [n for n in names if issubclass(Strategy.lookup(n), ParallelStrategy)] or ["majority", "best_of_n"]
        rng = np.random.default_rng(self.seed)
        orders = sample_orders(self.pool_size, self.orders_count, rng)
        points = []
        for k in _power_budgets(self.pool_size):
            points.append(self._pass_at_k_point(k))
            for name in dict.fromkeys(names):
                cls = Strategy.lookup(name)
                if cls.fixed_budget and cls.fixed_budget != k:
                    continue
                points.append(self._replayed_point(Strategy.create(name, budget=k), orders))
        return points

    def _per_question(self, fn) -> tuple[np.ndarray, Cost]:
        """Average fn(pool question) -> (correct, tokens, flops, wall) over seeds, per question."""
        rows = np.zeros((len(self.ids), 4))
        for pool in self.pools:
            for qid, q in pool.items():
                rows[self.index[qid]] += fn(q)
        rows /= len(self.pools)
        return rows[:, 0], Cost(rows[:, 1], rows[:, 2], rows[:, 3])

    def _pass_at_k_point(self, k: int) -> Point:
        def one(q: PoolQuestion):
            n = len(q.candidates)
            return (pass_at_k(n, sum(q.correct), k), *q.cost_of(k, k * sum(c.tokens for c in q.candidates) / n))
        correct, cost = self._per_question(one)
        return Point(PASS_AT_K, k, POOL, correct, cost, samples=float(k))

    def _replayed_point(self, strategy: ParallelStrategy, orders: np.ndarray) -> Point:
        used = []

        def one(q: PoolQuestion):
            r = replay(strategy, q.candidates[: self.pool_size], q.correct, orders)
            used.append(r.samples)
            return (r.accuracy, *q.cost_of(r.samples, r.tokens))
        correct, cost = self._per_question(one)
        return Point(strategy.name, strategy.budget, POOL, correct, cost, samples=float(np.mean(used)))

    def _run_points(self) -> list[Point]:
        points = []
        for (name, budget), seeds in self.run_lines.items():
            rows = np.zeros((len(self.ids), 4))
            for by_id in seeds:
                for qid, line in by_id.items():
                    rows[self.index[qid]] += (bool(line["correct"]), *run_cost(line))
            rows /= len(seeds)
            points.append(Point(name, budget or 1, "run", rows[:, 0], Cost(rows[:, 1], rows[:, 2], rows[:, 3]),
                                params=self.run_params[name]))
        return points

    def curve(self, strategy: str) -> list[Point]:
        return sorted((p for p in self.points if p.strategy == strategy), key=lambda p: p.budget)

    @property
    def strategies(self) -> list[str]:
        return list(dict.fromkeys(p.strategy for p in self.points))

    @property
    def baseline(self) -> str | None:
        return next((b for b in BASELINES if self.curve(b)), None)

    # -- fits ---------------------------------------------------------------------------------------
    def fits(self) -> dict:
        out = {}
        for name in self.strategies:
            curve = [p for p in self.curve(name) if p.cost.tokens.mean() > 0]
            if len({p.budget for p in curve}) < 2:
                continue
            out[name] = {axis: _fit_with_extrapolation([getattr(p.cost, axis).mean() for p in curve],
                                                       [p.accuracy for p in curve], axis)
                         for axis in ("tokens", "flops") if all(getattr(p.cost, axis).mean() > 0 for p in curve)}
        return out

    def coverage(self) -> dict | None:
        curve = self.curve(PASS_AT_K)
        try:
            fit = fit_coverage([p.budget for p in curve], [p.accuracy for p in curve])
        except ValueError as exc:
            return {"error": str(exc)}
        far = [4 * self.pool_size, 16 * self.pool_size]
        return {**fit.to_dict(), "extrapolated": [{"k": k, "pass@k": fit.predict(k)[0],
                                                   "ci95": list(fit.predict(k)[1:])} for k in far]}

    # -- difficulty -----------------------------------------------------------------------------------
    def oracle_difficulty(self) -> np.ndarray:
        """1 - pass@1 in the pool (uses gold answers)."""
        correct, _ = self._per_question(lambda q: (float(np.mean(q.correct)), 0, 0, 0))
        return 1.0 - correct

    def predicted_difficulty(self, samples: int | None = None) -> np.ndarray:
        """1 - easiness (agreement and mean verifier score) of the first ``samples`` samples of the
        first seed's pool, all when None; no gold answers. The policy reads it from its probe."""
        pool = self.pools[0]
        return np.array([1.0 - probe_easiness([c.key for c in pool[q].candidates[:samples]],
                                              [c.score for c in pool[q].candidates[:samples]])
                         for q in self.ids])

    def best_per_level(self, difficulty: np.ndarray) -> list[dict]:
        levels = assign_levels(difficulty, level_edges(difficulty))
        out = []
        for level in range(1, LEVELS + 1):
            rows = np.flatnonzero(levels == level)
            if rows.size == 0:
                out.append({"level": level, "questions": 0})
                continue
            scored = sorted((p for p in self.points if p.strategy != PASS_AT_K),
                            key=lambda p: (-p.correct[rows].mean(), p.cost.tokens[rows].mean()))
            best = scored[0]
            # "Best" is a claim only where it is separated from the runner-up on this level's questions.
            runner_up = scored[1] if len(scored) > 1 else None
            versus = paired_difference(best.correct[rows], runner_up.correct[rows], seed=self.seed) if runner_up else None
            out.append({"level": level, "questions": int(rows.size), "best": f"{best.strategy}@{best.budget}",
                        "versus_next": None if versus is None else
                        {"strategy": f"{runner_up.strategy}@{runner_up.budget}", **versus.to_dict()},
                        "accuracy": float(best.correct[rows].mean()), "tokens": float(best.cost.tokens[rows].mean()),
                        "points": {f"{p.strategy}@{p.budget}": float(p.correct[rows].mean()) for p in scored}})
        return out

    # -- compute-optimal policy ---------------------------------------------------------------------
    def options(self) -> list[Option]:
        """Every scored point as a policy option; its cost includes the probe it follows."""
        probe = self._probe_cost()
        out = []
        for p in self.points:
            if p.strategy == PASS_AT_K:
                continue
            # A parallel option continues the probe's sample stream; a search pays for the probe on top.
            cost = np.maximum(p.cost.tokens, probe) if p.source == POOL else p.cost.tokens + probe
            out.append(Option(p.strategy, p.budget, p.correct, cost, name=p.name, params=p.params or {}))
        return out

    def _probe_cost(self) -> np.ndarray:
        pool = self.pools[0]
        return np.array([pool[q].cost_of(self.probe, sum(c.tokens for c in pool[q].candidates[: self.probe]))[0]
                         for q in self.ids])

    def compute_optimal_missing(self) -> str | None:
        """Why there is no compute-optimal curve, or None when there is one."""
        if not self.pools:
            return "no shared sample pool in this run (make one with `testtime sweep`)"
        if self.baseline is None:
            return f"no baseline strategy among {', '.join(BASELINES)} in the sweep"
        if len(self.ids) < 4:
            return f"needs at least 4 questions to cross-validate on two folds; the run has {len(self.ids)}"
        return None

    def compute_optimal(self) -> dict | None:
        """The cross-validated policy's curve against best-of-N, with efficiency ratios."""
        base = self.baseline
        if self.compute_optimal_missing():
            return None
        options, difficulty = self.options(), self.predicted_difficulty(self.probe)
        baseline = self.curve(base)
        base_costs = [p.cost.tokens.mean() for p in baseline]
        base_accs = [p.accuracy for p in baseline]
        most_accurate = max(baseline, key=lambda p: p.accuracy)
        curve = []
        for point in baseline:
            if point.budget < self.probe:  # the probe alone would spend more than this budget
                continue
            limit = float(point.cost.tokens.mean())
            correct, cost, policies = cross_validated(options, difficulty, self.ids, limit, seed=self.seed)
            acc, spent = float(correct.mean()), float(cost.mean())
            # A ratio is claimed only where the policy's accuracy is separated above the baseline's on the
            # same questions: against the same budget for "needs x times", the best point for "never matches".
            # A policy separated below the baseline gets no ratio either: whatever its tokens, it lost.
            same_budget = paired_difference(correct, point.correct, seed=self.seed)
            versus_best = paired_difference(correct, most_accurate.correct, seed=self.seed)
            match = cost_to_match(base_costs, base_accs, acc)
            if match == min(base_costs) or not (same_budget.separated and same_budget.difference > 0):
                match = None  # no ratio to claim: matched by the cheapest point, within noise, or below
            never_matched = acc > max(base_accs) and versus_best.separated and versus_best.difference > 0
            fixed = self.best_fixed_within(limit)
            curve.append({"budget": point.budget, "limit_tokens": limit, "accuracy": acc,
                          "ci95": list(bootstrap_interval(correct, seed=self.seed)), "tokens": spent,
                          "baseline_accuracy": point.accuracy,
                          "versus_baseline": same_budget.to_dict(),
                          "versus_best_baseline": {"budget": most_accurate.budget, **versus_best.to_dict()},
                          "baseline_tokens_to_match": match,
                          "efficiency": (match / spent) if match else None,
                          "efficiency_at_least": max(base_costs) / spent if never_matched else None,
                          # Is choosing per question better than the best one strategy at this cost?
                          "versus_best_fixed": None if fixed is None else {
                              "strategy": f"{fixed.strategy}@{fixed.budget}",
                              **paired_difference(correct, fixed.correct, seed=self.seed).to_dict()},
                          "folds": [p.to_dict() for p in policies]})
        return {"baseline": base, "probe": self.probe, "curve": curve}

    def best_fixed_within(self, limit: float) -> Point | None:
        """The most accurate single strategy costing at most ``limit`` tokens per question. Chosen
        on every question (the policy is scored cross-validated), so the comparison favours it."""
        within = [p for p in self.points if p.strategy != PASS_AT_K and p.cost.tokens.mean() <= limit * (1 + 1e-9)]
        return max(within, key=lambda p: (p.accuracy, -p.cost.tokens.mean()), default=None)

    def deployable_policy(self) -> dict | None:
        """Per baseline budget, the policy learned on every question: what `compute_optimal` runs."""
        base = self.baseline
        if not self.pools or base is None:
            return None
        options, difficulty = self.options(), self.predicted_difficulty(self.probe)
        rows = np.arange(len(self.ids))
        tables = {str(p.budget): learn_policy(options, difficulty, rows, float(p.cost.tokens.mean())).to_dict()
                  for p in self.curve(base) if p.budget >= self.probe}
        return {"version": 1, "probe": self.probe, "baseline": base, "difficulty": "1 - probe_easiness",
                "budgets": tables}

    # -- everything -----------------------------------------------------------------------------------
    def gains_over_one_sample(self) -> list[dict]:
        """Each strategy at its largest budget against one sample (single@1), paired on the same questions."""
        one = next((p for p in self.points if p.strategy == "single" and p.budget == 1), None)
        if one is None:
            return []
        largest: dict[str, Point] = {}
        for p in self.points:
            if p.strategy == PASS_AT_K or p is one:  # an oracle, not a strategy one could run
                continue
            if p.strategy not in largest or p.budget > largest[p.strategy].budget:
                largest[p.strategy] = p
        return [{"strategy": p.strategy, "budget": p.budget,
                 **paired_difference(p.correct, one.correct, seed=self.seed).to_dict()} for p in largest.values()]

    def to_dict(self) -> dict:
        oracle = self.oracle_difficulty() if self.pools else None
        predicted = self.predicted_difficulty() if self.pools else None
        return {
            "questions": len(self.ids),
            "pool_size": self.pool_size,
            "seeds": len(self.pools),
            "orders": self.orders_count,
            "points": [p.to_dict(self.seed) for p in self.points],
            "gains_over_one_sample": self.gains_over_one_sample(),
            "fits": self.fits(),
            "coverage": self.coverage() if self.pools else None,
            "difficulty": None if oracle is None else {
                "oracle": self.best_per_level(oracle),
                "predicted": self.best_per_level(predicted),
                "oracle_of_question": oracle.tolist(),
                "predicted_of_question": predicted.tolist(),
                "probe_of_question": self.predicted_difficulty(self.probe).tolist(),
            },
            "compute_optimal": self.compute_optimal(),
            "missing": {k: v for k, v in {"compute_optimal": self.compute_optimal_missing()}.items() if v},
            "unfinished": self.unfinished,
        }


def points_so_far(lines_by_unit: Sequence[tuple[dict, list[dict]]], *, strategies: Sequence[str] = (),
                  seed: int = 0) -> list[dict]:
    """Each unit's points on the questions it has finished so far (a run still filling: the live view).

    Units are not paired here: each point says over how many questions it stands, and a point of a unit
    half done is not comparable with one of another unit. The report's analysis pairs finished units."""
    labels = run_labels([d for d, _ in lines_by_unit])
    out = []
    for label, (d, lines) in zip(labels, lines_by_unit):
        if not lines:
            continue
        # 16 replay orders, not the report's 64: redone at every chunk, and the page says these are provisional
        analysis = SweepAnalysis([(d, lines)], strategies=strategies, orders=16, seed=seed)
        for point in analysis.points:
            if point.source == "run":
                point.strategy = label  # alone, a unit loses the parameter that tells it from its siblings
            out.append(point.to_dict(seed))
    return out
