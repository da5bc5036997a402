"""Adaptive self-consistency (Aggarwal et al. 2023): sample in rounds and stop a
question once its leading answer is very probably the majority answer.

Stopping rule: with v1 votes for the leader and v2 for the runner-up, the
leader's share among the two has posterior Beta(v1+1, v2+1) under a uniform
prior; stop when P(share > 1/2) >= ``confidence``. For integer parameters
P(Beta(a, b) > 1/2) = P(Binomial(a+b-1, 1/2) <= a-1), computed exactly.
"""

from dataclasses import dataclass, field
from math import comb

from testtime.selection import select_majority, vote_counts
from testtime.strategies.parallel import ParallelStrategy


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
