from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from testtime.strategies.search import Expander, SearchStrategy
from testtime.tree import Node, Tree


def softmax(scores, temperature: float) -> np.ndarray:
    z = np.asarray(scores, dtype=float) / temperature
    z = np.exp(z - z.max())
    return z / z.sum()


def resample(particles: list[Node], count: int, temperature: float, rng: np.random.Generator) -> list[Node]:
    """Draw ``count`` particles with replacement, each with probability softmax(score / temperature)."""
    weights = softmax([p.score or 0.0 for p in particles], temperature)
    picks = rng.choice(len(particles), size=count, replace=True, p=weights)
    return [particles[i] for i in sorted(picks)]


@dataclass
class ParticleFiltering(SearchStrategy):
    """N particles advance a step at a time and are resampled by a softmax over their process scores."""

    name = "particle_filtering"
    softmax_temperature: float = field(default=1.0, metadata={"help": "of the softmax over process scores"})

    def __post_init__(self):
        super().__post_init__()
        self.require_positive("softmax_temperature", integer=False)

    def search_round(self, trees: list[Tree], expander: Expander) -> None:
        # tree.frontier is the population: N particles, repeats allowed; finished particles stay in it.
        for tree in trees:
            if tree.rounds == 0:
                tree.frontier = [tree.root] * self.budget
        moving = {id(tree): Counter(p for p in tree.frontier if not p.terminal) for tree in trees}
        wants = [(tree, node, copies) for tree in trees for node, copies in moving[id(tree)].items()]
        children = expander.expand(wants)
        grown = {id(tree): [p for p in tree.frontier if p.terminal] for tree in trees}
        for (tree, _, _), kids in zip(wants, children):
            grown[id(tree)].extend(kids)
        for tree in trees:
            population = grown[id(tree)]
            if all(p.terminal for p in population):
                tree.frontier, tree.done = population, True
                continue
            rng = np.random.default_rng(expander.ctx.seed_for(tree.task, tree.rounds, "resample"))
            tree.frontier = resample(population, self.budget, self.softmax_temperature, rng)
