from dataclasses import dataclass, field

from testtime.strategies.beam_search import BeamSearch
from testtime.strategies.search import Expander
from testtime.tree import Node


@dataclass
class Lookahead(BeamSearch):
    """Beam search that ranks a step by the score of a greedy rollout k steps beyond it."""

    name = "lookahead"
    lookahead: int = field(default=1, metadata={"help": "greedy steps rolled out before ranking a step"})

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.lookahead, int) or self.lookahead < 0:
            raise ValueError(f"{self.name}: lookahead must be an integer >= 0, got {self.lookahead!r}")

    def rank(self, node: Node) -> float:
        return node.value if node.visits else super().rank(node)

    def evaluate(self, wants, children, expander: Expander) -> None:
        # Each live child starts a greedy rollout; each lookahead step is one batched call for all of them.
        rollouts = [[tree, c, c] for (tree, _, _), kids in zip(wants, children) for c in kids if not c.terminal]
        for _ in range(self.lookahead):
            live = [r for r in rollouts if not r[2].terminal]
            if not live:
                break
            steps = expander.expand([(tree, tip, 1) for tree, _, tip in live], kind="rollout", greedy=True)
            for rollout, (step,) in zip(live, steps):
                rollout[2] = step
        for _, child, tip in rollouts:  # the step is ranked by where its rollout leads
            child.visits, child.value_sum = 1, tip.score or 0.0
