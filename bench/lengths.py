"""How long the model's solutions are under a prompt: the data behind the default ``max_tokens``.

Samples k solutions of each of the first N GSM8K *train* questions (never the test
split) with a generous cap, then reports the length distribution, the share that
would be cut at each candidate cap, and accuracy and stated-answer rates. A
solution counts as correct at cap c only if it ends within c tokens. Usage:

    .venv/bin/python bench/lengths.py [--model NAME] [--questions 40] [--k 8] [--cap 1024]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

import numpy as np  # noqa: E402

from testtime.answers import answers_match, extract_answer, states_final_answer  # noqa: E402
from testtime.generators import GenerationRequest, SamplingParams  # noqa: E402
from testtime.generators.vllm_engine import VLLMGenerator  # noqa: E402
from testtime.models import DEFAULT_MODEL, resolve_model  # noqa: E402
from testtime.prompting import PromptTemplate  # noqa: E402
from testtime.tasks import load_dataset  # noqa: E402

CAPS = (256, 320, 384, 448, 512, 640, 768, 1024)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--cap", type=int, default=1024)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()

    tasks = load_dataset("gsm8k-train", limit=args.questions)
    template = PromptTemplate()
    gen = VLLMGenerator(resolve_model(args.model), dtype=args.dtype)
    try:
        params = SamplingParams(temperature=args.temperature, max_tokens=args.cap, seed=0)
        start = time.perf_counter()
        results = gen.generate([GenerationRequest(template.build(t), n=args.k, params=params) for t in tasks])
        elapsed = time.perf_counter() - start
    finally:
        gen.close()

    lengths, correct, stated = [], [], []
    for task, result in zip(tasks, results):
        for c in result.completions:
            ended = c.finish_reason != "length"
            lengths.append(c.token_count if ended else args.cap + 1)  # a cut one is longer than the cap
            correct.append(ended and answers_match(extract_answer(c.text), task.answer))
            stated.append(ended and states_final_answer(c.text))
    lengths, correct, stated = np.array(lengths), np.array(correct), np.array(stated)
    total = sum(r.completion_tokens for r in results)
    print(f"{args.model}: {len(tasks)} GSM8K train questions x {args.k} samples, cap {args.cap}, "
          f"T={args.temperature}: {total:,} completion tokens in {elapsed:.0f} s ({total / elapsed:.0f} tok/s)")
    ended = lengths <= args.cap
    print(f"ended within the cap: {ended.mean():.1%}; tokens of those: mean {lengths[ended].mean():.0f}, "
          f"median {np.median(lengths[ended]):.0f}, 95th percentile {np.percentile(lengths[ended], 95):.0f}")
    print(f"states a final answer: {stated.mean():.1%}")
    print(" cap   cut   accuracy")
    for cap in (c for c in CAPS if c <= args.cap):
        within = lengths <= cap
        print(f"{cap:4d} {1 - within.mean():5.1%}  {(correct & within).mean():6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
