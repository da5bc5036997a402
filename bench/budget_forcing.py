"""s1's budget forcing on the default model (Muennighoff et al. 2025): accuracy against mean thinking
tokens at several settings, each against the unforced sample on the same questions (paired
bootstrap 95 % intervals). One greedy sample per question and setting, as s1 evaluates; the default
model does not think in tags, so its thinking is its whole turn and a capped sample is asked for its
answer after "Final Answer:". One `testtime run` (resumable), then the table from its run store.

    .venv/bin/python bench/budget_forcing.py --questions 100
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from snapshots import run_options, run_resumable

SETTINGS = {  # label: the strategy spec (budget 1: one sample per question)
    "unforced": "budget_forcing@1",
    "max 64": "budget_forcing[max_thinking_tokens=64]@1",
    "max 128": "budget_forcing[max_thinking_tokens=128]@1",
    "max 256": "budget_forcing[max_thinking_tokens=256]@1",
    "min 400, 3 waits": "budget_forcing[min_thinking_tokens=400,max_waits=3]@1",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--max-tokens", type=int, default=1024, help="the whole reply's cap, for every setting")
    run_options(parser, "runs/budget-forcing")
    a = parser.parse_args()
    if not run_resumable(["run", "--dataset", "gsm8k", "--data-root", a.data_root, "--limit", str(a.questions),
                       "--temperature", "0", "--max-tokens", str(a.max_tokens), "--chunk-size", str(a.questions),
                       *(f"--strategy={spec}" for spec in SETTINGS.values())], a.out, "budget-forcing", a.snapshot):
        return
    for row in table(a.out):
        print(json.dumps(row))


def table(run_dir: Path) -> list[dict]:
    from testtime.analysis import wilson_interval
    from testtime.analysis.paired import paired_difference
    from testtime.store import RunStore

    store = RunStore(run_dir)
    by_setting = {}
    for description, lines in store.lines_by_unit():
        label = next(k for k, spec in SETTINGS.items() if matches(spec, description))
        by_setting[label] = sorted(lines, key=lambda line: line["id"])
    store.close()
    base = [float(line["correct"]) for line in by_setting["unforced"]]
    rows = []
    for label, lines in by_setting.items():
        correct = [float(line["correct"]) for line in lines]
        forcing = [line["forcing"][0] for line in lines]
        low, high = wilson_interval(int(sum(correct)), len(correct))
        row = {"setting": label, "questions": len(lines), "accuracy": sum(correct) / len(lines), "ci95": [low, high],
               "mean_thinking_tokens": sum(f["thinking_tokens"] for f in forcing) / len(lines),
               "mean_completion_tokens": sum(line["ledger"]["completion_tokens"] for line in lines) / len(lines),
               "capped": sum(f["capped"] for f in forcing), "waits": sum(f["waits"] for f in forcing)}
        if label != "unforced":
            row["versus_unforced"] = paired_difference(correct, base).to_dict()
        rows.append(row)
    return rows


def matches(spec: str, description: dict) -> bool:
    """Whether a stored unit is the one ``spec`` names (its bracketed parameters; the rest default)."""
    from testtime.params import parse_settings
    from testtime.specs import split_spec
    from testtime.strategies import Strategy

    name, texts, budgets = split_spec(spec)
    cls = Strategy.lookup(name)
    made = Strategy.create(name, budget=budgets[0], **parse_settings(cls, name, texts)).describe()
    return all(description.get(k) == v for k, v in made.items())


if __name__ == "__main__":
    main()
