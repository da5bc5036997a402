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

from snapshots import run_options, run_resumable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--chains", type=int, action="append", help="chains of revisions; repeat (default 1, 2, 4)")
    parser.add_argument("--chunk-size", type=int, default=50, help="questions per committed batch (a chain of "
                        "one is as many sequences as questions in its chunk: larger chunks batch better)")
    run_options(parser, "runs/revisions")
    a = parser.parse_args()
    chains = [c for c in a.chains or [1, 2, 4] if c < a.budget]  # chains = budget is majority@budget
    if not run_resumable(["sweep", "--dataset", "gsm8k", "--data-root", a.data_root, "--limit", str(a.questions),
                       "--chunk-size", str(a.chunk_size), "--strategy", "majority", "--strategy", "single",
                       *(f"--strategy=revisions[chains={c}]@{a.budget}" for c in chains),
                       *(f"--n={2 ** i}" for i in range(a.budget.bit_length()) if 2 ** i <= a.budget)],
                      a.out, "revisions-sweep", a.snapshot):
        return
    scaling = json.loads((a.out / "scaling.json").read_text())
    for level in scaling["difficulty"]["oracle"]:
        print(json.dumps({k: level.get(k) for k in ("level", "questions", "best", "versus_next", "points")}))
    for row in by_attempt(a.out):
        print(json.dumps(row))


def by_attempt(run_dir: Path) -> list[dict]:
    """Per revisions unit: its accuracy as the strategy's own rule chooses from the stored attempts (a run
    stored before a change of that rule is read again by the rule of today), and the accuracy of each
    attempt position of the first chain, each paired against the first attempt."""
    from testtime.analysis.paired import paired_difference
    from testtime.answers import answers_match
    from testtime.store import RunStore
    from testtime.strategies.base import make_candidate
    from testtime.strategies.revisions import choose

    store = RunStore(run_dir)
    rows = []
    for description, lines in store.lines_by_unit():
        if description["strategy"] != "revisions":
            continue
        chosen = [choose([[make_candidate(x["text"], x["tokens"]) for x in chain] for chain in line["chains"]],
                         description["selector"])[0] for line in lines]
        right = [[float(answers_match(x["answer"], line["gold"])) for x in line["chains"][0]] for line in lines]
        rows.append({"chains": description["chains"], "budget": description["budget"], "questions": len(lines),
                     "accuracy": sum(answers_match(c.answer if c else None, line["gold"])
                                     for c, line in zip(chosen, lines)) / len(lines),
                     "first_chain_by_attempt": [
                         {"attempt": k, "accuracy": sum(r[k] for r in right) / len(right),
                          **({"versus_first": paired_difference([r[k] for r in right], [r[0] for r in right]).to_dict()}
                             if k else {})} for k in range(len(right[0]))]})
    store.close()
    return rows


if __name__ == "__main__":
    main()
