"""The scaling figures of the README: a sweep of the embedded model on GSM8K, a larger
model (Gemma 3 270M) answering greedily on the same questions, and the FLOPs-matched
train-versus-test comparison. Each step is a plain `testtime` command; a step whose run
directory is complete is resumed (nothing recomputed), so the script can be rerun.

    .venv/bin/python bench/scaling.py --questions 60 --out runs/scaling
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTTIME = [sys.executable, "-m", "testtime"]
POOLED = ("single", "majority", "best_of_n", "weighted_best_of_n", "adaptive_consistency")


def step(args: list[str], out: Path) -> None:
    resume = ["--resume"] if (out / "run.db").exists() else []
    print("$ testtime", " ".join(args + resume), flush=True)
    subprocess.run(TESTTIME + args + resume, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--pool", type=int, default=16, help="samples per question (largest parallel budget)")
    parser.add_argument("--search", default="beam_search@4,8", help="a search strategy with its budgets")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--large-model", default="gemma3-270m")
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", type=Path, default=Path("runs/scaling"))
    a = parser.parse_args()
    common = ["--dataset", "gsm8k", "--data-root", a.data_root, "--limit", str(a.questions),
              "--max-tokens", str(a.max_tokens)]
    small, large = a.out / "small", a.out / "large"
    budgets = [f"--n={2 ** i}" for i in range(a.pool.bit_length()) if 2 ** i <= a.pool]
    step(["sweep", *common, *(f"--strategy={s}" for s in (*POOLED, a.search)), *budgets,
          "--verifier", "arithmetic", "--width", "2", "--out", str(small)], small)
    step(["run", *common, "--model", a.large_model, "--strategy", "single", "--temperature", "0",
          "--out", str(large)], large)
    subprocess.run(TESTTIME + ["train-vs-test", str(small), str(large)], check=True)

    scaling = json.loads((small / "scaling.json").read_text())
    print(json.dumps({"fits": {k: v.get("tokens") for k, v in scaling["fits"].items()},
                      "coverage": scaling["coverage"],
                      "compute_optimal": [{k: r[k] for k in ("budget", "accuracy", "tokens", "baseline_accuracy",
                                                             "efficiency", "efficiency_at_least")}
                                          for r in (scaling["compute_optimal"] or {}).get("curve", [])],
                      "train_vs_test": scaling.get("train_vs_test", {}).get("rows")}, indent=1))


if __name__ == "__main__":
    main()
