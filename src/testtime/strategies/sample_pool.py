from dataclasses import dataclass

from testtime.selection import select_majority
from testtime.strategies.parallel import ParallelStrategy


@dataclass
class SamplePool(ParallelStrategy):
    """A shared pool: N samples per question, every one kept (answers by majority).

    A sweep stores one pool and estimates every parallel strategy at every budget
    up to N from it (``testtime.analysis.sweep``), instead of sampling for each.
    """

    name = "pool"
    internal = True

    def choose(self, candidates):
        return select_majority(candidates)
