"""Completion throughput of the embedded model in float32 against bfloat16 on this machine.

Backs testtime's ``dtype="auto"`` rule (bfloat16 only where the CPU computes it
natively). Each dtype gets its own engine, a warm-up call, then one timed call
of n samples of one prompt. Usage:

    .venv/bin/python bench/dtype.py [--model NAME] [--n 64] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

from testtime.generators import GenerationRequest, Prompt, SamplingParams  # noqa: E402
from testtime.generators.vllm_engine import VLLMGenerator, default_dtype  # noqa: E402
from testtime.models import DEFAULT_MODEL, resolve_model  # noqa: E402

PROMPT = Prompt.chat("Solve step by step. Finish with 'The answer is: N'.",
                     "Tom has 3 apples and buys 5 more. How many apples does he have?")


def tokens_per_second(model: str, dtype: str, n: int, max_tokens: int) -> float:
    gen = VLLMGenerator(resolve_model(model), dtype=dtype)
    try:
        request = GenerationRequest(PROMPT, n=n, params=SamplingParams(max_tokens=max_tokens, seed=1))
        gen.generate([GenerationRequest(PROMPT, n=2, params=SamplingParams(max_tokens=8))])
        start = time.perf_counter()
        [result] = gen.generate([request])
        return result.completion_tokens / (time.perf_counter() - start)
    finally:
        gen.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    rates = {dtype: tokens_per_second(args.model, dtype, args.n, args.max_tokens) for dtype in ("float32", "bfloat16")}
    for dtype, rate in rates.items():
        print(f"{args.model} {dtype:9s} {rate:7.1f} completion tok/s (n={args.n})")
    print(f"float32 / bfloat16 = {rates['float32'] / rates['bfloat16']:.2f}; dtype='auto' picks {default_dtype()} here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
