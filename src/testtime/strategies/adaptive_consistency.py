"""Adaptive self-consistency (Aggarwal et al. 2023): sample in rounds and stop a
question once its leading answer is very probably the majority answer.

Stopping rule: with v1 votes for the leader and v2 for the runner-up, the
leader's share among the two has posterior Beta(v1+1, v2+1) under a uniform
prior; stop when P(share > 1/2) >= ``confidence``. For integer parameters
P(Beta(a, b) > 1/2) = P(Binomial(a+b-1, 1/2) <= a-1), computed exactly.

On a streaming backend (the in-process engine loop) the whole budget is in flight at once, and a
question's samples are aborted as soon as its first k are written and decisive, for k a size at which
the rule votes (``first_round``, then every ``round_size``): the same rule on the same prefix, so
the same answer as drawing round by round, without waiting a round for each vote. Samples past
the decisive prefix are charged and not used.
"""

from dataclasses import dataclass, field
from math import comb
from typing import Sequence

from testtime.domains import Reply, make_candidates
from testtime.generators.base import ABORTED, GenerationRequest
from testtime.ledger import Ledger
from testtime.selection import select_majority, vote_counts
from testtime.strategies.base import Context, QuestionResult, make_candidate
from testtime.strategies.parallel import ParallelStrategy, score_candidates
from testtime.tasks import Task


def prob_leader_is_majority(leader_votes: int, runner_up_votes: int) -> float:
    a, b = leader_votes + 1, runner_up_votes + 1
    trials = a + b - 1
    return sum(comb(trials, j) for j in range(a)) / 2**trials


@dataclass
class AdaptiveConsistency(ParallelStrategy):
    """Self-consistency that stops sampling a question once its vote is decisive."""

    name = "adaptive_consistency"
    first_round: int = field(default=4, metadata={"help": "samples drawn before the first vote"})
    round_size: int = field(default=4, metadata={"help": "samples drawn per later round"})
    confidence: float = field(default=0.95, metadata={"help": "stop once P(the leader is the majority) reaches it"})

    def __post_init__(self):
        super().__post_init__()
        self.require_integers(1, "first_round", "round_size")
        if not 0.5 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0.5, 1), got {self.confidence}")

    def decisive(self, candidates) -> bool:
        votes = vote_counts(candidates) + [0, 0]
        return votes[0] > 0 and prob_leader_is_majority(votes[0], votes[1]) >= self.confidence

    def next_draw(self, candidates):
        left = self.budget - len(candidates)
        if not candidates:
            return min(self.first_round, left)
        if left <= 0 or self.decisive(candidates):
            return 0
        return min(self.round_size, left)

    def choose(self, candidates):
        return select_majority(candidates)

    def vote_sizes(self) -> list[int]:
        """The sample counts at which the rule votes: the first round, then every round after."""
        sizes = [min(self.first_round, self.budget)]
        while sizes[-1] < self.budget:
            sizes.append(min(sizes[-1] + self.round_size, self.budget))
        return sizes

    def solve(self, tasks: Sequence[Task], ctx: Context) -> list[QuestionResult]:
        if not ctx.generator.streams:
            return super().solve(tasks, ctx)
        self.check(ctx.verifier)
        ledgers = [Ledger() for _ in tasks]
        decided: list[int | None] = [None] * len(tasks)  # the decisive prefix's size
        checked = [0] * len(tasks)
        sizes = self.vote_sizes()

        def watch(i: int, stream, index: int) -> None:  # on the engine's thread, as samples grow and end
            samples = stream.samples
            written = next((k for k, s in enumerate(samples) if not s.finished), len(samples))
            for size in (z for z in sizes if checked[i] < z <= written and decided[i] is None):
                checked[i] = size
                if size < self.budget and self.decisive([make_candidate(s.text, s.token_count, task=tasks[i]) for s in samples[:size]]):
                    decided[i] = size
                    stream.abort()

        requests = [GenerationRequest(ctx.template.build(task), n=self.budget,
                                      params=ctx.sampling_for(task, "adaptive")) for task in tasks]
        results = ctx.generate(requests, ledgers, tasks, watch=watch)
        out = []
        for task, result, size, ledger in zip(tasks, results, decided, ledgers):
            used = [c for c in result.completions[: size or self.budget] if c.finish_reason != ABORTED]
            candidates = make_candidates([Reply(task, c.text, c.token_count, c.finish_reason, c.reasoning_tokens) for c in used])
            if ctx.verifier is not None:
                score_candidates([(task, c) for c in candidates], [ledger] * len(candidates), ctx)
            out.append(QuestionResult(task, self.choose(candidates), candidates, ledger, {
                "rounds": sizes.index(size) + 1 if size else len(sizes),  # the votes it took
                "drawn": len(result.completions), "stopped_at": size}))
        return out
