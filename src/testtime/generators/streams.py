"""A request in flight on a streaming backend (the engine loop, the HTTP backend): its samples as they
grow, a way to wait for them, and a way to stop any of them."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

from testtime.generators.base import Completion, GenerationRequest, GenerationResult


@dataclass
class Sample:
    """One sample of a stream, as far as it has got."""

    parts: list[str] = field(default_factory=list)
    token_count: int = 0
    tops: list[dict[str, float]] | None = None
    finish_reason: str | None = None
    stop_reason: str | None = None
    cumulative_logprob: float | None = None
    started: bool = False  # its prefill is done (its first output came)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def completion(self) -> Completion:
        return Completion(text=self.text, token_count=self.token_count, finish_reason=self.finish_reason,
                          cumulative_logprob=self.cumulative_logprob, stop_reason=self.stop_reason,
                          top_logprobs=tuple(self.tops) if self.tops is not None else None)


# Called as sample ``index`` gains tokens or ends, on the backend's thread (the engine loop's, or the HTTP
# backend's event loop: one call at a time per stream); it must be quick, and may call ``stream.abort``.
OnUpdate = Callable[["Stream", int], None]


class Stream:
    """One submitted request in flight: its samples so far, its engine time, a way to stop it.

    ``aborts`` is what stops samples: anything with ``abort(sample ids)`` (the engine loop; the HTTP
    backend's set of stopped samples)."""

    def __init__(self, aborts, request: GenerationRequest, prompt_tokens: int, on_update: OnUpdate | None):
        self.request, self.prompt_tokens, self.on_update = request, prompt_tokens, on_update
        self.samples = [Sample(tops=[] if request.params.logprobs is not None else None) for _ in range(request.n)]
        self.cached_prompt_tokens = 0
        self.prompt_from: int | None = None  # the sample whose usage the prompt is counted from (HTTP)
        self.engine_seconds: float | None = 0.0  # None where the backend cannot tell (HTTP)
        self.error: BaseException | None = None
        self._aborts = aborts
        self._notifying = threading.Lock()  # one watcher call at a time, whichever thread updates
        self._ids: list[str] = []
        self._ended: set[int] = set()
        self._done = threading.Event()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def abort(self, index: int | None = None) -> None:
        """Stop one sample (or all of them): before the engine's next step, or at once over HTTP (its
        connection is closed). What it wrote is kept."""
        wanted = range(len(self.samples)) if index is None else (index,)
        self._aborts.abort([self._ids[k] for k in wanted if k < len(self._ids)])

    def result(self) -> GenerationResult:
        if self.error is not None:
            raise self.error
        return GenerationResult(tuple(s.completion() for s in self.samples), self.prompt_tokens,
                                self.cached_prompt_tokens, engine_seconds=self.engine_seconds)

    def _finish_sample(self, index: int, reason: str) -> None:
        if index in self._ended:
            return
        self._ended.add(index)
        self.samples[index].finish_reason = self.samples[index].finish_reason or reason
        if len(self._ended) == len(self.samples):
            self._done.set()

    def _notify(self, index: int) -> None:
        """Call the watcher for sample ``index``; its fault ends its own request, nothing else."""
        if self.on_update is None:
            return
        with self._notifying:
            try:
                self.on_update(self, index)
            except BaseException as exc:
                self.abort()
                self._fail(exc)

    def _fail(self, error: BaseException) -> None:
        self.error = error
        self._done.set()
