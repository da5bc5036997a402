"""The sequential/parallel ratio (Snell et al. 2024, section 6): at one budget, revisions in 1, 2, 4 ...
chains (chains = budget is parallel sampling: majority@budget from the shared pool), on GSM8K with the
default model, then the per-level analysis (which ratio is best for easy and for hard questions, with
paired intervals) and the compute-optimal policy that may choose among them. One `testtime sweep`,
resumable; `--snapshot` writes its run store to bench/data/ (commit it) and a fresh machine restores it.

    .venv/bin/python bench/revisions.py --questions 100 --budget 4 --chains 1 --chains 2
    .venv/bin/python bench/revisions.py --snapshot
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from snapshots import run_options, run_resumable, snapshot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--chains", type=int, action="append", help="chains of revisions; repeat (default 1, 2, 4)")
    parser.add_argument("--chunk-size", type=int, default=50, help="questions per committed batch (a chain of "
                        "one is as many sequences as questions in its chunk: larger chunks batch better)")
    run_options(parser, "runs/revisions")
    a = parser.parse_args()
    if a.snapshot:
        snapshot(a.out, "revisions-sweep")
        return
    chains = [c for c in a.chains or [1, 2, 4] if c < a.budget]  # chains = budget is majority@budget
    run_resumable(["sweep", "--dataset", "gsm8k", "--data-root", a.data_root, "--limit", str(a.questions),
                   "--chunk-size", str(a.chunk_size), "--strategy", "majority", "--strategy", "single",
                   *(f"--strategy=revisions[chains={c}]@{a.budget}" for c in chains),
                   *(f"--n={2 ** i}" for i in range(a.budget.bit_length()) if 2 ** i <= a.budget)],
                  a.out, "revisions-sweep")
    scaling = json.loads((a.out / "scaling.json").read_text())
    for level in scaling["difficulty"]["oracle"]:
        print(json.dumps({k: level.get(k) for k in ("level", "questions", "best", "versus_next", "points")}))


if __name__ == "__main__":
    main()
