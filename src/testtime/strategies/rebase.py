from dataclasses import dataclass, field

import numpy as np

from testtime.strategies.particle_filtering import softmax
from testtime.strategies.search import Expander, SearchStrategy, finished
from testtime.tree import Tree


def allocate_widths(scores, total: int, temperature: float) -> list[int]:
    """Share ``total`` expansions by softmax(score / temperature), rounded so they sum to ``total``.

    Each node gets the floor of its share; the leftover goes to the largest remainders.
    """
    shares = softmax(scores, temperature) * total
    widths = np.floor(shares).astype(int)
    leftover = total - int(widths.sum())
    order = np.argsort(-(shares - widths), kind="stable")
    widths[order[:leftover]] += 1
    return widths.tolist()


@dataclass
class Rebase(SearchStrategy):
    """REBASE: each round's expansion width is shared among the live nodes by a softmax over their scores."""

    name = "rebase"
    softmax_temperature: float = field(default=0.2, metadata={"help": "of the softmax over process scores"})

    def __post_init__(self):
        super().__post_init__()
        self.require_positive("softmax_temperature", integer=False)

    def search_round(self, trees: list[Tree], expander: Expander) -> None:
        wants = []
        for tree in trees:
            remaining = self.budget - len(tree.complete())  # the width left: one per solution still to find
            widths = allocate_widths([n.score or 0.0 for n in tree.frontier], remaining, self.softmax_temperature)
            wants += [(tree, node, w) for node, w in zip(tree.frontier, widths) if w > 0]
        children = expander.expand(wants)
        grown = {id(tree): [] for tree in trees}
        for (tree, _, _), kids in zip(wants, children):
            grown[id(tree)].extend(k for k in kids if not k.terminal)
        for tree in trees:
            tree.frontier = grown[id(tree)]
            tree.done = not tree.frontier or finished(tree, self.budget)
