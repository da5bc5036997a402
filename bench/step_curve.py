"""An engine step's time against its batch: where batching stops paying on this machine.

Raw ``vllm.LLM`` with testtime's engine settings (``VLLMGenerator``'s), the default model, seeded
samples at temperature 0.8, ``ignore_eos`` so every sequence decodes exactly ``--tokens`` tokens;
one ``generate`` call per batch size. Prints seconds a step and tokens a second for each. Usage:

    .venv/bin/python bench/step_curve.py [--tokens 48] [--batches 1,8,32,64,128,256]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from vllm import SamplingParams as VSamplingParams

from testtime.generators.vllm_engine import VLLMGenerator
from testtime.models import DEFAULT_MODEL, resolve_model

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--batches", default="1,8,32,64,128,256")
    args = parser.parse_args()
    gen = VLLMGenerator(resolve_model(DEFAULT_MODEL))
    llm = gen.llm  # driven directly here: testtime's engine loop stays idle
    llm.generate(["warm up"], VSamplingParams(max_tokens=8), use_tqdm=False)
    for n in (int(b) for b in args.batches.split(",")):
        params = [VSamplingParams(max_tokens=args.tokens, ignore_eos=True, temperature=0.8, seed=i) for i in range(n)]
        prompts = [f"Question {i}: count to a hundred." for i in range(n)]
        start = time.perf_counter()
        llm.generate(prompts, params, use_tqdm=False)
        seconds = time.perf_counter() - start
        print(f"batch {n:4d}: {seconds / args.tokens:.3f} s a step, {n * args.tokens / seconds:.0f} tok/s", flush=True)
    gen.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
