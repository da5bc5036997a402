from dataclasses import dataclass

from testtime.selection import select_best
from testtime.strategies.parallel import ParallelStrategy


@dataclass
class BestOfN(ParallelStrategy):
    """y* = argmax V(y) over N samples."""

    name = "best_of_n"
    uses_verifier = True

    def choose(self, candidates):
        return select_best(candidates)
