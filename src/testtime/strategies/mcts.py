import math
from dataclasses import dataclass, field

from testtime.selection import select
from testtime.strategies.search import Expander, SearchStrategy, finished
from testtime.tree import Node, Tree


def ucb(node: Node, parent_visits: int, c: float) -> float:
    """UCB(s) = V(s) + c * sqrt(ln N_parent / N_s); an unvisited node comes first."""
    if node.visits == 0:
        return math.inf
    return node.value + c * math.sqrt(math.log(parent_visits) / node.visits)


def steps_below(node: Node) -> list[Node]:
    return [child for child in node.children if child.kind == "step"]


def can_expand(tree: Tree) -> bool:
    """Whether some step is still open: not terminal, no steps below it (rollouts are not steps)."""
    return any(n.kind == "step" and not n.terminal and not steps_below(n) for n in tree)


def select_leaf(root: Node, c: float) -> Node:
    """Walk down from the root, always to the child with the highest UCB (first one on ties)."""
    node = root
    while children := steps_below(node):
        node = max(children, key=lambda child: ucb(child, node.visits, c))
    return node


def backpropagate(node: Node, value: float) -> None:
    for ancestor in node.path():
        ancestor.visits += 1
        ancestor.value_sum += value


@dataclass
class MCTS(SearchStrategy):
    """Monte Carlo tree search over steps: UCB selection, sampled expansion, process-verifier evaluation.

    width: children per expansion. c: exploration constant. rollout: evaluate a new step by sampling the rest of the
    answer and scoring that instead. selector: "visits" or "value" walks the most
    visited / highest valued path; the shared selectors choose among all complete solutions.
    The search stops at N complete solutions, when no leaf is left to expand, or after N * max_depth / width
    expansions.
    """

    name = "mcts"
    width: int = field(default=4, metadata={"help": "children per expansion"})
    c: float = field(default=1.0, metadata={"help": "exploration constant in UCB"})
    rollout: bool = field(default=False, metadata={"help": "evaluate a new step by sampling the rest of the solution"})
    selector: str = "visits"

    def __post_init__(self):
        super().__post_init__()
        self.require_positive("width")
        if self.width > self.budget:  # one expansion would draw more samples than the whole budget
            raise ValueError(f"{self.name}: width ({self.width}) must be at most the budget ({self.budget})")
        if not self.c >= 0:
            raise ValueError(f"{self.name}: c must be >= 0, got {self.c!r}")

    @classmethod
    def selectors(cls) -> tuple[str, ...]:
        return ("visits", "value", *super().selectors())

    @property
    def max_rounds(self) -> int:
        return max(1, self.budget * self.max_depth // self.width)

    def search_round(self, trees: list[Tree], expander: Expander) -> None:
        wants = []
        for tree in trees:
            leaf = select_leaf(tree.root, self.c)
            if leaf.terminal:  # a finished solution is re-evaluated, not expanded
                backpropagate(leaf, leaf.value)
            else:
                wants.append((tree, leaf, self.width))
        children = expander.expand(wants)
        kids = [(tree, child) for (tree, _, _), group in zip(wants, children) for child in group]
        values = {id(child): child.score or 0.0 for _, child in kids}
        if self.rollout:
            live = [(tree, child, 1) for tree, child in kids if not child.terminal]
            for (_, child, _), (end,) in zip(live, expander.expand(live, kind="rollout", to_end=True)):
                values[id(child)] = end.score or 0.0
        for _, child in kids:
            backpropagate(child, values[id(child)])
        for tree in trees:
            # Over at N complete solutions, when no leaf is left to expand, or at the round cap.
            tree.done = finished(tree, self.budget) or not can_expand(tree) or tree.rounds + 1 >= self.max_rounds

    def choose(self, tree, nodes, candidates):
        if self.selector not in ("visits", "value"):
            return super().choose(tree, nodes, candidates)
        # Once no leaf is left to expand the search stopped early, and visit counts (the usual robust
        # choice) say little: every leaf was seen about once. Its values are then exact, so walk by value.
        by_visits = self.selector == "visits" and can_expand(tree)
        node = tree.root
        while children := steps_below(node):
            node = max(children, key=lambda n: n.visits if by_visits else n.value)
        # The walk ends at a leaf; when it is not a complete solution, take the best one below where it went.
        below = {id(n) for n in tree if node in n.path()}
        pool = [cand for n, cand in zip(nodes, candidates) if id(n) in below] or candidates
        return pool[0] if len(pool) == 1 else select(pool, "best")
