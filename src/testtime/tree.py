"""The search tree every step-level strategy works on.

A node is one reasoning step: its text (with the delimiter that ended it), its
parent, the verifier's scores of every step on the path to it, and the search's
bookkeeping (visits, value). The root is the empty answer. A tree is saved with
each question's result, so the whole search can be inspected afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from testtime.generators.base import Prompt
from testtime.tasks import Task


@dataclass(eq=False)
class Node:
    id: int
    parent: Node | None = None
    text: str = ""  # this step, with the delimiter that ended it
    tokens: int = 0  # completion tokens this step cost
    kind: str = "step"  # "step", or "rollout" for lookahead/simulation text outside the search proper
    terminal: bool = False
    end: str | None = None  # why terminal: "answer", "eos", "length" (solution cap), "depth" (depth cap)
    step_scores: tuple[float, ...] = ()  # the verifier's score of every step on the path
    score: float | None = None  # step_scores reduced by the verifier's aggregation
    verifier_tokens: int = 0
    visits: int = 0
    value_sum: float = 0.0
    children: list[Node] = field(default_factory=list)

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    @property
    def value(self) -> float:
        """The search's running estimate of this node: mean of the values backed up through it."""
        return self.value_sum / self.visits if self.visits else 0.0

    def path(self) -> list[Node]:
        """Root to this node."""
        nodes, node = [], self
        while node is not None:
            nodes.append(node)
            node = node.parent
        return nodes[::-1]

    @property
    def solution(self) -> str:
        """The answer text from the root down to this node."""
        return "".join(n.text for n in self.path())

    @property
    def path_tokens(self) -> int:
        return sum(n.tokens for n in self.path())

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "parent": self.parent.id if self.parent else None,
            "depth": self.depth,
            "kind": self.kind,
            "text": self.text,
            "tokens": self.tokens,
            "terminal": self.terminal,
            "end": self.end,
            "score": self.score,
            "step_score": self.step_scores[-1] if self.step_scores else None,
            "visits": self.visits,
            "value": self.value,
        }


class Tree:
    """One question's search: the prompt, the nodes, and the nodes the search will work on next."""

    def __init__(self, task: Task, prompt: Prompt):
        self.task, self.prompt = task, prompt
        self.root = Node(id=0)
        self.nodes: list[Node] = [self.root]
        self.frontier: list[Node] = [self.root]
        self.done = False
        self.rounds = 0

    def add(self, parent: Node, text: str, tokens: int, kind: str = "step") -> Node:
        node = Node(id=len(self.nodes), parent=parent, text=text, tokens=tokens, kind=kind)
        parent.children.append(node)
        self.nodes.append(node)
        return node

    def prompt_for(self, node: Node) -> Prompt:
        """The chat prompt continued by the partial answer up to ``node``."""
        return self.prompt.extend(node.solution)

    def complete(self) -> list[Node]:
        """Every complete solution the search generated, in the order generated."""
        return [n for n in self.nodes if n.terminal]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def to_dict(self) -> dict:
        return {"nodes": [n.to_dict() for n in self.nodes]}
