"""Compute-optimal scaling (Snell et al. 2024): a cheap probe reads a question's
difficulty, and a policy learned from a sweep says which strategy and budget it gets.

The probe is a few samples (one batched call for every question); their agreement
and mean verifier score give the predicted difficulty, cut into levels at the
policy's edges. A parallel choice continues the probe's samples (they are its first
draws, so an easy question that needs no more finishes at once); a search starts
afresh and also pays for the probe. The policy file is written by `testtime sweep`
(``policy.json`` in the run directory).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from testtime.policy import assign_levels, probe_easiness
from testtime.ledger import Ledger
from testtime.strategies.base import Context, QuestionResult, Strategy
from testtime.strategies.parallel import GeneratorSource, ParallelStrategy, SampleSource, score_candidates
from testtime.tasks import Task


class ContinuedSource(SampleSource):
    """Hands out each question's probe samples first (already paid for), then fresh ones."""

    def __init__(self, probes, fresh: SampleSource):
        self.probes, self.fresh = probes, fresh
        self.taken = [0] * len(probes)

    def draw(self, wants, round_index, ledgers):
        out, rest = {}, []
        for i, k in wants:
            start = self.taken[i]
            given = self.probes[i][start: start + k]
            self.taken[i] += k
            out[i] = list(given)
            if len(given) < k:
                rest.append((i, k - len(given)))
        if rest:  # round 0 was the probe's: later rounds draw with other seeds
            for (i, _), batch in zip(rest, self.fresh.draw(rest, round_index + 1, ledgers)):
                out[i].extend(batch)
        return [out[i] for i, _ in wants]


def load_policy(path: str | Path, budget: int) -> dict:
    """The policy table for ``budget`` from a sweep's policy.json; errors name the file and what is wrong."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"compute_optimal: cannot read the policy {path}: {exc}") from None
    if data.get("version") != 1 or "budgets" not in data:
        raise ValueError(f"compute_optimal: {path} is not a testtime policy file (written by `testtime sweep`)")
    table = data["budgets"].get(str(budget))
    if table is None:
        raise ValueError(f"compute_optimal: {path} has no policy for budget {budget}; "
                         f"it has budgets {', '.join(data['budgets'])}")
    return {**table, "probe": int(data["probe"])}


@dataclass
class ComputeOptimal(Strategy):
    """Probe each question, read its difficulty, and spend what a learned policy says (Snell et al.)."""

    name = "compute_optimal"
    budget: int = field(default=8, metadata={"help": "the best-of-N budget whose compute the policy stays within"})
    policy: str = field(default="runs/latest/policy.json", metadata={"file": "policies", "help": "the policy.json a sweep wrote"})

    def check(self, verifier) -> None:
        """The policy file is read and checked when the run or request is built, not mid-run."""
        super().check(verifier)
        load_policy(self.policy, self.budget)

    def solve(self, tasks: Sequence[Task], ctx: Context) -> list[QuestionResult]:
        table = load_policy(self.policy, self.budget)
        choices = [Strategy.create(c["strategy"], budget=c["budget"], **c.get("params", {})) for c in table["choices"]]
        for choice in choices:
            choice.check(ctx.verifier)
        probe_ledgers = [Ledger() for _ in tasks]
        probes = GeneratorSource(tasks, ctx).draw([(i, table["probe"]) for i in range(len(tasks))], 0, probe_ledgers)
        if ctx.verifier is not None:
            score_candidates([(t, c) for t, batch in zip(tasks, probes) for c in batch],
                             [probe_ledgers[i] for i, batch in enumerate(probes) for _ in batch], ctx)
        difficulty = [1.0 - probe_easiness([c.key for c in b], [c.score for c in b]) for b in probes]
        levels = assign_levels(difficulty, table["edges"])
        results: list[QuestionResult | None] = [None] * len(tasks)
        for level in sorted(set(levels.tolist())):
            members = [i for i, lv in enumerate(levels) if lv == level]
            choice = choices[level - 1]
            ctx.report(tasks[members[0]], f"{self.name}: level {level} -> {choice.name}@{choice.budget}")
            subset = [tasks[i] for i in members]
            if isinstance(choice, ParallelStrategy):
                source = ContinuedSource([probes[i] for i in members], GeneratorSource(subset, ctx))
                solved = choice.solve_from(source, subset, ctx)
            else:
                solved = choice.solve(subset, ctx)
            for i, result in zip(members, solved):
                result.ledger.add(probe_ledgers[i])
                result.details = {**result.details, "probe": {
                    "samples": table["probe"], "difficulty": difficulty[i], "level": int(level),
                    "choice": f"{choice.name}@{choice.budget}"}}
                results[i] = result
        return results
