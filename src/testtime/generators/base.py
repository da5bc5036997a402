"""The one interface every generator (backend) implements.

A generator takes a batch of requests and returns one result per request, in
order. A request is a chat prompt, optionally with the beginning of the
assistant's answer (``continuation``) that the model must continue: step-level
searches extend partial answers this way so the shared prefix is served from
the engine's prefix cache.
"""

from __future__ import annotations

import abc
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from testtime.ledger import Ledger, count_call
from testtime.reasoning import TAGS


# Fewer than 5 % of the default model's GSM8K solutions run past it under the default prompt (2.2 %
# of 320 at 640, 5.0 % at 512: bench/lengths.py), and accuracy stops rising there.
DEFAULT_MAX_TOKENS = 640


@dataclass(frozen=True)
class SamplingParams:
    """Plain sampling parameters, the same for every backend."""

    temperature: float = 0.8
    top_p: float = 1.0
    max_tokens: int = DEFAULT_MAX_TOKENS
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # Top alternatives to report per generated token (Completion.top_logprobs); None asks for none.
    # vLLM allows at most 20 unless the engine was started with a larger max_logprobs, and the
    # OpenAI API allows at most 20 too; the backend refuses more.
    logprobs: int | None = None

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.logprobs is not None and (isinstance(self.logprobs, bool) or self.logprobs < 0):
            raise ValueError(f"logprobs must be None or an integer >= 0, got {self.logprobs!r}")


@dataclass(frozen=True)
class Prompt:
    """A chat conversation, plus the start of the assistant's reply to continue."""

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs
    continuation: str = ""

    @classmethod
    def chat(cls, system: str | None, user: str) -> Prompt:
        messages = ((("system", system),) if system else ()) + (("user", user),)
        return cls(messages=messages)

    def extend(self, text: str) -> Prompt:
        return Prompt(messages=self.messages, continuation=self.continuation + text)

    def as_openai_messages(self) -> list[dict]:
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass(frozen=True)
class GenerationRequest:
    prompt: Prompt
    n: int = 1
    params: SamplingParams = field(default_factory=SamplingParams)

    def __post_init__(self):
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")


ABORTED = "abort"  # the finish reason of a sample stopped before its end (a cancellation, a strategy's own stop)


@dataclass(frozen=True)
class Completion:
    text: str
    token_count: int
    finish_reason: str | None = None  # "stop" (stop string or end of answer), "length", or ABORTED
    cumulative_logprob: float | None = None
    stop_reason: str | None = None  # the stop string that ended it, where the backend says
    # Where SamplingParams.logprobs = k was asked for: one dict per generated token, mapping the
    # decoded text of each of the k most likely tokens at that position to its log-probability.
    # Tokens whose texts coincide are merged (their probabilities added), so a dict can hold fewer
    # than k entries. None where not asked for, or where the backend or server returned none.
    top_logprobs: tuple[dict[str, float], ...] | None = None
    # Of token_count, those inside thinking tags (testtime.reasoning); set by ``Generator.generate``
    # where the backend did not say.
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class GenerationResult:
    completions: tuple[Completion, ...]
    prompt_tokens: int
    cached_prompt_tokens: int = 0
    # The engine's own time for this request, where the backend measures it (the engine loop's share
    # of each step); else the ledger shares the call's wall time by tokens.
    engine_seconds: float | None = None

    @property
    def completion_tokens(self) -> int:
        return sum(c.token_count for c in self.completions)

    @property
    def reasoning_tokens(self) -> int:
        return sum(c.reasoning_tokens for c in self.completions)


def merge_logprob(top: dict[str, float], text: str, logprob: float) -> None:
    """Add ``logprob`` to ``top[text]`` as probabilities add: log(exp(a) + exp(b))."""
    if text not in top:
        top[text] = logprob
        return
    a, b = top[text], logprob
    high = max(a, b)
    if high == -math.inf:
        return
    top[text] = high + math.log(math.exp(a - high) + math.exp(b - high))


class PromptTooLongError(ValueError):
    """A prompt does not fit in the model's context window."""


class EngineDied(RuntimeError):
    """The in-process engine's process died (killed, out of memory): every request fails with this."""


class Generator(abc.ABC):
    """A batched text generator. Subclasses implement ``_generate``."""

    name: str = "generator"
    model: str = "model"  # the model's name or folder (an embedded model's folder is named after it)
    parameter_count: int = 0  # for the FLOPs estimate
    max_model_len: int | None = None
    thinks_in_tags: bool = False  # the model reasons in <think> tags (testtime.reasoning), where known
    opens_thinking: bool = False  # its chat template writes the opening tag: a reply starts inside thinking
    # The backend streams (``submit_all``): concurrent calls from many threads join one running batch, and a
    # request can be stopped mid-generation.
    streams: bool = False

    @abc.abstractmethod
    def _generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Run every request in as few engine calls as the backend allows."""

    def submit_all(self, requests: Sequence[GenerationRequest], on_updates=None) -> list:
        """The streaming form (where ``streams``): start the requests now, together, and return one
        ``streams.Stream`` each (samples as they grow, ``wait``, ``abort``, ``result``).
        ``on_updates[i](stream, index)``, where given, is called as sample ``index`` of request i gains
        tokens or ends. A prompt too long for the context is refused before any request starts, where the
        backend can tell (the in-process engine; over HTTP the server refuses that request's stream)."""
        raise NotImplementedError(f"generator {self.name!r} does not stream")

    def generate(
        self, requests: Sequence[GenerationRequest], ledgers: Sequence[Ledger] | None = None,
        stop: Callable[[int], bool] | None = None, watch: Callable | None = None,
    ) -> list[GenerationResult]:
        """Generate for all requests at once; charge each request's cost to its ledger.

        ``stop(i)`` says whether request i is no longer wanted: a streaming backend polls it while it
        generates and aborts that request at once (its tokens so far are kept and charged). Wall time
        is the engine's own per request where the backend measures it, else the call's wall time
        shared in proportion to the tokens each made the engine compute (uncached prompt plus completion).
        ``watch(i, stream, index)`` (a streaming backend only) is request i's ``on_update`` (``submit_all``).
        """
        if ledgers is not None and len(ledgers) != len(requests):
            raise ValueError("generate: one ledger per request is required")
        if not requests:
            return []
        start = time.perf_counter()
        if watch is not None and not self.streams:
            raise ValueError(f"generator {self.name!r} does not stream: nothing to watch")
        raw = self._stream_all(requests, stop, watch) if self.streams else self._generate(requests)
        results = [self._count_reasoning(request, result) for request, result in zip(requests, raw)]
        elapsed = time.perf_counter() - start
        if ledgers is not None:
            self._charge(results, ledgers, elapsed)
        return results

    def _stream_all(self, requests: Sequence[GenerationRequest], stop: Callable[[int], bool] | None,
                    watch: Callable | None = None, poll_seconds: float = 0.02) -> list[GenerationResult]:
        """Every request submitted at once, waited for, each aborted as soon as ``stop`` says so."""
        on_updates = [(lambda stream, index, i=i: watch(i, stream, index)) for i in range(len(requests))] if watch else None
        streams = self.submit_all(requests, on_updates)
        stopped: set[int] = set()
        while pending := [i for i, s in enumerate(streams) if not s.done]:
            streams[pending[0]].wait(poll_seconds if stop else None)
            for i in pending if stop else ():
                if i not in stopped and stop(i):
                    stopped.add(i)
                    streams[i].abort()
        return [s.result() for s in streams]

    def _count_reasoning(self, request: GenerationRequest, result: GenerationResult) -> GenerationResult:
        continuation = request.prompt.continuation
        inside = TAGS.is_open(continuation) or (self.opens_thinking and TAGS.close not in continuation)
        if not inside and not any(TAGS.open in c.text or TAGS.close in c.text for c in result.completions):
            return result  # the common case: no thinking tags anywhere
        completions = []
        for c in result.completions:
            reasoning, _ = TAGS.split(c.text, inside=inside)
            if reasoning and not c.reasoning_tokens:
                counted = self.count_text_tokens(reasoning)  # else in proportion to the characters
                share = counted if counted is not None else round(c.token_count * len(reasoning) / len(c.text))
                c = replace(c, reasoning_tokens=min(share, c.token_count))
            completions.append(c)
        return replace(result, completions=tuple(completions))

    def count_text_tokens(self, text: str) -> int | None:
        """Tokens a piece of generated text takes, where the backend's tokenizer is at hand."""
        return None

    def _charge(self, results, ledgers, elapsed: float) -> None:
        total = sum(r.completion_tokens + r.prompt_tokens - r.cached_prompt_tokens for r in results) or 1
        for result, ledger in zip(results, ledgers):
            work = result.completion_tokens + result.prompt_tokens - result.cached_prompt_tokens
            own = result.engine_seconds
            ledger.charge_generation(
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                cached_prompt_tokens=result.cached_prompt_tokens,
                parameters=self.parameter_count,
                wall_seconds=own if own is not None else elapsed * work / total,
                reasoning_tokens=result.reasoning_tokens,
            )
        count_call(ledgers, "generate_calls")

    def count_prompt_tokens(self, prompt: Prompt) -> int | None:
        """Tokens the prompt takes, where the backend can tell without generating."""
        return None

    def healthy(self) -> bool:
        """Whether the backend can still generate (False once an in-process engine is gone)."""
        return True

    def close(self) -> None:
        """Release engine resources (no-op by default)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
