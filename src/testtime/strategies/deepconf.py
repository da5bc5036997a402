"""DeepConf (Fu et al. 2025, arXiv 2508.15260): parallel traces filtered and weighted by the model's own
confidence (testtime.confidence), read from the top log-probabilities of every generated token.

``offline``: ``budget`` whole traces; the most confident ``keep`` share of them votes, each weighted
by its confidence (``measure``). ``online``: ``warmup`` whole traces fix a threshold, the confidence
of their lowest group at the (1 - keep) quantile; the other traces are generated all at once and a
trace is aborted at the token where one of its groups falls below the threshold (on a streaming
backend, the engine loop or HTTP; one that does not stream writes them ``chunk`` tokens a round and
checks after each); a question stops once the confidence-weighted vote of at least two finished
traces reaches the share ``tau``. A stopped trace's tokens stay in the ledger, and it does not vote.
With ``measure=self_certainty`` traces are weighed by self-certainty (Kang et al. 2025) instead.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from testtime.confidence import MEASURES, group_confidences, lowest_group, token_confidence, trace_confidence
from testtime.generators.base import Completion, GenerationRequest
from testtime.ledger import Ledger
from testtime.selection import Candidate, Selector, checked_selector, select
from testtime.strategies.base import Context, QuestionResult, Strategy, make_candidate
from testtime.tasks import Task

MODES = ("offline", "online")
MIN_VOTERS = 2  # online: a vote agrees at tau only among at least this many finished traces


def check_top_k(owner: str, top_k: int) -> None:
    """Refused at once, not by the engine in the middle of a run."""
    if top_k > 20:
        raise ValueError(f"{owner}: top_k must be at most 20 (the log-probabilities vLLM and the OpenAI API "
                         f"report), got {top_k}")


@dataclass
class Trace:
    text: str = ""
    tokens: int = 0
    tops: list = field(default_factory=list)  # one {token: logprob} per generated token
    confidences: list = field(default_factory=list)  # one token confidence per generated token
    finish_reason: str | None = None  # None while it is being generated; "aborted" when stopped

    def take(self, c: Completion) -> None:
        self.text += c.text
        self.tokens += c.token_count
        self.tops += list(c.top_logprobs or ())
        self.confidences += [token_confidence(t) for t in c.top_logprobs or ()]


@dataclass
class DeepConf(Strategy):
    """Confidence-filtered, confidence-weighted voting over parallel traces; online, with early stops."""

    name = "deepconf"
    budget: int = field(default=16, metadata={"help": "traces per question, at most"})
    mode: str = field(default="offline", metadata={"help": "offline (filter whole traces) or online (stop them early)"})
    measure: str = field(default="bottom10", metadata={
        "help": "a trace's confidence: mean, bottom10 (its lowest 10 % of groups), lowest, tail, self_certainty"})
    keep: float = field(default=0.9, metadata={"help": "offline: share of traces that vote; online: the threshold's "
                                                       "quantile is 1 - keep of the warm-up traces"})
    selector: str = field(default=Selector.WEIGHTED.value, metadata={
        "help": "weighted (by confidence), majority, best (the most confident trace) or borda (by rank) among the voters"})
    window: int = field(default=32, metadata={"help": "tokens per group (the sliding window)"})
    tail: int = field(default=64, metadata={"help": "measure=tail: the last tokens it averages"})
    top_k: int = field(default=5, metadata={"help": "top log-probabilities per token (vLLM allows 20)"})
    warmup: int = field(default=4, metadata={"help": "online: whole traces that fix the threshold"})
    tau: float = field(default=0.95, metadata={"help": "online: the vote share, among at least two finished traces, "
                                                        "at which a question stops drawing"})
    chunk: int = field(default=64, metadata={"help": "online: tokens per round between confidence checks"})

    def __post_init__(self):
        self.require_integers(1, "budget", "window", "tail", "top_k", "warmup", "chunk")
        check_top_k(self.name, self.top_k)
        if self.mode not in MODES:
            raise ValueError(f"{self.name}: mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.measure not in MEASURES:
            raise ValueError(f"{self.name}: measure must be one of {', '.join(MEASURES)}, got {self.measure!r}")
        for name in ("keep", "tau"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ValueError(f"{self.name}: {name} must be in (0, 1], got {value!r}")
        if self.mode == "online" and self.warmup > self.budget:
            raise ValueError(f"{self.name}: warmup ({self.warmup}) must be at most the budget ({self.budget})")
        self.selector = checked_selector(self.name, self.selector)

    def check(self, verifier) -> None:
        """Any selector works without a verifier: the weights are the traces' own confidences."""

    def solve(self, tasks: Sequence[Task], ctx: Context) -> list[QuestionResult]:
        ledgers = [Ledger() for _ in tasks]
        first = self.budget if self.mode == "offline" else self.warmup
        traces = [[Trace() for _ in range(first)] for _ in tasks]
        self._whole(tasks, ctx, traces, ledgers)
        thresholds = [None] * len(tasks)
        rounds = 1
        if self.mode == "online":
            thresholds = [self._threshold(question) for question in traces]
            online = self._streamed if ctx.generator.streams else self._online
            rounds += online(tasks, ctx, traces, thresholds, ledgers)
        return [self._result(task, question, threshold, ledger, rounds)
                for task, question, threshold, ledger in zip(tasks, traces, thresholds, ledgers)]

    def _whole(self, tasks, ctx: Context, traces, ledgers) -> None:
        """Every question's first traces, whole, in one batched call."""
        requests = [GenerationRequest(ctx.template.build(task), n=len(question),
                                      params=ctx.sampling_for(task, "deepconf", logprobs=self.top_k))
                    for task, question in zip(tasks, traces)]
        for question, result in zip(traces, ctx.generate(requests, ledgers, tasks)):
            for trace, completion in zip(question, result.completions):
                if completion.token_count and not completion.top_logprobs:
                    raise ValueError(f"{self.name}: generator {ctx.generator.name!r} returned no top log-probabilities; "
                                     "deepconf needs a backend that honours SamplingParams.logprobs")
                trace.take(completion)
                trace.finish_reason = completion.finish_reason or "stop"

    def _streamed(self, tasks, ctx: Context, traces, thresholds, ledgers) -> int:
        """The rest of every budget in flight at once on a streaming backend: a trace is aborted at the
        token where one of its groups falls below the threshold, a question's traces once its vote agrees."""
        wanted = [i for i, question in enumerate(traces) if not self._agreed(question, thresholds[i])]
        if not wanted:
            return 0
        first = {i: len(traces[i]) for i in wanted}
        for i in wanted:
            traces[i] += [Trace() for _ in range(self.budget - self.warmup)]
        requests = [GenerationRequest(ctx.template.build(tasks[i]), n=self.budget - self.warmup,
                                      params=ctx.sampling_for(tasks[i], "deepconf", "online", logprobs=self.top_k))
                    for i in wanted]

        def watch(k: int, stream, index: int) -> None:  # on the engine's thread, at every new token
            i = wanted[k]
            trace, sample = traces[i][first[i] + index], stream.samples[index]
            if trace.finish_reason is not None:
                return
            if self._below(trace, sample, thresholds[i]):
                trace.finish_reason = "aborted"
                stream.abort(index)
            elif sample.finished:
                trace.finish_reason = sample.finish_reason
                if self._agreed(traces[i], thresholds[i]):
                    for t in traces[i]:
                        t.finish_reason = t.finish_reason or "aborted"
                    stream.abort()

        ctx.generate(requests, [ledgers[i] for i in wanted], [tasks[i] for i in wanted], watch=watch)
        for i in wanted:  # a question cancelled mid-way: its unfinished traces were stopped too
            for t in traces[i]:
                t.finish_reason = t.finish_reason or "aborted"
        return 1

    def _below(self, trace: Trace, sample, threshold: float) -> bool:
        """Take the sample's new tokens; whether a group that ends among them is below the threshold."""
        before = len(trace.tops)
        fresh = sample.tops[before:]
        trace.text, trace.tokens = sample.text, sample.token_count
        trace.tops += fresh
        trace.confidences += [token_confidence(t) for t in fresh]
        c, w = trace.confidences, self.window
        return any(sum(c[end - w + 1 : end + 1]) / w < threshold for end in range(max(before, w - 1), len(c)))

    def _online(self, tasks, ctx: Context, traces, thresholds, ledgers) -> int:
        """The rest of each budget, ``chunk`` tokens a round, each trace checked after each round (a backend
        that does not stream: a stop takes effect at the end of a chunk)."""
        prompts = [ctx.template.build(task) for task in tasks]
        for i, question in enumerate(traces):
            if not self._agreed(question, thresholds[i]):
                question += [Trace() for _ in range(self.budget - self.warmup)]
        rounds = 0
        while live := [(i, j) for i, question in enumerate(traces) for j, t in enumerate(question)
                       if t.finish_reason is None]:
            requests = [GenerationRequest(prompts[i].extend(traces[i][j].text), params=ctx.sampling_for(
                tasks[i], "deepconf", j, rounds, logprobs=self.top_k,
                max_tokens=min(self.chunk, ctx.sampling.max_tokens - traces[i][j].tokens))) for i, j in live]
            results = ctx.generator.generate(requests, [ledgers[i] for i, _ in live])
            for (i, j), result in zip(live, results):
                self._advance(traces[i][j], result.completions[0], thresholds[i], ctx.sampling.max_tokens)
            rounds += 1
            for i in {i for i, _ in live}:
                if self._agreed(traces[i], thresholds[i]) or ctx.is_cancelled(tasks[i]):
                    for t in traces[i]:
                        if t.finish_reason is None:
                            t.finish_reason = "aborted"
                ctx.report(tasks[i], f"{self.name}: online round {rounds}")
        return rounds

    def _advance(self, trace: Trace, c: Completion, threshold: float, max_tokens: int) -> None:
        before = len(trace.tops)
        trace.take(c)
        groups = group_confidences(trace.confidences, self.window)
        if len(trace.tops) >= self.window:  # only whole groups are checked, each once: those ending in this chunk
            fresh = groups[max(0, before - self.window + 1):]
            if fresh and min(fresh) < threshold:
                trace.finish_reason = "aborted"
                return
        if c.finish_reason != "length" or trace.tokens >= max_tokens:
            trace.finish_reason = c.finish_reason or "stop"

    def _threshold(self, warmup: list[Trace]) -> float:
        return float(np.percentile([lowest_group(t.confidences, self.window) for t in warmup], 100 * (1 - self.keep)))

    def _confidence(self, trace: Trace) -> float:
        return trace_confidence(trace.tops, self.measure, self.window, self.tail)

    def _voters(self, traces: list[Trace], threshold: float | None) -> list[int]:
        """Offline: the most confident ``keep`` share; online: every finished trace that met the threshold."""
        if threshold is None:
            ranked = sorted(range(len(traces)), key=lambda k: -self._confidence(traces[k]))
            return sorted(ranked[: max(1, math.ceil(self.keep * len(traces)))])
        return [k for k, t in enumerate(traces) if t.finish_reason not in (None, "aborted")
                and lowest_group(t.confidences, self.window) >= threshold]

    def _agreed(self, traces: list[Trace], threshold: float) -> bool:
        """Whether one answer holds ``tau`` of the confidence-weighted vote of the finished traces (a
        trace with no answer weighs in the total: one answer among traces that gave none is no consensus).
        One voter is no consensus either: with a high threshold (keep = 0.1) only the most confident
        warm-up trace may pass it, and it would agree with itself and stop the question at warm-up."""
        voters = self._voters(traces, threshold)
        if len(voters) < MIN_VOTERS:
            return False
        totals: dict[str | None, float] = defaultdict(float)
        for k in voters:
            totals[make_candidate(traces[k].text, traces[k].tokens).key] += self._confidence(traces[k])
        total, answered = sum(totals.values()), [w for key, w in totals.items() if key is not None]
        return total > 0 and bool(answered) and max(answered) / total >= self.tau

    def _result(self, task: Task, traces: list[Trace], threshold: float | None, ledger: Ledger,
                rounds: int) -> QuestionResult:
        candidates = [self._candidate(t) for t in traces]
        voters = self._voters(traces, threshold)
        confidences = [self._confidence(t) for t in traces]
        pool = [candidates[k] for k in voters]
        for k in voters:
            candidates[k].score = confidences[k]  # the weight of its vote
        chosen = select(pool, self.selector) if pool else select(candidates, Selector.MAJORITY)
        return QuestionResult(task, chosen, candidates, ledger, {
            "rounds": rounds, "mode": self.mode, "threshold": threshold, "voters": voters,
            "confidences": confidences, "aborted": sum(t.finish_reason == "aborted" for t in traces),
            "traces": len(traces)})

    @staticmethod
    def _candidate(trace: Trace) -> Candidate:
        candidate = make_candidate(trace.text, trace.tokens, trace.finish_reason)
        if trace.finish_reason == "aborted":  # a stopped trace states no answer of its own
            candidate.answer = candidate.key = None
        return candidate
