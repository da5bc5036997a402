"""The scaling figures of docs/results/scaling.md: a sweep of the default model on GSM8K (one pool of 16
for every parallel strategy, beam search with the shipped PRM at budgets 4 and 16), the
larger model (Qwen2.5-Coder-1.5B) answering greedily on the same questions, and the
FLOPs-matched train-versus-test comparison. Each step is a plain `testtime` command that
resumes; `--snapshot` writes both run stores, compressed, to bench/data/ (commit them), and a
fresh machine restores them, so the sweep may span sessions.

    .venv/bin/python bench/scaling.py --questions 200 --out runs/scaling
    .venv/bin/python bench/scaling.py --snapshot            # after (or during) a long run
    .venv/bin/python bench/scaling.py --analyse             # the README's figures from what is stored, nothing run
    .venv/bin/python bench/scaling.py --small runs/prm/test-pool   # the larger model against a pool already run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from snapshots import REPO, restore, snapshot

from testtime.analysis.paired import paired_difference

TESTTIME = [sys.executable, "-m", "testtime"]
POOLED = ("single", "majority", "best_of_n", "weighted_best_of_n", "adaptive_consistency")
# The README's paired comparisons: (a, budget) - (b, budget), on the same questions.
PAIRS = [(("majority", 16), ("single", 1)), (("best_of_n", 8), ("single", 1)),
         (("weighted_best_of_n", 16), ("majority", 16)), (("weighted_best_of_n", 8), ("majority", 8)),
         (("best_of_n", 16), ("majority", 16)), (("beam_search", 4), ("single", 1)),
         (("beam_search", 4), ("majority", 4)), (("beam_search", 4), ("best_of_n", 4)),
         (("beam_search", 4), ("weighted_best_of_n", 4)),
         (("beam_search", 16), ("single", 1)), (("beam_search", 16), ("beam_search", 4)),
         (("beam_search", 16), ("best_of_n", 16)),
         (("beam_search", 16), ("majority", 16)), (("beam_search", 16), ("weighted_best_of_n", 16))]


def step(args: list[str], out: Path) -> None:
    resume = ["--resume"] if (out / "run.db").exists() else []
    print("$ testtime", " ".join(args + resume), flush=True)
    subprocess.run(TESTTIME + args + resume, check=True)


LEVEL_POINTS = ("single@1", "majority@16", "weighted_best_of_n@16", "beam_search@16")  # the README's per level


def analyse(small: Path, large: Path) -> None:
    """Points, fits, the compute-optimal policy (`testtime report`), then the paired comparisons,
    the policy's choices, train-vs-test, coverage law and difficulty levels of the README, from the
    stores as they are."""
    from testtime.analysis.sweep import SweepAnalysis
    from testtime.store import RunStore

    subprocess.run(TESTTIME + ["report", str(small)], check=True)
    store = RunStore(small)
    analysis = SweepAnalysis(store.lines_by_unit(), strategies=store.config.get("pool_strategies", ()))
    store.close()
    points = {(p.strategy, p.budget): p for p in analysis.points}
    for a, b in PAIRS:
        if a in points and b in points:  # an unfinished unit has no point yet
            d = paired_difference(points[a].correct, points[b].correct)
            print(d.describe(f"{a[0]}@{a[1]}", f"{b[0]}@{b[1]}"))
    held_out_levels(analysis, points)
    if (large / "run.db").exists():
        subprocess.run(TESTTIME + ["train-vs-test", str(small), str(large)], check=True)
    scaling = json.loads((small / "scaling.json").read_text())
    print(json.dumps({"coverage": scaling["coverage"],
                      "policy_choices": {row["budget"]: [[f"L{c['level']}: {c['strategy']}@{c['budget']}"
                                                          for c in fold["choices"]] for fold in row["folds"]]
                                         for row in (scaling["compute_optimal"] or {}).get("curve", [])},
                      "difficulty": {kind: [{k: row.get(k) for k in ("level", "questions", "best", "accuracy",
                                                                     "versus_next")}
                                            | {p: row.get("points", {}).get(p) for p in LEVEL_POINTS}
                                            for row in scaling["difficulty"][kind]]
                                     for kind in ("oracle", "predicted")}}, indent=1))


def held_out_levels(analysis, points: dict) -> None:
    """Search against voting per difficulty level, without the pool's regression to the mean: the
    oracle levels come from the pool's first half, the votes from its second half (other draws),
    so a level's easy or hard luck in the first half does not decide its votes."""
    import numpy as np

    from testtime.policy import assign_levels, level_edges
    from testtime.selection import select_majority, select_weighted

    pool, half = analysis.pools[0], analysis.pool_size // 2
    questions = [pool[q] for q in analysis.ids]
    difficulty = np.array([1.0 - np.mean(q.correct[:half]) for q in questions])
    levels = assign_levels(difficulty, level_edges(difficulty))

    def voted(select, k: int) -> np.ndarray:
        rest = [(q.candidates[half:half + k], q.correct[half:half + k]) for q in questions]
        return np.array([float(correct[cands.index(chosen)]) if (chosen := select(cands)) else 0.0
                         for cands, correct in rest])

    sides = {"one sample": np.array([np.mean(q.correct[half:]) for q in questions]),
             f"majority@{half}": voted(select_majority, half), f"weighted@{half}": voted(select_weighted, half),
             "majority@4": voted(select_majority, 4), "weighted@4": voted(select_weighted, 4)}
    searches = {f"beam_search@{b}": points[("beam_search", b)].correct for b in (4, 16) if ("beam_search", b) in points}
    print(f"levels from the pool's first {half} samples, votes from its other {half}:")
    for level in range(1, int(levels.max()) + 1):
        rows = np.flatnonzero(levels == level)
        if rows.size == 0:
            continue
        said = ", ".join(f"{name} {side[rows].mean():.1%}" for name, side in {**sides, **searches}.items())
        print(f" level {level} ({rows.size} questions, first-half pass@1 "
              f"{1 - difficulty[rows].max():.2f}-{1 - difficulty[rows].min():.2f}): {said}")
        for search, correct in searches.items():
            against = "majority@4" if search.endswith("@4") else f"weighted@{half}"
            print("   " + paired_difference(correct[rows], sides[against][rows]).describe(search, against))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--pool", type=int, default=16, help="samples per question (largest parallel budget)")
    parser.add_argument("--search", default="beam_search@4,16", help="a search strategy with its budgets")
    parser.add_argument("--verifier", default="prm", help="the shipped PRM of the default model")
    parser.add_argument("--large-model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", type=Path, default=Path("runs/scaling"))
    parser.add_argument("--snapshot", action="store_true", help="write the run stores to bench/data/ and stop")
    parser.add_argument("--analyse", action="store_true", help="analyse what the stores hold (nothing runs) and stop")
    parser.add_argument("--small", type=Path, help="a sweep of the default model already run on the same questions "
                        "(bench/train_prm.py's test pool): only the larger model runs, then train-vs-test")
    a = parser.parse_args()
    common = ["--dataset", "gsm8k", "--data-root", a.data_root, "--limit", str(a.questions), "--chunk-size", "25"]
    small, large = a.out / "small", a.out / "large"
    if a.snapshot:
        for run in (small, large):
            if (run / "run.db").exists():
                snapshot(run, f"scaling-{run.name}")
        return
    restore(large, "scaling-large")
    if a.analyse:
        restore(small, "scaling-small")
        analyse(small, large)
        return
    if a.small:
        small = a.small
    else:
        restore(small, "scaling-small")
        budgets = [f"--n={2 ** i}" for i in range(a.pool.bit_length()) if 2 ** i <= a.pool]
        step(["sweep", *common, *(f"--strategy={s}" for s in (*POOLED, a.search)), *budgets,
              "--verifier", a.verifier, "--width", "4", "--out", str(small)], small)
    step(["run", *common, "--chunk-size", "100", "--model", a.large_model, "--strategy", "single",  # greedy batches well
          "--temperature", "0", "--out", str(large)], large)
    subprocess.run(TESTTIME + ["train-vs-test", str(small), str(large)], check=True)

    scaling = json.loads((small / "scaling.json").read_text())
    print(json.dumps({"fits": {k: v.get("tokens") for k, v in scaling["fits"].items()},
                      "coverage": scaling["coverage"],
                      "compute_optimal": [{k: r[k] for k in ("budget", "accuracy", "tokens", "baseline_accuracy",
                                                             "versus_baseline", "efficiency", "efficiency_at_least")}
                                          for r in (scaling["compute_optimal"] or {}).get("curve", [])],
                      "train_vs_test": scaling.get("train_vs_test", {}).get("rows")}, indent=1))


if __name__ == "__main__":
    main()
