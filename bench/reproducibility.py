"""Do seeded samples depend on what they are batched with? One engine per dtype.

The same seeded requests (the shipped GSM8K sample, 2 samples each) are generated
three ways on one engine: all in one batch; in chunks of 4 in reverse order
(other batch shapes, and prefixes now served from the prefix cache); and one
question at a time. A resumed, retried or Ray-sharded run changes exactly these
things, so a dtype under which every text matches gives bit-identical runs.
Usage:

    .venv/bin/python bench/reproducibility.py [--questions 24] [--max-tokens 64] [--dtype float32 --dtype bfloat16]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

from testtime.generators import GenerationRequest, SamplingParams  # noqa: E402
from testtime.generators.vllm_engine import VLLMGenerator, default_dtype  # noqa: E402
from testtime.models import DEFAULT_MODEL, resolve_model  # noqa: E402
from testtime.prompting import PromptTemplate  # noqa: E402
from testtime.tasks import load_dataset  # noqa: E402


def texts(gen: VLLMGenerator, requests: list[GenerationRequest], order: list[int], chunk: int) -> dict[int, tuple]:
    out = {}
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        for i, result in zip(part, gen.generate([requests[i] for i in part])):
            out[i] = tuple(c.text for c in result.completions)
    return out


def differing(dtype: str, questions: int, max_tokens: int) -> tuple[int, int, int]:
    """(samples differing from the one-batch run when re-chunked, when one at a time, samples in all)."""
    template = PromptTemplate()
    requests = [GenerationRequest(template.build(t), n=2, params=SamplingParams(max_tokens=max_tokens, seed=7 + i))
                for i, t in enumerate(load_dataset("sample", limit=questions))]
    gen = VLLMGenerator(resolve_model(DEFAULT_MODEL), dtype=dtype)
    try:
        ids = list(range(len(requests)))
        whole = texts(gen, requests, ids, len(ids))
        rechunked = texts(gen, requests, ids[::-1], 4)
        alone = texts(gen, requests, ids, 1)
    finally:
        gen.close()

    def count(other: dict[int, tuple]) -> int:
        return sum(a != b for i in ids for a, b in zip(whole[i], other[i]))

    return count(rechunked), count(alone), 2 * len(ids)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--dtype", action="append", help="dtypes to compare (default float32 and bfloat16)")
    args = parser.parse_args()
    for dtype in args.dtype or ["float32", "bfloat16"]:
        rechunked, alone, total = differing(dtype, args.questions, args.max_tokens)
        print(f"{dtype:9s} samples differing from the one-batch run: re-chunked {rechunked}/{total}, "
              f"one at a time {alone}/{total}")
    print(f"dtype='auto' picks {default_dtype()} here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
