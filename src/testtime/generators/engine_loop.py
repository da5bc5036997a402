"""The in-process engine's loop: one thread owns vLLM's engine and steps it while anything runs.

Requests from any thread (a strategy's batched call, one tree growing on its own, a server
client) join the running batch at the next engine step and leave it when finished or aborted;
an abort is applied before the next step. Every sample is its own engine request (vLLM's own
fan-out of ``n`` does the same, with seeds ``seed + index``), so one sample can be stopped alone.

Each step's wall time is shared among the requests it advanced, by the tokens it computed for
each (uncached prompt on the first step, then one per generated token): a request's
``engine_seconds`` are its own, whatever else ran beside it.
"""

from __future__ import annotations

import itertools
import threading
import time

from testtime.generators.base import ABORTED, EngineDied, merge_logprob
from testtime.generators.streams import Stream


class EngineLoop:
    """Owns a ``vllm`` ``LLMEngine``: adds what is submitted, steps while anything runs, applies aborts."""

    def __init__(self, engine, tokenizer=None):
        self.engine, self.tokenizer = engine, tokenizer
        self.steps = 0  # engine steps taken: the engine's own counter
        self.busy_seconds = 0.0  # wall time inside engine steps: the rest of a run the engine waited for work
        self.stepped_sequences = 0  # sequences advanced, summed over steps: over ``steps``, the mean batch
        self.prefilled_tokens = 0  # prompt tokens computed, not served from the prefix cache, over every sample
        self.added_samples = 0  # samples (engine requests) added
        self._lock = threading.Condition()
        self._added: list[tuple[Stream, list]] = []
        self._aborts: list[str] = []
        self._live: dict[str, tuple[Stream, int]] = {}  # engine request id -> (stream, sample index)
        self._ids = itertools.count()
        self._closed = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="testtime-engine-loop", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.error is None

    @property
    def running(self) -> int:
        """Sequences in the engine now (or about to be added)."""
        with self._lock:
            return len(self._live) + sum(len(s.samples) for s, _ in self._added)

    def submit(self, items: list[tuple]) -> list[Stream]:
        """Queue requests, all to be added before the same step: one ``(request, engine prompt, one vLLM
        SamplingParams per sample, prompt tokens, on_update)`` each."""
        streams = [Stream(self, request, prompt_tokens, on_update)
                   for request, _, _, prompt_tokens, on_update in items]
        with self._lock:
            if self.error is not None or self._closed:
                raise RuntimeError("the engine loop has stopped") from self.error
            for stream, (_, prompt, params, _, _) in zip(streams, items):
                stream._ids = [f"tt-{next(self._ids)}" for _ in params]
                self._added.append((stream, [prompt, params]))
            self._lock.notify()
        return streams

    def abort(self, request_ids: list[str]) -> None:
        if request_ids:
            with self._lock:
                self._aborts.extend(request_ids)
                self._lock.notify()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout=30)

    def fail(self, error: BaseException) -> None:
        """Every waiting request fails with ``error`` (the first one given), and none is taken after."""
        with self._lock:
            if self.error is None:
                self.error = error
            streams = {s for s, _ in list(self._live.values())} | {s for s, _ in self._added}
        for stream in streams:
            if not stream.done:
                stream._fail(self.error)

    def _run(self) -> None:
        try:
            while self._next():
                self._step()
        except BaseException as exc:  # the engine died: every waiting request learns why, as EngineDied
            if not isinstance(exc, EngineDied):
                died, exc = exc, EngineDied(f"the engine loop stopped: {exc!r}")
                exc.__cause__ = died
            self.fail(exc)

    def _next(self) -> bool:
        """Wait for work; add what was submitted and apply aborts. False once closed."""
        with self._lock:
            while not (self._added or self._aborts or self._live or self._closed):
                self._lock.wait()
            if self._closed:
                return False
            added, self._added = self._added, []
            aborts, self._aborts = self._aborts, []
        for stream, (prompt, params) in added:
            for index, (request_id, p) in enumerate(zip(stream._ids, params)):
                self._live[request_id] = (stream, index)
                self.added_samples += 1
                self.engine.add_request(request_id, prompt, p)
        live = [request_id for request_id in aborts if request_id in self._live]
        if live:
            self.engine.abort_request(live)
            for request_id in live:
                stream, index = self._live.pop(request_id)
                stream._finish_sample(index, ABORTED)
        return True

    def _step(self) -> None:
        if not self._live:
            return
        start = time.perf_counter()
        outputs = self.engine.step()
        elapsed = time.perf_counter() - start
        self.steps += 1
        self.busy_seconds += elapsed
        self.stepped_sequences += len(outputs)
        work = []
        for out in outputs:
            if (entry := self._live.get(out.request_id)) is None:
                continue  # aborted after the step began
            tokens = sum(len(c.token_ids) for c in out.outputs)
            if not entry[0].samples[entry[1]].started:  # its first output: the prefill, with the cache hits
                entry[0].samples[entry[1]].started = True
                cached = int(out.num_cached_tokens or 0)
                uncached = len(out.prompt_token_ids or ()) - cached
                tokens += uncached
                self.prefilled_tokens += uncached
                if entry[1] == 0:
                    entry[0].cached_prompt_tokens = cached
            work.append((entry, out, max(tokens, 1)))
        total = sum(w for _, _, w in work) or 1
        for (stream, index), out, weight in work:
            stream.engine_seconds += elapsed * weight / total
            self._take(stream, index, out)

    def _take(self, stream: Stream, index: int, out) -> None:
        sample = stream.samples[index]
        reason = "stop"
        for c in out.outputs:  # one: every request is a single sample
            sample.parts.append(c.text)
            sample.token_count += len(c.token_ids)
            sample.cumulative_logprob = c.cumulative_logprob
            if sample.tops is not None and c.logprobs:
                sample.tops.extend(top_logprobs_of(c.logprobs, stream.request.params.logprobs, self.tokenizer))
            if c.finish_reason is not None:
                sample.stop_reason = c.stop_reason if isinstance(c.stop_reason, str) else None
                reason = "length" if c.finish_reason == "length" else "stop"
        finished = out.finished
        if finished:  # seen by the watcher below before any waiter wakes
            self._live.pop(out.request_id, None)
            sample.finish_reason = reason
        stream._notify(index)
        if finished:
            stream._finish_sample(index, reason)


def top_logprobs_of(positions, k: int, tokenizer=None) -> list[dict[str, float]]:
    """vLLM's per-position ``{token_id: Logprob}`` as ``{decoded text: logprob}``, the top ``k`` only.

    vLLM also reports the sampled token where it falls outside the top k (``k + 1`` entries);
    it is dropped here so that every backend gives the same thing, the k most likely tokens.
    """
    out = []
    for position in positions:
        top: dict[str, float] = {}
        for token_id, lp in (position or {}).items():
            if lp.rank is not None and lp.rank > k:
                continue
            text = lp.decoded_token
            if text is None:
                text = tokenizer.decode([token_id]) if tokenizer is not None else str(token_id)
            merge_logprob(top, text, lp.logprob)
        out.append(top)
    return out
