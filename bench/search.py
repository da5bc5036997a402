"""Beam search against best-of-N at the same budget, on the same engine and questions.

Runs best-of-N (N=16) and beam search (N=16, M=4) with the arithmetic process
verifier on the first 30 GSM8K test questions, in one process, with the prefix
cache reset before each run so neither inherits the other's cache. Prints
(a) the wall-time ratio beam / best-of-N, (b) the share of beam search's prompt
tokens served from the prefix cache, (c) accuracy and tokens of both, (d) the share of the wall time
the engine spent in its steps (the rest it waited for work: the strategy's own Python, or the tail
of a run), its mean batch, and the CPU time of this process (vLLM's engine core runs in its own),
(e) the tokens the engine computed (every sample's prompt tokens outside the prefix cache, and the
generated ones) and their ratio, beam / best-of-N, (f) the longest chain of tokens one question must
generate one after another (each takes an engine step): best-of-N's longest sample; a search's sum,
over its depths, of each depth's longest step, since a depth's choice waits for all its steps. Usage:

    .venv/bin/python bench/search.py [--questions 30] [--n 16] [--width 4] [--strategy beam_search] [--delimiter '\n']
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import resource
import sys
import time
from pathlib import Path

from testtime.generators import SamplingParams
from testtime.generators.vllm_engine import VLLMGenerator
from testtime.ledger import Ledger
from testtime.models import DEFAULT_MODEL, resolve_model
from testtime.strategies import Context, Strategy
from testtime.tasks import load_dataset
from testtime.verifiers.arithmetic import ArithmeticVerifier

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def measure(strategy: Strategy, tasks, ctx: Context, gen: VLLMGenerator) -> dict:
    gen.llm.reset_prefix_cache()
    loop = gen.loop
    steps, busy, stepped = loop.steps, loop.busy_seconds, loop.stepped_sequences
    prefilled, added = loop.prefilled_tokens, loop.added_samples
    cpu = main_process_cpu_seconds()
    start = time.perf_counter()
    results = strategy.solve(tasks, ctx)
    seconds = time.perf_counter() - start
    steps, busy, stepped = loop.steps - steps, loop.busy_seconds - busy, loop.stepped_sequences - stepped
    total = Ledger.total(r.ledger for r in results)
    prefilled, added = loop.prefilled_tokens - prefilled, loop.added_samples - added
    cpu = main_process_cpu_seconds() - cpu
    return {
        "strategy": strategy.describe(),
        "seconds": round(seconds, 1),
        "accuracy": sum(r.correct for r in results) / len(results),
        "completion_tokens": total.completion_tokens,
        "prompt_tokens": total.prompt_tokens,
        "cached_prompt_tokens": total.cached_prompt_tokens,
        "cache_share": total.cached_prompt_tokens / (total.prompt_tokens or 1),
        "generate_calls": max(r.ledger.generate_calls for r in results),
        "completion_tok_per_s": round(total.completion_tokens / seconds, 1),
        # Where the rest of the wall time goes: the engine idle (waiting for the strategy's threads).
        "engine_steps": steps,
        "engine_busy_share": round(busy / seconds, 3),
        "mean_batch": round(stepped / (steps or 1), 1),
        # vLLM's engine core is a process of its own: this is the strategy's threads, verifier, rendering
        # and detokenizing, which share the machine's cores with it.
        "main_process_cpu_seconds": round(cpu, 1),
        # What the engine computed: every sample's uncached prompt tail (the ledger counts a request's
        # prompt once, however many samples recompute its tail) and every generated token.
        "engine_samples": added,
        "engine_prefilled_tokens": prefilled,
        "engine_tokens": prefilled + total.completion_tokens,
        "ledger_tokens": total.prompt_tokens - total.cached_prompt_tokens + total.completion_tokens,
        # The longest chain of tokens one question needs generated one after another (a token takes an
        # engine step): a search's depths each wait for their longest step; best-of-N, its longest sample.
        "longest_chain_tokens": max(chain_tokens(r) for r in results),
        # A search's longest single path: its chain, were no depth to wait for the others' steps.
        "longest_path_tokens": max(path_tokens(r) for r in results),
    }


def chain_tokens(result) -> int:
    tree = result.details.get("tree")
    if tree is None:
        return max((c.tokens for c in result.candidates), default=0)
    longest: dict[int, int] = {}
    for node in tree["nodes"][1:]:
        longest[node["depth"]] = max(longest.get(node["depth"], 0), node["tokens"])
    return sum(longest.values())


def path_tokens(result) -> int:
    tree = result.details.get("tree")
    if tree is None:
        return chain_tokens(result)
    total: dict[int, int] = {}
    for node in tree["nodes"]:  # parents come before their children
        total[node["id"]] = total.get(node["parent"], 0) + node["tokens"]
    return max(total.values())


def main_process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # this process's threads, not the engine core's process
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--width", type=int, default=4)
    parser.add_argument("--strategy", default="beam_search")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--block-size", type=int, default=32)
    parser.add_argument("--delimiter", default="\\n\\n", help="what ends a step; '\\n' for one newline")
    args = parser.parse_args()

    tasks = load_dataset("gsm8k", data_root=DATA, limit=args.questions)
    gen = VLLMGenerator(resolve_model(DEFAULT_MODEL), block_size=args.block_size)
    ctx = Context(generator=gen, verifier=ArithmeticVerifier(), sampling=SamplingParams(max_tokens=args.max_tokens))
    gen.llm.generate(["warm up"], use_tqdm=False)
    baseline = measure(Strategy.create("best_of_n", budget=args.n), tasks, ctx, gen)
    print(json.dumps(baseline), flush=True)
    delimiter = codecs.decode(args.delimiter, "unicode_escape")
    search = measure(Strategy.create(args.strategy, budget=args.n, width=args.width, delimiter=delimiter), tasks, ctx, gen)
    print(json.dumps(search), flush=True)
    print(f"{len(tasks)} GSM8K questions, N={args.n}, block size {args.block_size}, delimiter {delimiter!r}:")
    print(f"  (a) wall time {args.strategy} / best-of-{args.n}: {search['seconds'] / baseline['seconds']:.2f}"
          f"  ({search['seconds']:.0f} s / {baseline['seconds']:.0f} s)")
    print(f"  (b) {args.strategy} prompt tokens served from the prefix cache: {search['cache_share']:.1%}"
          f"  ({search['cached_prompt_tokens']:,} of {search['prompt_tokens']:,})")
    for row in (baseline, search):
        print(f"  (c) {row['strategy']['strategy']:18s} accuracy {row['accuracy']:.1%}  completion tokens "
              f"{row['completion_tokens']:,}  prompt tokens {row['prompt_tokens']:,}  generate calls {row['generate_calls']}")
    for row in (baseline, search):
        print(f"  (d) {row['strategy']['strategy']:18s} engine busy {row['engine_busy_share']:.1%} of the wall time, "
              f"{row['engine_steps']:,} steps, {row['mean_batch']} sequences a step on average; "
              f"this process (not the engine core's) used {row['main_process_cpu_seconds']} CPU seconds")
    for row in (baseline, search):
        print(f"  (e) {row['strategy']['strategy']:18s} engine computed {row['engine_tokens']:,} tokens: "
              f"{row['engine_prefilled_tokens']:,} prompt tokens outside the cache over {row['engine_samples']:,} "
              f"samples ({row['engine_prefilled_tokens'] / (row['engine_samples'] or 1):.1f} each), "
              f"{row['completion_tokens']:,} generated; the ledger, which counts a request's prompt once, says "
              f"{row['ledger_tokens']:,} ({1 - row['ledger_tokens'] / (row['engine_tokens'] or 1):.0%} fewer)")
    print(f"  (e) engine tokens {args.strategy} / best-of-{args.n}: "
          f"{search['engine_tokens'] / baseline['engine_tokens']:.2f}")
    print(f"  (f) the longest chain one question generates token after token (each token an engine step): "
          f"best-of-{args.n}'s longest sample, {baseline['longest_chain_tokens']:,} tokens, in "
          f"{baseline['engine_steps']:,} steps; {args.strategy}'s depths, each waiting for its longest step, "
          f"{search['longest_chain_tokens']:,} tokens (its longest single path {search['longest_path_tokens']:,}), "
          f"in {search['engine_steps']:,} steps")
    gen.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
