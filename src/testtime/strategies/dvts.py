from dataclasses import dataclass

from testtime.strategies.beam_search import BeamSearch
from testtime.strategies.search import Expander
from testtime.tree import Tree


@dataclass
class DVTS(BeamSearch):
    """Diverse verifier tree search: N/M independent subtrees, each a greedy beam of width M."""

    name = "dvts"

    def search_round(self, trees: list[Tree], expander: Expander) -> None:
        # tree.frontier holds the head of every live subtree; the root heads all of them in round one.
        wants = [(tree, head, self.budget if head is tree.root else self.width)
                 for tree in trees for head in tree.frontier]
        children = expander.expand(wants)
        heads = {id(tree): [] for tree in trees}
        for (tree, head, _), kids in zip(wants, children):
            groups = [kids[i : i + self.width] for i in range(0, len(kids), self.width)]
            for group in groups:  # one group per subtree; the root's N children seed N/M subtrees
                best = self.best(group, 1)[0]
                if not best.terminal:  # a subtree ends when its best continuation is a complete solution
                    heads[id(tree)].append(best)
        for tree in trees:
            tree.frontier = heads[id(tree)]
            tree.done = not tree.frontier
