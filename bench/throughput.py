"""Throughput of testtime's best-of-N against plain ``vllm.LLM.generate``.

Same engine, same prompts (rendered by testtime's template), same sampling
parameters and seeds, in one process. Both sides produce the same samples, so
the ratio of completion tokens per second measures testtime's overhead:
request building, answer extraction, verifier scoring and the ledger.
The prefix cache is reset before each timed run so neither side inherits the
other's cache. Usage:

    .venv/bin/python bench/throughput.py [--questions 30] [--n 16] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from testtime.generators import SamplingParams
from testtime.generators.vllm_engine import VLLMGenerator
from testtime.models import DEFAULT_MODEL, resolve_model
from testtime.strategies import Context, Strategy
from testtime.tasks import load_dataset
from testtime.verifiers.arithmetic import ArithmeticVerifier

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def raw_run(gen: VLLMGenerator, ctx: Context, tasks, n: int) -> tuple[int, float]:
    from vllm import SamplingParams as VSamplingParams

    prompts = [gen.render(ctx.template.build(t)) for t in tasks]
    params = [
        VSamplingParams(n=n, temperature=ctx.sampling.temperature, top_p=ctx.sampling.top_p,
                        max_tokens=ctx.sampling.max_tokens, seed=ctx.seed_for(t, 0))
        for t in tasks
    ]
    start = time.perf_counter()
    outputs = gen.llm.generate(prompts, params, use_tqdm=False)
    elapsed = time.perf_counter() - start
    return sum(len(c.token_ids) for o in outputs for c in o.outputs), elapsed


def testtime_run(ctx: Context, tasks, n: int) -> tuple[int, float, float]:
    start = time.perf_counter()
    results = Strategy.create("best_of_n", budget=n).solve(tasks, ctx)
    elapsed = time.perf_counter() - start
    accuracy = sum(r.correct for r in results) / len(results)
    return sum(r.ledger.completion_tokens for r in results), elapsed, accuracy


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    tasks = load_dataset("gsm8k", data_root=DATA, limit=args.questions)
    gen = VLLMGenerator(resolve_model(DEFAULT_MODEL))
    ctx = Context(generator=gen, verifier=ArithmeticVerifier(),
                  sampling=SamplingParams(max_tokens=args.max_tokens), seed=0)
    gen.llm.generate(["warm up"], use_tqdm=False)
    ratios, rows = [], []
    for rep in range(args.repeats):
        gen.llm.reset_prefix_cache()
        raw_tokens, raw_s = raw_run(gen, ctx, tasks, args.n)
        gen.llm.reset_prefix_cache()
        tt_tokens, tt_s, accuracy = testtime_run(ctx, tasks, args.n)
        ratio = (tt_tokens / tt_s) / (raw_tokens / raw_s)
        ratios.append(ratio)
        rows.append(dict(repeat=rep, raw_tokens=raw_tokens, raw_seconds=raw_s, raw_tok_s=raw_tokens / raw_s,
                         testtime_tokens=tt_tokens, testtime_seconds=tt_s, testtime_tok_s=tt_tokens / tt_s,
                         ratio=ratio, accuracy=accuracy))
        print(json.dumps(rows[-1]), flush=True)
    print(f"best-of-{args.n} on {len(tasks)} GSM8K questions: throughput ratio testtime/raw = "
          f"{statistics.median(ratios):.3f} (median of {len(ratios)})")
    gen.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
