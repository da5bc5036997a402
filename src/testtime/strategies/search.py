"""The step-level search family: strategies that grow a tree of reasoning steps.

A search strategy only decides, round by round, which nodes of each question's
tree to expand and how many ways (``search_round``). The ``Expander`` does the
work: one batched generate call that continues every chosen partial answer up to
the next step delimiter, and one batched verifier call that scores every new step.
On a streaming generator (the in-process engine loop) each tree grows on its own
thread, so no tree waits for the slowest step of the others; elsewhere all
questions share each round's calls. Partial answers are raw continuations of the
chat prompt, so the engine's prefix cache serves the shared prefix.
"""

from __future__ import annotations

import abc
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Sequence

from testtime.answers import states_final_answer
from testtime.generators.base import ABORTED, Completion, GenerationRequest
from testtime.ledger import Ledger
from testtime.selection import Candidate, Selector, checked_selector, select
from testtime.steps import DEFAULT_STEP_DELIMITER
from testtime.strategies.base import Context, QuestionResult, Strategy, make_candidate
from testtime.tasks import Task
from testtime.tree import Node, Tree
from testtime.verifiers.base import Solution
from testtime.verifiers.gathered import Gathered


class Expander:
    """Grows many trees at once: each ``expand`` is one generate call and one verifier call."""

    def __init__(self, ctx: Context, strategy: SearchStrategy, trees: Sequence[Tree], ledgers: Sequence[Ledger]):
        self.ctx, self.strategy = ctx, strategy
        self._ledger = {id(tree): ledger for tree, ledger in zip(trees, ledgers)}

    def ledger(self, tree: Tree) -> Ledger:
        return self._ledger[id(tree)]

    def expand(
        self, wants: Sequence[tuple[Tree, Node, int]], *, kind: str = "step", greedy: bool = False,
        to_end: bool = False,
    ) -> list[list[Node]]:
        """Add ``n`` sampled next steps (or, ``to_end``, whole rest-of-answers) under each node.

        Returns the new children of each want, in order, already scored.
        """
        seen = {(id(t), n.id) for t, n, _ in wants}
        if len(seen) != len(wants):
            raise ValueError("expand: each node may appear once per call (ask for n children instead)")
        requests = [GenerationRequest(tree.prompt_for(node), n=n, params=self._params(tree, node, kind, greedy, to_end))
                    for tree, node, n in wants]
        results = self.ctx.generate(requests, [self.ledger(tree) for tree, _, _ in wants], [tree.task for tree, _, _ in wants])
        children = [
            [self._add(tree, node, completion, kind, to_end) for completion in result.completions]
            for (tree, node, _), result in zip(wants, results)
        ]
        self.score([(tree, child) for (tree, _, _), kids in zip(wants, children) for child in kids])
        return children

    def score(self, pairs: Sequence[tuple[Tree, Node]]) -> None:
        """Score every node's path in one verifier batch."""
        if not pairs:
            return
        verifier, delimiter = self.ctx.verifier, self.strategy.delimiter
        solutions = [Solution(tree.task.question, node.solution, delimiter, self.ctx.thinking_split)
                     for tree, node in pairs]
        scored = verifier.score_steps(solutions, [self.ledger(tree) for tree, _ in pairs])
        for (_, node), steps in zip(pairs, scored):
            node.step_scores = steps.scores
            node.score = verifier.reduce(steps.scores)
            node.verifier_tokens = steps.tokens

    def _params(self, tree: Tree, node: Node, kind: str, greedy: bool, to_end: bool):
        remaining = self.ctx.sampling.max_tokens - node.path_tokens
        changes: dict = {"max_tokens": max(1, remaining if to_end else min(self.strategy.step_tokens, remaining))}
        if not to_end:
            changes["stop"] = (self.strategy.delimiter,)
        if greedy:
            changes["temperature"] = 0.0
        # A seed per question, round, node and purpose: siblings differ, reruns repeat.
        return self.ctx.sampling_for(tree.task, tree.rounds, node.id, kind, **changes)

    def _add(self, tree: Tree, parent: Node, completion: Completion, kind: str, to_end: bool) -> Node:
        delimiter = self.strategy.delimiter
        text = completion.text
        at_delimiter = text.endswith(delimiter) or completion.stop_reason == delimiter
        if completion.stop_reason == delimiter and not text.endswith(delimiter):
            text += delimiter  # servers that strip the stop string
        child = tree.add(parent, text, completion.token_count, kind)
        at_cap = child.path_tokens >= self.ctx.sampling.max_tokens
        if completion.finish_reason in ("length", ABORTED):  # cut: at the cap, or stopped by a cancellation
            if to_end or at_cap:
                child.end = "length"
        elif at_delimiter and not to_end:
            if states_final_answer(text):
                child.end = "answer"
            elif at_cap:  # a step that ends at its delimiter exactly at the cap leaves no token to go on
                child.end = "length"
        else:
            child.end = "eos"
        if child.end is None and child.depth >= self.strategy.max_depth:
            child.end = "depth"
        child.terminal = child.end is not None
        return child


@dataclass
class SearchStrategy(Strategy):
    """Shared parameters of the search family."""

    budget: int = field(default=16, metadata={"help": "complete solutions' worth of generation, as for best-of-N"})
    max_depth: int = field(default=20, metadata={"help": "steps after which a path ends"})
    step_tokens: int = field(default=128, metadata={"help": "cap on one step's tokens"})
    delimiter: str = field(default=DEFAULT_STEP_DELIMITER, metadata={"escapes": True, "help": "the text that ends a step"})
    selector: str = field(default=Selector.BEST.value, metadata={
        "help": "final choice among complete solutions: best, majority, weighted, borda (rank-weighted)"})

    uses_verifier = True

    def __post_init__(self):
        self.require_positive("budget", "max_depth", "step_tokens")
        if not self.delimiter:
            raise ValueError(f"{self.name}: delimiter must not be empty")
        self.selector = checked_selector(self.name, self.selector, self.selectors())

    def require_positive(self, *names: str, integer: bool = True) -> None:
        if integer:
            return self.require_integers(1, *names)
        for name in names:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{self.name}: {name} must be > 0, got {value!r}")

    @classmethod
    def selectors(cls) -> tuple[str, ...]:
        return tuple(s.value for s in Selector)

    @abc.abstractmethod
    def search_round(self, trees: list[Tree], expander: Expander) -> None:
        """Advance every active tree by one round; set ``tree.done`` when its search is over."""

    def rank(self, node: Node) -> float:
        """How promising a partial solution is: its aggregated process score by default."""
        return node.score if node.score is not None else float("-inf")

    def best(self, nodes: Sequence[Node], k: int) -> list[Node]:
        """The k highest-ranked nodes (ties keep generation order)."""
        return sorted(nodes, key=self.rank, reverse=True)[:k]

    def solve(self, tasks: Sequence[Task], ctx: Context) -> list[QuestionResult]:
        self.check(ctx.verifier)
        trees = [Tree(task, ctx.template.build(task)) for task in tasks]
        ledgers = [Ledger() for _ in tasks]
        if ctx.generator.streams and len(trees) > 1:
            # Each tree on its own thread: it advances as soon as its own steps are generated and scored,
            # never waiting for a round of the others; the engine and the verifier batch whatever is ready.
            stopping, cancelled = threading.Event(), ctx.cancelled
            ctx = replace(ctx, verifier=Gathered(ctx.verifier),
                          cancelled=lambda task: stopping.is_set() or (cancelled is not None and cancelled(task)))
            expander = Expander(ctx, self, trees, ledgers)
            with ThreadPoolExecutor(max_workers=len(trees), thread_name_prefix="testtime-tree") as pool:
                growing = [pool.submit(self._grow, [tree], expander) for tree in trees]
                try:
                    # Waits in short slices: a signal's handler (Ctrl-C, SIGTERM) runs only between them.
                    while wait(growing, timeout=0.2).not_done:
                        pass
                    for future in growing:
                        future.result()  # a tree's error is the search's
                except BaseException:  # every tree stops at its next token, not at its end
                    stopping.set()
                    raise
        else:
            self._grow(trees, Expander(ctx, self, trees, ledgers))
        return [self._result(tree, ledger) for tree, ledger in zip(trees, ledgers)]

    def _grow(self, trees: list[Tree], expander: Expander) -> None:
        """Search rounds over ``trees`` until each is done: all in step (one batch a round), or one alone."""
        while active := [tree for tree in trees if not tree.done]:
            self.search_round(active, expander)
            for tree in active:
                tree.rounds += 1
                self._report(tree, expander.ctx)

    def _report(self, tree: Tree, ctx: Context) -> None:
        if ctx.is_cancelled(tree.task):
            tree.done = True  # keeps what it found; the answer is chosen from it
            return
        complete = tree.complete()
        best = max((n.score or 0.0 for n in complete), default=0.0)
        ctx.report(tree.task, f"{self.name} round {tree.rounds}: {len(tree.nodes) - 1} steps, "
                              f"{len(complete)} complete solutions, best score {best:.2f}",
                   holding=lambda: {"tree": tree.to_dict()})

    def _result(self, tree: Tree, ledger: Ledger) -> QuestionResult:
        # Complete solutions are the candidates; a search cut short offers its partial leaves instead.
        nodes = tree.complete() or [n for n in tree if n.parent is not None and not n.children]
        candidates = [node_candidate(n, tree.task) for n in nodes]
        chosen = self.choose(tree, nodes, candidates)
        return QuestionResult(tree.task, chosen, candidates, ledger, {"rounds": tree.rounds, "tree": tree.to_dict()})

    def choose(self, tree: Tree, nodes: list[Node], candidates: list[Candidate]) -> Candidate | None:
        return select(candidates, self.selector)


def node_candidate(node: Node, task: Task | None = None) -> Candidate:
    candidate = make_candidate(node.solution, node.path_tokens, "length" if node.end == "length" else "stop", task=task)
    candidate.score, candidate.step_scores = node.score, node.step_scores
    candidate.verifier_tokens = node.verifier_tokens
    return candidate


def finished(tree: Tree, budget: int) -> bool:
    """A budget of N is spent once the tree holds N complete solutions."""
    return len(tree.complete()) >= budget
