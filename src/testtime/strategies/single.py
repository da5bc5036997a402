from dataclasses import dataclass

from testtime.strategies.parallel import GeneratorSource, ParallelStrategy


@dataclass
class SingleSample(ParallelStrategy):
    """One sample per question: the baseline every other strategy is measured against."""

    name = "single"
    fixed_budget = 1
    budget: int = 1

    def __post_init__(self):
        if self.budget != 1:
            raise ValueError(f"strategy 'single' draws one sample; its budget must be 1, got {self.budget}")

    def solve(self, tasks, ctx):
        """Its answer is its one sample: written out (``Context.write``) as the engine writes it."""
        return self.solve_from(GeneratorSource(tasks, ctx, writes=True), tasks, ctx)

    def choose(self, candidates):
        return candidates[0] if candidates else None
