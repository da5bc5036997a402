"""Sequential revisions (Snell et al. 2024, section 6): each attempt after a chain's first sees the
question and that chain's latest attempts, and is asked to revise them.

``budget`` attempts in all are split into ``chains`` parallel chains of ``budget / chains`` attempts.
chains = budget is parallel sampling; chains = 1 is purely sequential. A revision's prompt is the
conversation so far: the question, then each earlier attempt (the last ``context`` of its chain) as
the model's own turn followed by the revision request. Every question's chains share one batched
call per revision round. The answer is chosen within each chain (a tie to the latest attempt), then
among the chains' choices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from testtime.domains import Reply, make_candidates
from testtime.generators import SecondModel
from testtime.generators.base import GenerationRequest, Generator, Prompt
from testtime.ledger import Ledger
from testtime.selection import Candidate, Selector, checked_selector, select
from testtime.strategies.base import Context, QuestionResult, Strategy
from testtime.strategies.parallel import score_candidates
from testtime.tasks import Task

DEFAULT_REVISION_REQUEST = (
    "Check your previous solution step by step for mistakes. Then write a corrected solution, "
    "with a blank line between steps, and put the final answer within \\boxed{}."
)


def choose(chains: Sequence[Sequence[Candidate]], selector: str) -> tuple[Candidate | None, list[Candidate]]:
    """The answer chosen within each chain, then among the chains' choices; and the chains' choices.

    Within a chain a tie goes to the latest attempt (a revision is meant to improve on what it saw:
    with two attempts that disagree, majority would otherwise always keep the first)."""
    chain_choices = [choice for chain in chains if (choice := select(list(chain)[::-1], selector))]
    return select(chain_choices, selector), chain_choices


@dataclass
class Attempt:
    candidate: Candidate
    seen: int  # how many earlier attempts of its chain its prompt held
    model: str = ""  # the generator that wrote it: the policy, or the reviser


@dataclass
class Revisions(Strategy):
    """Sequential revisions in parallel chains; the answer chosen within each chain, then across."""

    name = "revisions"
    budget: int = field(default=8, metadata={"help": "attempts in all, over every chain"})
    chains: int = field(default=1, metadata={"help": "parallel chains; each makes budget/chains attempts"})
    context: int = field(default=4, metadata={"help": "earlier attempts of its chain a revision sees"})
    selector: str = field(default=Selector.MAJORITY.value, metadata={
        "help": "choice within a chain, then among chains: majority, best, weighted, borda (these three need a verifier)"})
    revision_request: str = field(default=DEFAULT_REVISION_REQUEST, metadata={
        "escapes": True, "help": "the user turn after each earlier attempt"})
    reviser: str = field(default="", metadata={
        "opens_model": True, "help": "a model (embedded name or folder) that writes every attempt after a "
                                     "chain's first; default the policy"})

    def __post_init__(self):
        self.require_integers(1, "budget", "chains")
        self.require_integers(0, "context")
        if self.budget % self.chains:
            raise ValueError(f"{self.name}: budget ({self.budget}) must be a multiple of chains ({self.chains})")
        self.selector = checked_selector(self.name, self.selector)
        if not self.revision_request.strip():
            raise ValueError(f"{self.name}: revision_request must not be empty")
        self._reviser = SecondModel(self.reviser) if self.reviser else None

    @property
    def length(self) -> int:
        """Attempts per chain."""
        return self.budget // self.chains

    def solve(self, tasks: Sequence[Task], ctx: Context) -> list[QuestionResult]:
        self.check(ctx.verifier)
        ledgers = [Ledger() for _ in tasks]
        chains: list[list[list[Attempt]]] = [[[] for _ in range(self.chains)] for _ in tasks]
        for round_index in range(self.length):
            wants = [(i, c) for i, task in enumerate(tasks) for c in range(self.chains)
                     if not (round_index and (ctx.is_cancelled(task) or self.chain_done(task, chains[i][c])))]
            if not wants:
                break
            writer = self._reviser.generator if self._reviser and round_index else ctx.generator
            prompts = [self.prompt(ctx, tasks[i], chains[i][c], writer) for i, c in wants]
            requests = [GenerationRequest(prompt, params=ctx.sampling_for(tasks[i], "revision", c, round_index))
                        for (i, c), (prompt, _) in zip(wants, prompts)]
            results = ctx.generate(requests, [ledgers[i] for i, _ in wants], [tasks[i] for i, _ in wants], writer)
            made = make_candidates([Reply(tasks[i], c.text, c.token_count, c.finish_reason, c.reasoning_tokens)
                                    for (i, _), c in zip(wants, (r.completions[0] for r in results))])
            if ctx.verifier is not None:
                score_candidates([(tasks[i], cand) for (i, _), cand in zip(wants, made)],
                                 [ledgers[i] for i, _ in wants], ctx)
            for (i, c), cand, (_, seen) in zip(wants, made, prompts):
                chains[i][c].append(Attempt(cand, seen, writer.name))
            for i in {i for i, _ in wants}:
                ctx.report(tasks[i], f"{self.name}: round {round_index + 1} of {self.length}, {self.chains} chains")
        return [self._result(task, question_chains, ledger)
                for task, question_chains, ledger in zip(tasks, chains, ledgers)]

    def prompt(self, ctx: Context, task: Task, chain: list[Attempt], writer: Generator | None = None
               ) -> tuple[Prompt, int]:
        """The revision prompt for a chain's next attempt, and how many earlier attempts it holds.

        It holds the chain's last ``context`` attempts, fewer where the context window of the model
        that writes it (``writer``, default the policy) would otherwise leave less than ``max_tokens``
        for the reply (the oldest go first)."""
        base = ctx.template.build(task)
        seen = min(self.context, len(chain))
        while True:
            messages = list(base.messages)
            for attempt in chain[len(chain) - seen:] if seen else []:
                messages += [("assistant", attempt.candidate.text), ("user", self.request_after(task, attempt))]
            prompt = Prompt(messages=tuple(messages))
            if seen == 0 or self._fits(writer or ctx.generator, ctx.sampling.max_tokens, prompt):
                return prompt, seen
            seen -= 1

    def request_after(self, task: Task, attempt: Attempt) -> str:
        """The user turn that follows an earlier attempt in a revision's prompt."""
        return self.revision_request

    def chain_done(self, task: Task, chain: list[Attempt]) -> bool:
        """Whether a chain stops before its length (its budget unspent): never, here."""
        return False

    @staticmethod
    def _fits(writer: Generator, max_tokens: int, prompt: Prompt) -> bool:
        window = writer.max_model_len
        tokens = writer.count_prompt_tokens(prompt) if window else None
        return tokens is None or tokens + max_tokens <= window

    def _result(self, task: Task, chains: list[list[Attempt]], ledger: Ledger) -> QuestionResult:
        candidates = [a.candidate for chain in chains for a in chain]
        chosen, chain_choices = choose([[a.candidate for a in chain] for chain in chains], self.selector)
        details = {"chains": [[{"text": a.candidate.text, "answer": a.candidate.answer, "score": a.candidate.score,
                                "tokens": a.candidate.tokens, "seen": a.seen,
                                "model": a.model} for a in chain] for chain in chains],
                   "chain_choices": [next(k for k, c in enumerate(candidates) if c is choice)
                                     for choice in chain_choices]}
        return QuestionResult(task, chosen, candidates, ledger, {"rounds": max(map(len, chains), default=0), **details})
