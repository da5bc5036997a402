"""How good is a verifier? Step-level AUROC on labelled steps, and the Lightman-style
comparison: best-of-N accuracy by N for several selectors, all from one shared pool.

Best-of-N is computed exactly: the expected accuracy of taking the top-scored
solution of a uniformly random N-subset of the pool, ties broken uniformly.
Majority voting is replayed on random orders of the pool (the `majority`
strategy's own rule). Intervals: bootstrap over questions, with the same
resamples for every selector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from math import comb
from typing import Sequence

import numpy as np
from scipy.stats import rankdata

from testtime.analysis.estimators import bootstrap_interval, pass_at_k, replay, sample_orders
from testtime.analysis.paired import Difference, paired_difference
from testtime.answers import normalize_answer, stored_correct
from testtime.selection import Candidate


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Area under the ROC curve (ties count one half); None without both classes."""
    s, pos = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def best_of_n_accuracy(scores: Sequence[float], correct: Sequence[bool], n: int) -> float:
    """E[top-scored of a random n-subset is correct]; a tie at the top is broken uniformly."""
    total = len(scores)
    if not 1 <= n <= total:
        raise ValueError(f"best-of-{n} needs 1 <= n <= pool size {total}")
    ranked = sorted(zip(scores, correct), key=lambda sc: -sc[0])
    accuracy, above = 0.0, 0
    for _, level in groupby(ranked, key=lambda sc: sc[0]):
        members = [c for _, c in level]
        # P(the subset's best score is this level) = P(nothing above) - P(nothing at or above).
        p_top = (comb(total - above, n) - comb(total - above - len(members), n)) / comb(total, n)
        accuracy += p_top * sum(members) / len(members)
        above += len(members)
    return accuracy


@dataclass
class PoolQuestion:
    """One question of a pool: its candidates' answers, correctness, and each selector's scores."""

    id: str
    answers: list[str | None]
    correct: list[bool]
    scores: dict[str, list[float]] = field(default_factory=dict)


def pool_questions(lines: Sequence[dict]) -> list[PoolQuestion]:
    return [PoolQuestion(line["id"], [c["answer"] for c in line["candidates"]],
                         [stored_correct(c, line["gold"]) for c in line["candidates"]])
            for line in lines]


def vote_accuracy(question: PoolQuestion, n: int, orders: np.ndarray, scores: Sequence[float] | None = None) -> float:
    """Majority vote (``scores`` None) or the verifier-weighted vote of a random n-subset, replayed on
    ``orders`` with the strategies' own rules."""
    from testtime.strategies import Strategy

    rule = Strategy.create("majority" if scores is None else "weighted_best_of_n", budget=n)
    scores = [None] * len(question.answers) if scores is None else scores
    candidates = [Candidate(text="", answer=a, key=normalize_answer(a), score=s)
                  for a, s in zip(question.answers, scores)]
    return replay(rule, candidates, question.correct, orders).accuracy


def budgets_up_to(size: int) -> list[int]:
    return [2**i for i in range(size.bit_length()) if 2**i <= size]


def per_question_accuracy(questions: Sequence[PoolQuestion], n: int, pool_orders: np.ndarray) -> dict[str, list[float]]:
    """Each selector's expected correctness on each question at N = n: best-of-N and the weighted vote by
    every score, majority, and pass@N as the ceiling."""
    size = pool_orders.shape[1]
    out = {}
    for name in sorted({name for q in questions for name in q.scores}):
        out[f"best-of-N by {name}"] = [best_of_n_accuracy(q.scores[name][:size], q.correct[:size], n)
                                       for q in questions]
        out[f"weighted vote by {name}"] = [vote_accuracy(q, n, pool_orders, q.scores[name][:size])
                                           for q in questions]
    out["majority"] = [vote_accuracy(q, n, pool_orders) for q in questions]
    out["pass@N (oracle)"] = [pass_at_k(size, sum(q.correct[:size]), n) for q in questions]
    return out


def best_of_n_table(questions: Sequence[PoolQuestion], budgets: Sequence[int], orders: int = 256,
                    seed: int = 0) -> tuple[list[dict], dict[int, dict[str, list[float]]]]:
    """One row per selector and N (mean accuracy over questions, 95 % interval), and the per-question
    values behind them, by N, for paired comparisons."""
    rng = np.random.default_rng(seed)
    size = min(len(q.correct) for q in questions)
    pool_orders = sample_orders(size, orders, rng)
    rows, values_by_n = [], {}
    for n in budgets:
        values_by_n[n] = per_selector = per_question_accuracy(questions, n, pool_orders)
        for name, values in per_selector.items():
            low, high = bootstrap_interval(values, seed=seed)
            rows.append({"selector": name, "n": n, "accuracy": float(np.mean(values)), "ci95": [low, high]})
    return rows, values_by_n


def comparisons(values_by_n: dict[int, dict[str, list[float]]], verifier: str, seed: int = 0) -> list[dict]:
    """The paired differences the Lightman-style claim rests on, at the largest N: the verifier's
    weighted vote and best-of-N against majority and against one sample, majority against one sample."""
    pairs = [(f"weighted vote by {verifier}", "majority"), (f"best-of-N by {verifier}", "majority"),
             (f"weighted vote by {verifier}", "one sample"), (f"best-of-N by {verifier}", "one sample"),
             ("majority", "one sample")]
    return _paired_at_largest_n(values_by_n, pairs, seed)


def aggregation_comparisons(values_by_n: dict[int, dict[str, list[float]]], base: str,
                            seed: int = 0) -> list[dict]:
    """Each other aggregation of the PRM against ``base`` at the largest N, as a weighted vote and as
    best-of-N: which aggregation a PRM should default to, on these questions."""
    n = max(values_by_n)
    others = sorted(name.removeprefix("weighted vote by ") for name in values_by_n[n]
                    if name.startswith("weighted vote by prm (") and not name.endswith(f"by {base}"))
    pairs = [(f"{how} by {other}", f"{how} by {base}") for other in others for how in ("weighted vote", "best-of-N")]
    return _paired_at_largest_n(values_by_n, pairs, seed)


def _paired_at_largest_n(values_by_n: dict[int, dict[str, list[float]]], pairs: Sequence[tuple[str, str]],
                         seed: int) -> list[dict]:
    n = max(values_by_n)
    at_n, one = values_by_n[n], values_by_n[min(values_by_n)]["majority"]  # majority@1 is one sample
    out = []
    for a, b in pairs:
        if a not in at_n or (b != "one sample" and b not in at_n):
            continue
        diff = paired_difference(at_n[a], one if b == "one sample" else at_n[b], seed=seed)
        out.append({"a": f"{a} @{n}", "b": b if b == "one sample" else f"{b} @{n}", **diff.to_dict()})
    return out


def outcome_auroc(questions: Sequence[PoolQuestion]) -> dict[str, float | None]:
    """Per score: AUROC of a candidate's score against its correctness, over every candidate of the pool."""
    names = sorted({name for q in questions for name in q.scores})
    return {name: auroc([s for q in questions for s in q.scores[name]], [c for q in questions for c in q.correct])
            for name in names}


def outcome_auroc_intervals(questions: Sequence[PoolQuestion], base: str, resamples: int = 1000,
                            seed: int = 0) -> dict[str, dict]:
    """Per score: 95 % interval of its outcome AUROC, and its difference from ``base``'s with a paired
    interval. Bootstrap over questions: a resample takes a question's candidates whole, for every score
    alike, so what the scores share about a question cancels in the difference."""
    names = sorted({name for q in questions for name in q.scores})
    scores = {name: [np.asarray(q.scores[name], dtype=float) for q in questions] for name in names}
    correct = [np.asarray(q.correct, dtype=bool) for q in questions]
    point = outcome_auroc(questions)
    draws = np.full((resamples, len(names)), np.nan)
    rng = np.random.default_rng(seed)
    for r in range(resamples):
        pick = rng.integers(0, len(questions), len(questions))
        positive = np.concatenate([correct[i] for i in pick])
        for j, name in enumerate(names):
            value = auroc(np.concatenate([scores[name][i] for i in pick]), positive)
            draws[r, j] = np.nan if value is None else value
    draws = draws[~np.isnan(draws).any(axis=1)]  # resamples with one class only say nothing
    out = {}
    for j, name in enumerate(names):
        if point[name] is None or not len(draws):
            out[name] = {"auroc": point[name], "ci95": None, "minus_base": None}
            continue
        low, high = np.quantile(draws[:, j], [0.025, 0.975])
        row = {"auroc": point[name], "ci95": [float(low), float(high)], "minus_base": None}
        if name != base and point.get(base) is not None:
            diff = draws[:, j] - draws[:, names.index(base)]
            d_low, d_high = np.quantile(diff, [0.025, 0.975])
            row["minus_base"] = Difference(point[name] - point[base], float(d_low), float(d_high),
                                           len(questions)).to_dict()
        out[name] = row
    return out


def heldout_step_auroc(records: Sequence[dict], verifier, delimiter: str) -> float | None:
    """AUROC of a process verifier's step scores against the hard labels of labelled steps."""
    from testtime.verifiers import Solution

    solutions = [(r["question"], s["steps"]) for r in records for s in r["solutions"]]
    scored = verifier.score_steps([Solution(q, delimiter.join(st["text"] for st in steps), delimiter)
                                   for q, steps in solutions])
    scores, labels = [], []
    for (_, steps), step_scores in zip(solutions, scored):
        if len(step_scores.scores) != len(steps):
            raise ValueError(f"{verifier.name} gave {len(step_scores.scores)} scores for {len(steps)} steps")
        scores += step_scores.scores
        labels += [st["hits"] > 0 for st in steps]
    return auroc(scores, labels)


def score_pool(lines: Sequence[dict], questions: Sequence[PoolQuestion], prm, orm, arithmetic, judge=None,
               on_question=None) -> None:
    """Fill each question's scores: the PRM under three aggregations, the ORM, the arithmetic verifier,
    and an LLM judge where one is given (the whole pool in one batched engine call)."""
    from testtime.verifiers import Aggregation, Solution, aggregate

    every = [[Solution(line["question"], c["text"]) for c in line["candidates"]] for line in lines]
    for solutions, question in zip(every, questions):
        steps = [s.scores for s in prm.score_steps(solutions)]
        for how in (Aggregation.PRODUCT, Aggregation.MIN, Aggregation.LAST):
            question.scores[f"prm ({how.value})"] = [aggregate(s, how) for s in steps]
        question.scores["orm"] = orm.score(solutions)
        question.scores["arithmetic"] = arithmetic.score(solutions)
        if on_question:
            on_question()
    if judge is not None:
        judged = iter(judge.score([s for solutions in every for s in solutions]))
        for solutions, question in zip(every, questions):
            question.scores["llm judge"] = [next(judged) for _ in solutions]
