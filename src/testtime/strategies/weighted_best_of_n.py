from dataclasses import dataclass

from testtime.selection import select_weighted
from testtime.strategies.parallel import ParallelStrategy


@dataclass
class WeightedBestOfN(ParallelStrategy):
    """The answer whose samples' verifier scores sum highest (Li et al. 2023; Snell et al. 2024)."""

    name = "weighted_best_of_n"
    uses_verifier = True

    def choose(self, candidates):
        return select_weighted(candidates)
