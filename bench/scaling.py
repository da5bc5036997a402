"""The scaling figures of the README: a sweep of the default model on GSM8K (one pool of 16
for every parallel strategy, beam search with the shipped PRM at budgets 4 and 16), the
larger model (Qwen2.5-Coder-1.5B) answering greedily on the same questions, and the
FLOPs-matched train-versus-test comparison. Each step is a plain `testtime` command that
resumes; `--snapshot` writes both run stores, compressed, to bench/data/ (commit them), and a
fresh machine restores them, so the sweep may span sessions.

    .venv/bin/python bench/scaling.py --questions 200 --out runs/scaling
    .venv/bin/python bench/scaling.py --snapshot            # after (or during) a long run
    .venv/bin/python bench/scaling.py --small runs/prm/test-pool   # the larger model against a pool already run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from snapshots import REPO, restore, snapshot

TESTTIME = [sys.executable, "-m", "testtime"]
POOLED = ("single", "majority", "best_of_n", "weighted_best_of_n", "adaptive_consistency")


def step(args: list[str], out: Path) -> None:
    resume = ["--resume"] if (out / "run.db").exists() else []
    print("$ testtime", " ".join(args + resume), flush=True)
    subprocess.run(TESTTIME + args + resume, check=True)


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
