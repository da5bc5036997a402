from dataclasses import dataclass, field

from testtime.strategies.search import Expander, SearchStrategy, finished
from testtime.tree import Node, Tree


@dataclass
class BeamSearch(SearchStrategy):
    """Keep the N/M best partial solutions each round and expand each M ways."""

    name = "beam_search"
    width: int = field(default=4, metadata={"help": "M: children per kept beam"})

    def __post_init__(self):
        super().__post_init__()
        self.require_positive("width")
        if self.budget % self.width:
            raise ValueError(f"{self.name}: budget ({self.budget}) must be a multiple of width ({self.width})")

    @property
    def beams(self) -> int:
        return self.budget // self.width

    def search_round(self, trees: list[Tree], expander: Expander) -> None:
        # The first round samples N first steps from the root; later rounds expand the kept beams M ways.
        wants = [
            (tree, node, self.budget if node is tree.root else self.width)
            for tree in trees
            for node in self.best(tree.frontier, self.beams)
        ]
        children = expander.expand(wants)
        self.evaluate(wants, children, expander)
        grown: dict[int, list[Node]] = {id(tree): [] for tree in trees}
        for (tree, _, _), kids in zip(wants, children):
            grown[id(tree)].extend(k for k in kids if not k.terminal)
        for tree in trees:
            tree.frontier = grown[id(tree)]
            tree.done = not tree.frontier or finished(tree, self.budget)

    def evaluate(self, wants, children, expander: Expander) -> None:
        """Hook for variants that look further before ranking (lookahead search)."""
