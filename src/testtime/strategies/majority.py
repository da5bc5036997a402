from dataclasses import dataclass

from testtime.selection import select_majority
from testtime.strategies.parallel import ParallelStrategy


@dataclass
class MajorityVote(ParallelStrategy):
    """Self-consistency (Wang et al. 2022): the most frequent final answer of N samples."""

    name = "majority"

    def choose(self, candidates):
        return select_majority(candidates)
