"""Budget forcing (s1, Muennighoff et al. 2025): control how long a model thinks, for any model.

Thinking ends at the closing tag for a model that thinks in tags (``thinking="tags"``) and at the end
of its turn otherwise (``"turn"``: the whole reply is its thinking). ``auto`` asks the generator. In
tags, a reply begins with the opening tag where the chat template does not write it.

- ``min_thinking_tokens``: thinking that ends earlier has its end cut off and ``wait`` appended, and
  the model goes on, up to ``max_waits`` times.
- ``max_thinking_tokens``: thinking that reaches it is stopped there; the thinking is closed,
  ``answer_cue`` appended, and the answer generated within ``answer_tokens``.

``budget`` samples per question are forced in parallel and one answer is chosen among them
(``selector``). Each forcing round is one batched call over every question's unfinished samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from testtime.answers import extract_answer, normalize_answer
from testtime.generators.base import Completion, GenerationRequest
from testtime.ledger import Ledger
from testtime.reasoning import TAGS
from testtime.selection import Candidate, Selector, checked_selector, select
from testtime.strategies.base import Context, QuestionResult, Strategy, make_candidate
from testtime.strategies.parallel import score_candidates
from testtime.tasks import Task

MODES = ("auto", "tags", "turn")


@dataclass
class Forced:
    """One sample being forced: its reply so far and what forcing did to it."""

    text: str = ""
    thinking_tokens: int = 0
    answer_tokens: int = 0
    waits: int = 0
    phase: str = "think"  # think -> answer -> done
    capped: bool = False  # thinking stopped at max_thinking_tokens
    answer_start: int | None = None  # where the generated answer begins in text, after a cue
    finish_reason: str = "stop"

    @property
    def tokens(self) -> int:
        return self.thinking_tokens + self.answer_tokens


@dataclass
class BudgetForcing(Strategy):
    """s1's budget forcing: extend short thinking with "Wait", cut long thinking and ask for the answer."""

    name = "budget_forcing"
    budget: int = field(default=4, metadata={"help": "samples per question, each forced"})
    min_thinking_tokens: int = field(default=0, metadata={"help": "thinking shorter than this is extended"})
    max_thinking_tokens: int | None = field(default=None, metadata={"help": "thinking is stopped here (none: no cap)"})
    max_waits: int = field(default=2, metadata={"help": "times a sample's thinking may be extended"})
    wait: str = field(default="Wait", metadata={"escapes": True, "help": "appended where thinking ended too early"})
    answer_cue: str = field(default="Final Answer:", metadata={"escapes": True,
                                                                "help": "appended where thinking was stopped"})
    answer_tokens: int = field(default=64, metadata={"help": "tokens for the answer after a stop"})
    thinking: str = field(default="auto", metadata={
        "help": "where thinking ends: tags (at </think>), turn (the reply's end), auto (tags if the model thinks in them)"})
    selector: str = field(default=Selector.MAJORITY.value, metadata={
        "help": "choice among the samples: majority, best, weighted, borda (these three need a verifier)"})

    def __post_init__(self):
        self.require_integers(1, "budget", "answer_tokens")
        self.require_integers(0, "min_thinking_tokens", "max_waits")
        if self.max_thinking_tokens is not None:
            self.require_integers(1, "max_thinking_tokens")
            if self.max_thinking_tokens < self.min_thinking_tokens:
                raise ValueError(f"{self.name}: max_thinking_tokens ({self.max_thinking_tokens}) is below "
                                 f"min_thinking_tokens ({self.min_thinking_tokens})")
        if self.thinking not in MODES:
            raise ValueError(f"{self.name}: thinking must be one of {', '.join(MODES)}, got {self.thinking!r}")
        self.selector = checked_selector(self.name, self.selector)
        if not self.wait.strip() or not self.answer_cue.strip():
            raise ValueError(f"{self.name}: wait and answer_cue must not be empty")

    def solve(self, tasks: Sequence[Task], ctx: Context) -> list[QuestionResult]:
        self.check(ctx.verifier)
        tags = self.thinking == "tags" or (self.thinking == "auto" and ctx.generator.thinks_in_tags)
        ledgers = [Ledger() for _ in tasks]
        # A reply in tags starts inside its thought: the chat template opens it, or testtime writes the
        # opening tag itself (as s1 does), so that a model told to think in tags does, and its tokens count.
        opening = TAGS.open + "\n" if tags and not ctx.generator.opens_thinking else ""
        samples = [[Forced(text=opening) for _ in range(self.budget)] for _ in tasks]
        prompts = [ctx.template.build(task) for task in tasks]
        round_index = 0
        while active := [(i, j) for i, question in enumerate(samples) for j, s in enumerate(question)
                         if s.phase != "done" and not (round_index and ctx.is_cancelled(tasks[i]))]:
            requests = [GenerationRequest(prompts[i].extend(samples[i][j].text),
                                          params=self._params(ctx, tasks[i], j, round_index, samples[i][j], tags))
                        for i, j in active]
            results = ctx.generate(requests, [ledgers[i] for i, _ in active], [tasks[i] for i, _ in active])
            for (i, j), result in zip(active, results):
                self._advance(samples[i][j], result.completions[0], ctx.sampling.max_tokens, tags)
            round_index += 1
        candidates = [[self._candidate(s, tags) for s in question] for question in samples]
        if ctx.verifier is not None:
            score_candidates([(task, c) for task, cands in zip(tasks, candidates) for c in cands],
                             [ledger for ledger, cands in zip(ledgers, candidates) for _ in cands], ctx)
        return [QuestionResult(task, select(cands, self.selector), cands, ledger, {
                    "rounds": round_index, "thinking": "tags" if tags else "turn",
                    "forcing": [{"thinking_tokens": s.thinking_tokens, "answer_tokens": s.answer_tokens,
                                 "waits": s.waits, "capped": s.capped} for s in question]})
                for task, cands, ledger, question in zip(tasks, candidates, ledgers, samples)]

    def _params(self, ctx: Context, task: Task, j: int, round_index: int, s: Forced, tags: bool):
        left = ctx.sampling.max_tokens - s.tokens  # the whole reply stays within max_tokens
        if s.phase == "answer":
            limit = min(self.answer_tokens, left) if s.capped else left
            return ctx.sampling_for(task, "force", j, round_index, max_tokens=max(1, limit))
        if self.max_thinking_tokens is not None:
            left = min(left, self.max_thinking_tokens - s.thinking_tokens)
        return ctx.sampling_for(task, "force", j, round_index, max_tokens=max(1, left),
                                stop=(TAGS.close,) if tags else ())

    def _advance(self, s: Forced, c: Completion, max_tokens: int, tags: bool) -> None:
        """Take one completion into a sample and decide its next phase."""
        if s.phase == "answer":
            s.answer_tokens += c.token_count
            s.text += c.text
            s.phase, s.finish_reason = "done", c.finish_reason or "stop"
            return
        s.thinking_tokens += c.token_count
        text = c.text
        if tags and c.stop_reason == TAGS.close and not text.endswith(TAGS.close):
            text += TAGS.close  # a server that strips the stop string
        if c.finish_reason == "length":
            capped = self.max_thinking_tokens is not None and s.thinking_tokens >= self.max_thinking_tokens
            if not capped or s.tokens >= max_tokens:  # out of the reply's own max_tokens
                s.text += text
                s.phase, s.finish_reason = "done", "length"
                return
            s.text += text + (f"\n{TAGS.close}" if tags else "") + f"\n\n{self.answer_cue}"
            s.phase, s.capped, s.answer_start = "answer", True, len(s.text)
            return
        closed = tags and text.endswith(TAGS.close)
        if (s.thinking_tokens < self.min_thinking_tokens and s.waits < self.max_waits
                and s.tokens < max_tokens):
            body = text[: -len(TAGS.close)] if closed else text
            s.text += body.rstrip() + f"\n\n{self.wait}"
            s.waits += 1
            return
        s.text += text
        s.phase = "answer" if closed else "done"  # after </think> the model goes on to its answer

    @staticmethod
    def _candidate(s: Forced, tags: bool) -> Candidate:
        candidate = make_candidate(s.text, s.tokens, s.finish_reason, s.thinking_tokens if tags else 0)
        if s.answer_start is not None:  # an answer asked for by the cue is read from what followed it
            answer = extract_answer(s.text[s.answer_start:])
            if answer is not None:
                candidate.answer, candidate.key = answer, normalize_answer(answer)
        return candidate
