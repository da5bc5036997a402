"""Training the PRM and its ORM baseline from labelled questions.

The PRM head learns each step's Monte Carlo value from the hidden state at the
step's end; the ORM head learns final-answer correctness from the state at the
solution's end. Both see the same solutions. A share of the questions is held out
(chosen by a hash of the id, so it is stable) and never trained on: the held-out
metrics, and `testtime eval-verifier`'s step AUROC, come from them.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from testtime.heads.artifact import HeadArtifact
from testtime.heads.features import HiddenStates
from testtime.analysis.verifier_eval import auroc
from testtime.heads.head import choose_alpha, fit_value_head, out_of_fold
from testtime.store import write_atomic


def is_heldout(question_id: str, fraction: float, seed: int = 0) -> bool:
    digest = hashlib.sha256(f"{seed}:{question_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64 < fraction


@dataclass
class StepTable:
    """Every labelled step as a row: its features and labels, and where it came from."""

    features: np.ndarray  # steps x width
    value: np.ndarray  # soft label: share of continuations reaching the gold answer
    hard: np.ndarray  # any continuation reached it
    last: np.ndarray  # the step ends its solution
    solution_correct: np.ndarray
    question: list[str]
    features_cached: bool = False  # read from the cache, not computed now

    def rows(self, mask: np.ndarray) -> StepTable:
        return StepTable(self.features[mask], self.value[mask], self.hard[mask], self.last[mask],
                         self.solution_correct[mask], [q for q, m in zip(self.question, mask) if m])


def step_table(records: Sequence[dict], features: HiddenStates, cache: Path | None = None) -> StepTable:
    """The rows of every step; with ``cache``, features computed once for these records are reused."""
    solutions = [(r, s) for r in records for s in r["solutions"]]
    items = [(r["question"], [step["text"] for step in s["steps"]]) for r, s in solutions]
    key = hashlib.sha256(json.dumps([repr(features.spec), items]).encode()).hexdigest()
    stacked = _cached(cache, key)
    from_cache = stacked is not None
    if stacked is None:
        arrays = features(items)
        stacked = np.concatenate(arrays) if arrays else np.zeros((0, features.width), dtype=np.float32)
        if cache is not None:
            buffer = io.BytesIO()
            np.savez(buffer, key=key, features=stacked)
            write_atomic(cache, buffer.getvalue())
    value, hard, last, correct, question = [], [], [], [], []
    for r, s in solutions:
        for i, step in enumerate(s["steps"]):
            value.append(step["value"])
            hard.append(step["hits"] > 0)
            last.append(i == len(s["steps"]) - 1)
            correct.append(bool(s["correct"]))
            question.append(r["id"])
    return StepTable(stacked, np.array(value), np.array(hard, dtype=bool), np.array(last, dtype=bool),
                     np.array(correct, dtype=bool), question, from_cache)


def _cached(cache: Path | None, key: str) -> np.ndarray | None:
    """The stored features when the cache was made for exactly these solutions and this feature model."""
    if cache is None or not cache.exists():
        return None
    with np.load(cache) as stored:
        return stored["features"] if str(stored["key"]) == key else None


def _rounded(losses: dict[float, float]) -> dict[float, float]:
    return {alpha: round(float(loss), 4) for alpha, loss in losses.items()}


def train_heads(records: Sequence[dict], features: HiddenStates, heldout_fraction: float = 0.25,
                seed: int = 0, log: Callable[[str], None] = print, cache: Path | None = None) -> HeadArtifact:
    """Fit the PRM and ORM heads on the training questions; metrics on the held-out ones."""
    started = time.perf_counter()
    table = step_table(records, features, cache)
    featured = time.perf_counter()
    held = np.array([is_heldout(q, heldout_fraction, seed) for q in table.question], dtype=bool)
    train, test = table.rows(~held), table.rows(held)
    if len(set(train.question)) < 2 or not (0 < train.value.mean() < 1):
        raise ValueError(f"too little to train on: {len(set(train.question))} training questions, "
                         f"mean step value {train.value.mean() if len(train.value) else 0:.3f}; label more questions")
    alpha_prm, losses_prm = choose_alpha(train.features, train.value, train.question)
    prm = fit_value_head(train.features, train.value, alpha_prm)
    ends = train.rows(train.last)
    alpha_orm, losses_orm = choose_alpha(ends.features, ends.solution_correct.astype(float), ends.question)
    orm = fit_value_head(ends.features, ends.solution_correct.astype(float), alpha_orm)
    log(f"PRM alpha {alpha_prm} (cross-validated log loss by alpha: {_rounded(losses_prm)}); "
        f"ORM alpha {alpha_orm} ({_rounded(losses_orm)})")
    test_ends = test.rows(test.last)
    metrics = {
        "heldout_step_auroc": auroc(prm.predict(test.features), test.hard) if len(test.value) else None,
        "heldout_step_auroc_soft_above_half": auroc(prm.predict(test.features), test.value > 0.5)
        if len(test.value) else None,
        "heldout_outcome_auroc_orm": auroc(orm.predict(test_ends.features), test_ends.solution_correct)
        if len(test_ends.value) else None,
        "heldout_outcome_auroc_prm_last": auroc(prm.predict(test_ends.features), test_ends.solution_correct)
        if len(test_ends.value) else None,
        "train_step_auroc": auroc(prm.predict(train.features), train.hard),
        # Every question held out once (4 folds by question): a steadier estimate than one split.
        "crossval_step_auroc": auroc(out_of_fold(table.features, table.value, table.question, alpha_prm), table.hard),
    }
    sizes = {"questions": len({r["id"] for r in records}),
             "rolled_out_questions": sum(bool(r.get("rolled_out")) for r in records),
             "train_questions": len(set(train.question)), "heldout_questions": len(set(test.question)),
             "train_steps": int(len(train.value)), "heldout_steps": int(len(test.value)),
             "train_solutions": int(train.last.sum()), "heldout_solutions": int(test.last.sum()),
             "positive_step_share": float(table.hard.mean()) if len(table.hard) else 0.0,
             "mean_step_value": float(table.value.mean()) if len(table.value) else 0.0,
             "feature_width": int(features.width)}
    meta = {"training": {"heldout_fraction": heldout_fraction, "seed": seed, "alpha": {"prm": alpha_prm,
                                                                                       "orm": alpha_orm},
                         "feature_seconds": round(featured - started, 1),
                         "features_from_cache": table.features_cached,
                         "fit_seconds": round(time.perf_counter() - featured, 1)},
            "sizes": sizes, "metrics": metrics,
            "heldout_ids": sorted(set(test.question))}
    return HeadArtifact(feature=features.spec, heads={"prm": prm, "orm": orm}, meta=meta, records=list(records))
