"""The shipped PRM: label GSM8K train by the default model's own samples, train the heads on its
hidden states, and evaluate them on a pool of GSM8K test samples. Each stage is a plain
`testtime` command that resumes where it stopped, so the script can be rerun, across sessions.

Labelling is the long part on 2 cores. `--stage snapshot` writes the labels' run store,
compressed, to bench/data/ (commit it); on a fresh machine the label stage restores it and
goes on from there, and a larger --questions labels only the new questions.

    .venv/bin/python bench/train_prm.py --stage label --questions 320      # resumable
    .venv/bin/python bench/train_prm.py --stage snapshot                    # then commit bench/data/
    .venv/bin/python bench/train_prm.py --stage train --layer 16 --layer 4  # one artifact per layer
    .venv/bin/python bench/train_prm.py --stage pool                        # GSM8K test pool of 16
    .venv/bin/python bench/train_prm.py --stage eval --layer 16 --layer 4   # verifier_eval.json; layers paired
    .venv/bin/python bench/train_prm.py --stage compare --layer 16 --layer 4  # the same pairing, from those files
    .venv/bin/python bench/train_prm.py --stage judge --judge-questions 40  # the 1.5B as LLM judge beside it
    .venv/bin/python bench/train_prm.py --stage ship --layer 16             # into the package
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from snapshots import REPO, restore, snapshot

TESTTIME = [sys.executable, "-m", "testtime"]


def step(args: list[str], resume_if: Path) -> None:
    resume = ["--resume"] if resume_if.exists() else []
    print("$ testtime", " ".join(args + resume), flush=True)
    subprocess.run(TESTTIME + args + resume, check=True)


def compare_layers(pool: Path, evals: dict[int, Path], top_n: int) -> None:
    """The first layer's PRM and ORM against each other layer's, on the same pool questions: outcome
    AUROC and the weighted vote and best-of-N at N = top_n, each a paired difference with its interval."""
    from testtime.analysis.paired import Difference, paired_difference
    from testtime.analysis.verifier_eval import (best_of_n_table, budgets_up_to, comparisons, outcome_auroc_intervals,
                                                 pool_questions)
    from testtime.store import RunStore

    store = RunStore(pool)
    lines = next(ls for unit, ls in store.lines_by_unit() if unit.get("strategy") == "pool")
    store.close()
    missing = [str(path) for path in evals.values() if not path.exists()]
    if missing or len(evals) < 2:
        sys.exit(f"compare needs two layers' evaluations; missing: {', '.join(missing) or 'a second --layer'} "
                 "(run --stage eval with those layers first)")
    scored = {layer: json.loads(path.read_text())["scores"] for layer, path in evals.items()}
    first, *others = evals
    for score in ("prm (last)", "orm"):
        for other in others:
            questions = pool_questions(lines[:len(scored[first])])
            for q, a, b in zip(questions, scored[first], scored[other]):
                assert q.id == a["id"] == b["id"], "the evaluations cover other questions"
                q.scores = {f"layer {first}": a[score], f"layer {other}": b[score]}
            auroc = outcome_auroc_intervals(questions, base=f"layer {other}")[f"layer {first}"]
            d = auroc["minus_base"]
            print(f"{score}, layer {first} against layer {other} on {len(questions)} questions: outcome AUROC "
                  f"{auroc['auroc']:.3f} against {auroc['auroc'] - d['difference']:.3f}, difference "
                  f"{d['difference']:+.3f} ({d['ci95'][0]:+.3f} to {d['ci95'][1]:+.3f})", flush=True)
            _, values = best_of_n_table(questions, budgets_up_to(top_n))
            for n in sorted({8, top_n} & set(values)) if other == others[0] else ():  # once per score
                for row in comparisons({1: values[1], n: values[n]}, f"layer {first}"):
                    print(f"  {Difference.from_dict(row).describe(row['a'], row['b'])}", flush=True)
            for how in ("weighted vote", "best-of-N"):
                diff = paired_difference(values[top_n][f"{how} by layer {first}"],
                                         values[top_n][f"{how} by layer {other}"])
                print(f"  {how} @{top_n}: {diff.describe(f'layer {first}', f'layer {other}')}", flush=True)


def main() -> None:
    from testtime.models import DEFAULT_MODEL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--questions", type=int, default=320)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--rollouts", type=int, default=0)
    parser.add_argument("--layer", type=int, action="append", help="feature layer(s); repeat")
    parser.add_argument("--test-questions", type=int, default=200)
    parser.add_argument("--pool", type=int, default=16)
    parser.add_argument("--judge", default="qwen2.5-coder-1.5b-instruct", help="--stage judge: the judging model")
    parser.add_argument("--judge-questions", type=int, default=40, help="--stage judge: the pool's first N questions")
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("runs/prm"))
    parser.add_argument("--stage", choices=("label", "snapshot", "train", "pool", "eval", "compare", "judge", "ship"), required=True)
    a = parser.parse_args()
    layers = a.layer or [16]  # the shipped layer
    label = ["train-prm", "--model", a.model, "--dataset", "gsm8k-train", "--data-root", str(a.data_root),
             "--limit", str(a.questions), "--samples", str(a.samples), "--rollouts", str(a.rollouts),
             "--chunk-size", "32", "--out", str(a.out)]
    pool = a.out / "test-pool"
    if a.stage == "label":
        restore(a.out, f"prm-labels-{a.model}")
        step(label + ["--label-only"], a.out / "run.db")
    elif a.stage == "snapshot":
        snapshot(a.out, f"prm-labels-{a.model}")
        if (pool / "run.db").exists():
            snapshot(pool, f"prm-test-pool-{a.model}")
    elif a.stage == "train":
        restore(a.out, f"prm-labels-{a.model}")
        for layer in layers:  # labels are all there: --resume labels nothing new
            step(label + ["--layer", str(layer)], a.out / "run.db")
            shutil.rmtree(a.out / f"artifact-layer{layer}", ignore_errors=True)
            shutil.move(a.out / "artifact", a.out / f"artifact-layer{layer}")
    elif a.stage == "pool":
        restore(pool, f"prm-test-pool-{a.model}")
        step(["sweep", "--model", a.model, "--dataset", "gsm8k", "--data-root", str(a.data_root),
              "--limit", str(a.test_questions), "--strategy", "majority", "--n", str(a.pool),
              "--chunk-size", "25", "--out", str(pool)], pool / "run.db")
    elif a.stage == "eval":
        restore(pool, f"prm-test-pool-{a.model}")
        for layer in layers:
            artifact = a.out / f"artifact-layer{layer}"
            if not artifact.exists():  # a fresh machine: the artifact shipped in the package, if of this layer
                artifact = REPO / "src" / "testtime" / "data" / "verifiers" / f"{a.model}-gsm8k"
                if json.loads((artifact / "artifact.json").read_text())["feature"]["layer"] != layer:
                    sys.exit(f"no {a.out / f'artifact-layer{layer}'} here, and the shipped artifact is of another "
                             f"layer: run --stage train --layer {layer} first")
                print(f"no {a.out / f'artifact-layer{layer}'} here: evaluating the shipped {artifact.name}", flush=True)
            subprocess.run(TESTTIME + ["eval-verifier", str(pool), "--artifact", str(artifact),
                                       "--max-n", str(a.pool)], check=True)
            shutil.copy(pool / "verifier_eval.json", a.out / f"verifier_eval-layer{layer}.json")
        if len(layers) > 1:
            compare_layers(pool, {layer: a.out / f"verifier_eval-layer{layer}.json" for layer in layers}, a.pool)
    elif a.stage == "compare":  # the evaluations already made, against each other
        compare_layers(pool, {layer: a.out / f"verifier_eval-layer{layer}.json" for layer in layers}, a.pool)
    elif a.stage == "judge":  # the judge reads every candidate whole: a subset of the pool, on a CPU
        restore(pool, f"prm-test-pool-{a.model}")
        subprocess.run(TESTTIME + ["eval-verifier", str(pool), "--judge", a.judge, "--limit", str(a.judge_questions),
                                   "--max-n", str(a.pool)], check=True)
        shutil.copy(pool / "verifier_eval.json", a.out / f"verifier_eval-judge-{a.judge_questions}.json")
    elif a.stage == "ship":  # the artifact becomes the package's default `prm` / `orm`
        shipped = REPO / "src" / "testtime" / "data" / "verifiers" / f"{a.model}-gsm8k"
        shutil.rmtree(shipped, ignore_errors=True)
        shutil.copytree(a.out / f"artifact-layer{layers[0]}", shipped)
        shutil.copy(REPO / "src" / "testtime" / "data" / "LICENSE-gsm8k", shipped / "LICENSE-gsm8k")
        print(f"shipped artifact-layer{layers[0]} as {shipped.relative_to(REPO)}")


if __name__ == "__main__":
    main()
