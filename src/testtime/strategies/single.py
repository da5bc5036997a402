from dataclasses import dataclass

from testtime.strategies.parallel import ParallelStrategy


@dataclass
class SingleSample(ParallelStrategy):
    """One sample per question: the baseline every other strategy is measured against."""

    name = "single"
    fixed_budget = 1
    budget: int = 1

    def __post_init__(self):
        if self.budget != 1:
            raise ValueError(f"strategy 'single' draws one sample; its budget must be 1, got {self.budget}")

    def choose(self, candidates):
        return candidates[0] if candidates else None
