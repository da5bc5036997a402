"""The shipped PRM: label GSM8K train by rollouts of the embedded model, train the heads,
and evaluate them on a pool of GSM8K test samples. Each step is a plain `testtime`
command and resumes where it stopped, so the script can be rerun.

The embedded 135M model solves few GSM8K questions, and only questions it sometimes
solves give step labels with both outcomes; so the training questions are the first
--questions of GSM8K train whose reference solution has at most --max-reference-steps
calculations (the test pool is not filtered).

    .venv/bin/python bench/train_prm.py --questions 128 --out runs/prm            # label, train, pool, eval
    .venv/bin/python bench/train_prm.py --stage ship                              # into the package
    .venv/bin/python bench/train_prm.py --stage summary                           # every README figure
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTTIME = [sys.executable, "-m", "testtime"]


def step(args: list[str], resume_if: Path) -> None:
    resume = ["--resume"] if resume_if.exists() else []
    print("$ testtime", " ".join(args + resume), flush=True)
    subprocess.run(TESTTIME + args + resume, check=True)


def short_questions(data_root: Path, out: Path, limit: int, max_steps: int) -> Path:
    """GSM8K train questions with few reference calculations, as question/answer JSONL (ids kept)."""
    path = out / f"gsm8k-train-max{max_steps}.jsonl"
    rows = []
    for line_number, line in enumerate((data_root / "gsm8k" / "train.jsonl").open(), start=1):
        row = json.loads(line)
        if row["answer"].count("<<") <= max_steps:
            gold = row["answer"].split("####")[-1].strip().replace(",", "")
            rows.append({"id": f"gsm8k-train-{line_number}", "question": row["question"], "answer": gold})
        if len(rows) == limit:
            break
    out.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=128)
    parser.add_argument("--max-reference-steps", type=int, default=2)
    parser.add_argument("--test-questions", type=int, default=16)
    parser.add_argument("--pool", type=int, default=64)
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("runs/prm"))
    parser.add_argument("--stage", choices=("label", "train", "pool", "eval", "ship", "summary", "all"),
                        default="all")
    a = parser.parse_args()
    train_file = short_questions(a.data_root, a.out, a.questions, a.max_reference_steps)
    label = ["train-prm", "--dataset", str(train_file), "--out", str(a.out)]
    if a.stage in ("label", "all"):
        step(label + ["--label-only"], a.out / "run.db")
    if a.stage in ("train", "all"):
        step(label, a.out / "run.db")
    pool = a.out / "test-pool"
    if a.stage in ("pool", "all"):
        step(["sweep", "--dataset", "gsm8k", "--data-root", str(a.data_root), "--limit", str(a.test_questions),
              "--max-tokens", "256", "--strategy", "majority", "--n", str(a.pool), "--chunk-size", "4",
              "--out", str(pool)], pool / "run.db")
    if a.stage in ("eval", "all"):
        subprocess.run(TESTTIME + ["eval-verifier", str(pool), "--artifact", str(a.out / "artifact"),
                                   "--max-n", str(a.pool)], check=True)
    if a.stage == "ship":  # the artifact becomes the package's default `prm` / `orm`
        shipped = REPO / "src" / "testtime" / "data" / "verifiers" / "smollm2-gsm8k"
        shutil.rmtree(shipped, ignore_errors=True)
        shutil.copytree(a.out / "artifact", shipped)
        shutil.copy(REPO / "src" / "testtime" / "data" / "LICENSE-gsm8k", shipped / "LICENSE-gsm8k")
        print(f"shipped {a.out / 'artifact'} as {shipped}")
    if a.stage in ("summary", "all"):
        print(json.dumps(summary(a.out, pool), indent=1))


def summary(out: Path, pool: Path) -> dict:
    """Every figure the README quotes, read back from the stored runs and the artifact."""
    import gzip

    from testtime.answers import answers_match

    artifact = out / "artifact"
    meta = json.loads((artifact / "artifact.json").read_text())
    with gzip.open(artifact / "labels.jsonl.gz", "rt") as f:
        records = [json.loads(line) for line in f]
    samples = [s for r in records for s in r["solutions"]]
    lines = [json.loads(line) for line in (pool / "results.jsonl").open()]
    right = [sum(answers_match(c["answer"], line["gold"]) for c in line["candidates"]) for line in lines]
    [pool_row] = json.loads((pool / "summary.json").read_text())["results"]
    evaluation = json.loads((pool / "verifier_eval.json").read_text())
    return {
        "labelling": {**meta["labels"], "steps": sum(len(s["steps"]) for s in samples),
                      "samples": len(samples), "right_samples": sum(s["correct"] for s in samples)},
        "training": meta["training"], "sizes": meta["sizes"], "metrics": meta["metrics"],
        "artifact_bytes": {p.name: p.stat().st_size for p in sorted(artifact.iterdir())},
        "pool": {"questions": len(lines), "completion_tokens": pool_row["completion_tokens"],
                 "wall_seconds": round(pool_row["wall_seconds"]), "right_samples": sum(right),
                 "samples": sum(len(line["candidates"]) for line in lines),
                 "questions_with_a_right_sample": sum(r > 0 for r in right)},
        "eval": {"step_auroc": evaluation["step_auroc"], "heldout_steps": evaluation["heldout_steps"],
                 "scoring_seconds": evaluation["scoring_seconds"],
                 "best_of_n": {f"{r['selector']} @{r['n']}": f"{100 * r['accuracy']:.1f} % "
                                                             f"({100 * r['ci95'][0]:.0f}-{100 * r['ci95'][1]:.0f})"
                               for r in evaluation["best_of_n"]}},
    }


if __name__ == "__main__":
    main()
