"""What the default model can do on MATH-500, by level: a pool of samples on the first questions of
each chosen level, then one sample, majority voting and pass@N per level, with majority against one
sample as a paired difference on the same questions. A plain `testtime sweep` that resumes;
`--snapshot` writes its store, compressed, to bench/data/ (commit it).

    .venv/bin/python bench/math500.py --levels 1,2,3 --per-level 20 --pool 8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from snapshots import run_options, run_resumable

from testtime.analysis.estimators import bootstrap_interval, sample_orders
from testtime.analysis.paired import paired_difference
from testtime.analysis.verifier_eval import per_question_accuracy, pool_questions
from testtime.store import RunStore


def questions_by_level(data_root: Path, levels: list[int], per_level: int) -> list[dict]:
    rows = [json.loads(line) for line in (data_root / "math500" / "test.jsonl").read_text().splitlines() if line]
    return [row for level in levels for row in [r for r in rows if r["level"] == level][:per_level]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,2,3", help="MATH levels, comma-separated")
    parser.add_argument("--per-level", type=int, default=20, help="questions per level (the first of each)")
    parser.add_argument("--pool", type=int, default=8, help="samples per question")
    parser.add_argument("--max-tokens", type=int, default=640)
    run_options(parser, "runs/math500")
    a = parser.parse_args()
    levels = [int(x) for x in a.levels.split(",")]
    chosen = questions_by_level(Path(a.data_root), levels, a.per_level)
    a.out.mkdir(parents=True, exist_ok=True)
    dataset = a.out / "questions.jsonl"  # ids are questions-LINE, so the file is written the same way every time
    dataset.write_text("".join(json.dumps(row) + "\n" for row in chosen))
    budgets = [f"--n={2 ** i}" for i in range(a.pool.bit_length()) if 2 ** i <= a.pool]
    if not run_resumable(["sweep", "--dataset", str(dataset), "--question-field", "problem", "--answer-field", "answer",
                          "--strategy", "majority", *budgets, "--max-tokens", str(a.max_tokens), "--chunk-size", "30"],
                         a.out, "math500-levels", a.snapshot):
        return
    store = RunStore(a.out)
    lines = next(ls for unit, ls in store.lines_by_unit() if unit.get("strategy") == "pool")
    store.close()
    level_of = {f"questions-{i + 1}": row["level"] for i, row in enumerate(chosen)}
    questions = pool_questions(lines)
    orders = sample_orders(a.pool, 256, np.random.default_rng(0))
    one = per_question_accuracy(questions, 1, orders)["majority"]
    at_n = per_question_accuracy(questions, a.pool, orders)
    capped = [c.get("finish_reason") == "length" for line in lines for c in line["candidates"]]
    print(f"\n{len(lines)} questions, {a.pool} samples each, at most {a.max_tokens} tokens: "
          f"{np.mean(capped):.1%} of samples hit the cap")
    print(f"| level | questions | one sample | majority@{a.pool} | pass@{a.pool} | majority - one sample (paired) |")
    print("|---|---:|---:|---:|---:|---|")
    for level in [*levels, None]:
        rows = [i for i, q in enumerate(questions) if level is None or level_of[q.id] == level]
        if not rows:
            continue

        def cell(values):
            low, high = bootstrap_interval([values[i] for i in rows])
            return f"{np.mean([values[i] for i in rows]):.1%} ({low:.0%}-{high:.0%})"

        diff = paired_difference([at_n["majority"][i] for i in rows], [one[i] for i in rows])
        verdict = "separated" if diff.separated else "not separated"
        print(f"| {level or 'all'} | {len(rows)} | {cell(one)} | {cell(at_n['majority'])} | "
              f"{cell(at_n['pass@N (oracle)'])} | {diff.difference * 100:+.1f} pp "
              f"({diff.low * 100:+.1f} to {diff.high * 100:+.1f}), {verdict} |")


if __name__ == "__main__":
    main()
