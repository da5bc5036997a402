"""What keeping a path's states saves the trained PRM in a search: beam search with the shipped PRM
on the default model, then every node it scored scored again, round by round, by two fresh feature
models (the PRM's own layer and dtype): one keeping each prefix's states and attention cache (the
default), one reading every path whole (as before). Prints tokens read, seconds and the largest
score difference, each side timed in the same process on the same paths. Usage:

    .venv/bin/python bench/prm_reuse.py [--questions 10] [--budget 4] [--width 4]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from testtime.generators import GeneratorSpec, SamplingParams
from testtime.heads.features import HiddenStates
from testtime.models import DEFAULT_MODEL
from testtime.strategies import Context, Strategy
from testtime.tasks import load_dataset
from testtime.verifiers import Solution, Verifier

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def scored_paths(results, delimiter: str) -> list[list[tuple[str, tuple[str, ...]]]]:
    """Every (question, steps) the search scored, grouped by depth: one group a round."""
    rounds: dict[int, list] = {}
    for r in results:
        nodes = r.details["tree"]["nodes"]
        for node in nodes[1:]:
            text, at = "", node
            while at["parent"] is not None:
                text, at = at["text"] + text, nodes[at["parent"]]
            steps = tuple(Solution(r.task.question, text, delimiter).steps)
            rounds.setdefault(node["depth"], []).append((r.task.question, steps))
    return [rounds[d] for d in sorted(rounds)]


def replay(states: HiddenStates, head, rounds) -> dict:
    start, read, scores = time.perf_counter(), 0, []
    for items in rounds:
        for array, tokens in states.with_tokens(items):
            read += tokens
            scores.append(float(head.predict(array)[-1]))
    return {"seconds": round(time.perf_counter() - start, 1), "tokens_read": read, "scores": scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--budget", type=int, default=4)
    parser.add_argument("--width", type=int, default=4)
    a = parser.parse_args()
    tasks = load_dataset("gsm8k", limit=a.questions, data_root=DATA)
    prm = Verifier.create("prm")
    with GeneratorSpec("vllm", DEFAULT_MODEL, seed=0).open() as generator:
        ctx = Context(generator=generator, verifier=prm, sampling=SamplingParams(max_tokens=640), seed=0)
        start = time.perf_counter()
        search = Strategy.create("beam_search", budget=a.budget, width=a.width)
        results = search.solve(tasks, ctx)
        search_seconds = time.perf_counter() - start
    rounds = scored_paths(results, search.delimiter)
    spec = prm.features.states.spec
    whole = replay(HiddenStates(spec, reuse_bytes=0), prm.head, rounds)
    kept = replay(HiddenStates(spec), prm.head, rounds)
    print(json.dumps({
        "questions": a.questions, "budget": a.budget, "width": a.width, "feature": f"{spec.model} layer {spec.layer} {spec.dtype}",
        "search_seconds_with_reuse": round(search_seconds, 1),
        "paths_scored": sum(len(r) for r in rounds), "rounds": len(rounds),
        "whole": {k: v for k, v in whole.items() if k != "scores"},
        "kept": {k: v for k, v in kept.items() if k != "scores"},
        "tokens_read_ratio_whole_over_kept": round(whole["tokens_read"] / kept["tokens_read"], 2),
        "seconds_ratio_whole_over_kept": round(whole["seconds"] / kept["seconds"], 2),
        "largest_score_difference": round(float(np.max(np.abs(np.subtract(whole["scores"], kept["scores"])))), 4),
    }, indent=1))


if __name__ == "__main__":
    main()
