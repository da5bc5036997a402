"""The parallel family: draw whole solutions, then choose one.

A parallel strategy is a rule over a stream of samples: ``next_draw`` says how
many more samples a question wants (0 = done) and ``choose`` picks the answer.
Samples come from a ``SampleSource``: the generator (one batched call per
round for every question still drawing), or a shared pool of samples drawn
once, so that many strategies and budgets can be evaluated on the same draws.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field, replace
from typing import Sequence

from testtime.domains import Reply, make_candidates
from testtime.generators.base import GenerationRequest
from testtime.ledger import Ledger
from testtime.selection import Candidate
from testtime.strategies.base import Context, QuestionResult, Strategy
from testtime.tasks import Task
from testtime.verifiers.base import Solution


class SampleSource(abc.ABC):
    @abc.abstractmethod
    def draw(self, wants: Sequence[tuple[int, int]], round_index: int, ledgers: Sequence[Ledger]) -> list[list[Candidate]]:
        """For each (question index, count): that many new candidates, costs charged to ledgers."""


class GeneratorSource(SampleSource):
    """Fresh samples: one batched generate call per round for all questions. With ``writes``, each
    question's first sample is passed to ``Context.write`` as the engine writes it (a strategy whose
    answer is that sample), where the backend streams."""

    def __init__(self, tasks: Sequence[Task], ctx: Context, writes: bool = False):
        self.tasks, self.ctx = tasks, ctx
        self.prompts = [ctx.template.build(t) for t in tasks]
        self.writes = writes and ctx.writing is not None and ctx.generator.streams

    def draw(self, wants, round_index, ledgers):
        requests = [
            GenerationRequest(self.prompts[i], n=k, params=self.ctx.sampling_for(self.tasks[i], round_index))
            for i, k in wants
        ]
        results = self.ctx.generate(requests, [ledgers[i] for i, _ in wants], [self.tasks[i] for i, _ in wants],
                                    watch=self._writer(wants) if self.writes else None)
        replies = [[Reply(self.tasks[i], c.text, c.token_count, c.finish_reason, c.reasoning_tokens)
                    for c in r.completions] for (i, _), r in zip(wants, results)]
        made = iter(make_candidates([reply for batch in replies for reply in batch]))  # one batch for all questions
        return [[next(made) for _ in batch] for batch in replies]

    def _writer(self, wants):
        written = [0] * len(wants)

        def watch(k: int, stream, index: int) -> None:  # the new text of sample 0, once per update
            if index == 0:
                text = stream.samples[0].text
                self.ctx.write(self.tasks[wants[k][0]], text[written[k]:])
                written[k] = len(text)

        return watch


def score_candidates(pairs: list[tuple[Task, Candidate]], ledgers: list[Ledger], ctx: Context) -> None:
    """Score the candidates that have no score yet, all questions in one verifier batch."""
    pending = [(task, c, ledger) for (task, c), ledger in zip(pairs, ledgers) if c.score is None]
    if not pending:
        return
    solutions = [Solution(task.question, c.text, thinking_split=ctx.thinking_split) for task, c, _ in pending]
    scored = ctx.verifier.score_steps(solutions, [ledger for _, _, ledger in pending])
    for (_, candidate, _), steps in zip(pending, scored):
        candidate.step_scores = steps.scores
        candidate.score = ctx.verifier.reduce(steps.scores)
        candidate.verifier_tokens = steps.tokens


@dataclass
class Pool:
    """Samples drawn (and, with a verifier, scored) once per question, with what that cost."""

    candidates: list[list[Candidate]]
    prompt_tokens: list[int]
    cached_prompt_tokens: list[int]
    seconds_per_token: float
    parameter_count: int
    verifier_parameter_count: int = 0
    verifier_seconds_per_candidate: float = 0.0

    @classmethod
    def draw(cls, tasks: Sequence[Task], ctx: Context, size: int) -> Pool:
        ledgers = [Ledger() for _ in tasks]
        candidates = GeneratorSource(tasks, ctx).draw([(i, size) for i in range(len(tasks))], 0, ledgers)
        generation_seconds = sum(l.wall_seconds for l in ledgers)
        if ctx.verifier is not None:
            pairs = [(task, c) for task, batch in zip(tasks, candidates) for c in batch]
            score_candidates(pairs, [ledgers[i] for i, batch in enumerate(candidates) for _ in batch], ctx)
        verifier_seconds = sum(l.wall_seconds for l in ledgers) - generation_seconds
        return cls(
            candidates=candidates,
            prompt_tokens=[l.prompt_tokens for l in ledgers],
            cached_prompt_tokens=[l.cached_prompt_tokens for l in ledgers],
            seconds_per_token=generation_seconds / (sum(l.completion_tokens for l in ledgers) or 1),
            parameter_count=ctx.generator.parameter_count,
            verifier_parameter_count=ctx.verifier.parameter_count if ctx.verifier else 0,
            verifier_seconds_per_candidate=verifier_seconds / (len(tasks) * size),
        )


class PoolSource(SampleSource):
    """Takes samples from a pool in order; each question pays its prompt once and each sample its tokens."""

    def __init__(self, pool: Pool):
        self.pool = pool
        self.taken = [0] * len(pool.candidates)

    def draw(self, wants, round_index, ledgers):
        out = []
        for i, k in wants:
            start = self.taken[i]
            batch = self.pool.candidates[i][start : start + k]
            if len(batch) < k:
                raise ValueError(f"question {i}: the pool holds {len(self.pool.candidates[i])} samples, {start + k} wanted")
            self.taken[i] += k
            tokens = sum(c.tokens for c in batch)
            first = start == 0
            ledgers[i].charge_generation(
                prompt_tokens=self.pool.prompt_tokens[i] if first else 0,
                cached_prompt_tokens=self.pool.cached_prompt_tokens[i] if first else 0,
                completion_tokens=tokens,
                parameters=self.pool.parameter_count,
                wall_seconds=tokens * self.pool.seconds_per_token,
                reasoning_tokens=sum(c.reasoning_tokens for c in batch),
            )
            ledgers[i].generate_calls += 1
            if batch[0].score is not None:  # scored once in the pool; each user pays for the scores it reads
                ledgers[i].charge_verifier(
                    tokens=sum(c.verifier_tokens for c in batch),
                    parameters=self.pool.verifier_parameter_count,
                    wall_seconds=k * self.pool.verifier_seconds_per_candidate,
                )
                ledgers[i].verifier_calls += 1
            out.append([replace(c) for c in batch])  # copies: one strategy's choices never touch the pool
        return out


@dataclass
class ParallelStrategy(Strategy):
    budget: int = field(default=8, metadata={"help": "samples per question"})

    def __post_init__(self):
        self.require_integers(1, "budget")

    def next_draw(self, candidates: list[Candidate]) -> int:
        """How many more samples this question wants now; 0 when it is done."""
        return self.budget - len(candidates)

    @abc.abstractmethod
    def choose(self, candidates: list[Candidate]) -> Candidate | None:
        """The chosen solution among the candidates."""

    def solve(self, tasks: Sequence[Task], ctx: Context) -> list[QuestionResult]:
        return self.solve_from(GeneratorSource(tasks, ctx), tasks, ctx)

    def solve_from(self, source: SampleSource, tasks: Sequence[Task], ctx: Context) -> list[QuestionResult]:
        self.check(ctx.verifier)
        ledgers = [Ledger() for _ in tasks]
        candidates: list[list[Candidate]] = [[] for _ in tasks]
        rounds = [0] * len(tasks)
        round_index = 0
        while wants := [(i, k) for i, c in enumerate(candidates)
                        if (k := self.next_draw(c)) > 0 and not (c and ctx.is_cancelled(tasks[i]))]:
            drawn = source.draw(wants, round_index, ledgers)
            if ctx.verifier is not None:  # scores are reported for every strategy, and charged
                score_candidates([(tasks[i], c) for (i, _), batch in zip(wants, drawn) for c in batch],
                                 [ledgers[i] for (i, _), batch in zip(wants, drawn) for _ in batch], ctx)
            for (i, _), batch in zip(wants, drawn):
                candidates[i].extend(batch)
                rounds[i] += 1
                ctx.report(tasks[i], f"{self.name}: {len(candidates[i])} of {self.budget} samples drawn",
                           holding=lambda drawn=candidates[i]: {"candidates": [c.to_dict() for c in drawn]})
            round_index += 1
        return [
            QuestionResult(task, self.choose(cands), cands, ledger, {"rounds": r})
            for task, cands, ledger, r in zip(tasks, candidates, ledgers, rounds)
        ]
