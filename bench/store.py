"""What resumability costs: the run store and chunk size against one plain batched solve.

Every question of a chunk is solved in one batched call and committed in one
SQLite transaction; smaller chunks lose less to a crash but batch less. This
runs majority@N on the first GSM8K test questions, in one process and on one
engine (prefix cache reset before each run): first a plain ``solve`` of all
questions with no store (the baseline), then ``execute`` into a fresh run store
with chunks of every size given. Prints each run's wall time and its ratio to
the baseline, and whether its answers equal the baseline's. Usage:

    .venv/bin/python bench/store.py [--questions 24] [--n 4] [--chunks 24,8,4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from testtime.generators import SamplingParams
from testtime.generators.vllm_engine import VLLMGenerator
from testtime.models import DEFAULT_MODEL, resolve_model
from testtime.runner import Plan, Unit, execute
from testtime.store import RunStore
from testtime.strategies import Context, Strategy
from testtime.tasks import load_dataset

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def timed(gen: VLLMGenerator, work) -> tuple[float, list]:
    gen.llm.reset_prefix_cache()
    start = time.perf_counter()
    answers = work()
    return time.perf_counter() - start, answers


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--chunks", default="24,8,4")
    args = parser.parse_args()

    tasks = load_dataset("gsm8k", data_root=DATA, limit=args.questions)
    strategy = Strategy.create("majority", budget=args.n)
    gen = VLLMGenerator(resolve_model(DEFAULT_MODEL))
    ctx = Context(generator=gen, sampling=SamplingParams(max_tokens=args.max_tokens), seed=0)
    gen.show_progress = False

    baseline, base_answers = timed(gen, lambda: [r.prediction for r in strategy.solve(tasks, ctx)])
    rows = [{"run": "solve, no store", "chunk": len(tasks), "seconds": round(baseline, 1), "ratio": 1.0,
             "same_answers": True}]
    for size in (int(c) for c in args.chunks.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            store = RunStore.start(tmp, {})
            plan = Plan([Unit(strategy, 0)], tasks, chunk_size=size)
            seconds, _ = timed(gen, lambda: execute(plan, ctx, store))
            answers = [line["prediction"] for line in store.lines(Unit(strategy, 0).key)]
            store.close()
        rows.append({"run": "execute into run store", "chunk": size, "seconds": round(seconds, 1),
                     "ratio": round(seconds / baseline, 2), "same_answers": answers == base_answers})
    gen.close()
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
