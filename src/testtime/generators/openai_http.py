"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, Ollama) over HTTP.

Streamed (the default, ``stream=True``): every sample is its own streamed request (seeded
``seed + index``, as vLLM seeds the samples of one request with ``n``), so that many callers' samples
join the server's running batch as they are issued and one sample can be stopped alone: its
connection is closed and the server aborts it. ``stream=False``: one request per
``GenerationRequest`` with ``n``; a server that ignores ``n`` gets follow-up requests until every
request has its n completions.

Every request is a task on the backend's own event loop (one thread, the async ``openai`` client), up
to ``concurrency`` at once (streamed: samples), so hundreds of samples are in flight without a thread
each, and stopping one cancels its task at once: its connection closes even while the server has sent
nothing yet (a long prefill, a queue). Each request has a timeout and is retried under a
``RetryPolicy`` (exponential backoff with jitter) on connection errors, timeouts, 408/409/429, 5xx and
malformed responses (a stream that breaks off is drawn again from its start); a server that stays
down raises ``UpstreamError`` after a bounded time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from typing import Sequence

from testtime.generators.base import (
    ABORTED,
    Completion,
    GenerationRequest,
    GenerationResult,
    Generator,
    PromptTooLongError,
    merge_logprob,
)
from testtime.generators.streams import Stream
from testtime.retry import RetryPolicy, call_with_retries_async


class MalformedResponse(ValueError):
    """The server answered 200 with a body that is not a usable completion."""


class OpenAIGenerator(Generator):
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "EMPTY",
        concurrency: int = 256,
        retry: RetryPolicy = RetryPolicy(),
        parameter_count: int = 0,
        vllm_extensions: bool = True,
        stream: bool = True,
    ):
        import openai

        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        # Retries are ours (RetryPolicy), so that malformed bodies are retried too and time stays bounded.
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=retry.timeout, max_retries=0)
        self.base_url = base_url
        self.retry = retry
        self.model = model
        self.concurrency = concurrency
        self.parameter_count = parameter_count
        # vLLM and SGLang accept extra fields to keep stop strings and to continue an assistant turn.
        self.vllm_extensions = vllm_extensions
        self.streams = stream
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="testtime-http", daemon=True)
        self._thread.start()
        self._slots = asyncio.Semaphore(concurrency)  # bound to the loop at first use, on its thread
        self._samples = _InFlight(self._loop)
        self._ids = itertools.count()

    def submit_all(self, requests: Sequence[GenerationRequest], on_updates=None) -> list[Stream]:
        """Every sample its own streamed request, started now (up to ``concurrency`` at a time). The
        server alone knows a prompt's length: one too long fails its stream (``result`` raises)."""
        on_updates = on_updates or [None] * len(requests)
        streams = []
        for request, on_update in zip(requests, on_updates):
            stream = Stream(self._samples, request, 0, on_update)
            stream.engine_seconds = None  # the server's time is not reported: the call's is shared by tokens
            stream._ids = [f"http-{next(self._ids)}" for _ in range(request.n)]
            self._samples.add(stream._ids)
            streams.append(stream)
        starts = [(stream._ids[index], self._stream_sample(i, stream, index), self._settler(stream, index))
                  for i, stream in enumerate(streams) for index in range(stream.request.n)]
        self._loop.call_soon_threadsafe(self._samples.start, starts)
        return streams

    async def _stream_sample(self, i: int, stream: Stream, index: int) -> None:
        async def attempt():  # a slot a try: a sample waiting to retry leaves its slot to others
            async with self._slots:
                if not self._samples.stopping(stream._ids[index]):
                    await self._read_stream(i, stream, index)

        await call_with_retries_async(attempt, self.retry, retriable=_retriable,
                                      what=f"request {i} (sample {index}) to {self.base_url}")

    @staticmethod
    def _settler(stream: Stream, index: int):
        """What ends sample ``index`` once its task is done: a fault fails its request (the other requests
        go on); an end or a cancellation (an abort) finishes the sample with what it wrote."""
        def settle(task: asyncio.Task) -> None:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                stream.abort()
                stream._fail(error)
            else:
                stream._finish_sample(index, ABORTED)  # the reason its stream gave, where it gave one
        return settle

    async def _read_stream(self, i: int, stream: Stream, index: int) -> None:
        """One try: the sample drawn from its start (a watcher sees a retried sample begin again), stopped
        at the token after an abort (its task is cancelled too, for a server that sends nothing yet)."""
        sample, sample_id = stream.samples[index], stream._ids[index]
        sample.parts, sample.token_count, sample.finish_reason = [], 0, None
        if sample.tops is not None:
            sample.tops = []
        seed = stream.request.params.seed
        response = await self._call(i, stream.request, 1, seed=None if seed is None else seed + index, stream=True)
        try:
            async for chunk in response:
                if self._samples.stopping(sample_id):  # chunks already read arrive without a pause to cancel in
                    return
                self._take_chunk(stream, index, chunk)
        finally:
            await response.close()  # before the end: the server sees the connection go and aborts the sample
        if sample.finish_reason is None and not self._samples.stopping(sample_id):
            raise MalformedResponse(f"request {i}: the stream ended before its sample did")

    def _take_chunk(self, stream: Stream, index: int, chunk) -> None:
        sample, usage, choices = stream.samples[index], getattr(chunk, "usage", None), getattr(chunk, "choices", None)
        if choices is not None and not isinstance(choices, list):  # retried, as a broken body is
            raise MalformedResponse(f"a chunk's choices are {type(choices).__name__}, not a list")
        counted = usage is not None and self.vllm_extensions  # vLLM counts every chunk (continuous usage)
        if usage is not None and usage.prompt_tokens:  # the prompt is charged once a request: its first sample's
            if stream.prompt_from is None:
                stream.prompt_tokens, stream.prompt_from = usage.prompt_tokens, index
            details = getattr(usage, "prompt_tokens_details", None)  # vLLM: in the closing usage chunk
            if stream.prompt_from == index and details is not None:
                stream.cached_prompt_tokens = int(getattr(details, "cached_tokens", 0) or 0)
        ended = False
        for choice in choices or ():
            text = getattr(choice.delta, "content", None) or ""
            tops = top_logprobs(choice) if sample.tops is not None else None
            if text:
                sample.parts.append(text)
            if tops:
                sample.tops.extend(tops)
            if not counted:  # the tokens this chunk carries: its log-probabilities, else one per text piece
                sample.token_count += len(tops) if tops else int(bool(text))
            if choice.finish_reason is not None:
                sample.stop_reason = _stop_string(choice)
                ended = True
                reason = "length" if choice.finish_reason == "length" else "stop"
        if usage is not None and (counted or not choices):  # the closing usage chunk is exact
            sample.token_count = usage.completion_tokens or sample.token_count
        if ended:  # the sample ends when its stream does (after the closing usage chunk), in _stream_sample
            sample.finish_reason = reason
        if choices:
            stream._notify(index)

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return asyncio.run_coroutine_threadsafe(self._all(requests), self._loop).result()

    async def _all(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        tasks = [asyncio.ensure_future(self._one(i, r)) for i, r in enumerate(requests)]
        try:
            return await asyncio.gather(*tasks)
        finally:  # one failed: the others stop costing the server
            for task in tasks:
                task.cancel()

    async def _one(self, index: int, request: GenerationRequest) -> GenerationResult:
        completions: list[Completion] = []
        prompt_tokens = cached = 0
        while len(completions) < request.n:
            want = request.n - len(completions)

            async def call():
                async with self._slots:
                    return await self._call(index, request, want)

            batch, usage = await call_with_retries_async(call, self.retry, retriable=_retriable,
                                                         what=f"request {index} to {self.base_url}")
            completions.extend(batch[:want])
            # The prompt is paid for once per HTTP request.
            prompt_tokens += getattr(usage, "prompt_tokens", 0) or 0
            details = getattr(usage, "prompt_tokens_details", None)
            cached += int(getattr(details, "cached_tokens", 0) or 0)
        return GenerationResult(tuple(completions), prompt_tokens, cached)

    async def _call(self, index: int, request: GenerationRequest, n: int, seed: int | None = None, stream: bool = False):
        import openai

        p = request.params
        messages = request.prompt.as_openai_messages()
        extra: dict = {}
        if self.vllm_extensions:
            extra["include_stop_str_in_output"] = True
        if request.prompt.continuation:
            if not self.vllm_extensions:
                raise NotImplementedError("continuing a partial answer needs a vLLM or SGLang server")
            messages.append({"role": "assistant", "content": request.prompt.continuation})
            extra.update(continue_final_message=True, add_generation_prompt=False)
        # Asked for only where wanted, so that requests without them are exactly as before.
        logprob_args = {} if p.logprobs is None else {"logprobs": True, "top_logprobs": p.logprobs}
        if stream:  # usage in the closing chunk (and, on vLLM, in every chunk: an aborted sample's count)
            logprob_args.update(stream=True, stream_options={
                "include_usage": True, **({"continuous_usage_stats": True} if self.vllm_extensions else {})})
        try:
            response = await self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                n=n,
                temperature=p.temperature,
                top_p=p.top_p,
                max_tokens=p.max_tokens,
                stop=list(p.stop) or None,
                seed=seed if stream else p.seed,
                extra_body=extra or None,
                **logprob_args,
            )
        except openai.BadRequestError as exc:
            if "context" in str(exc).lower() or "too long" in str(exc).lower():
                raise PromptTooLongError(f"request {index}: {exc}") from exc
            raise
        if stream:
            return response
        if not isinstance(getattr(response, "choices", None), list) or not response.choices:
            raise MalformedResponse(f"request {index}: the server returned no choices")
        usage = response.usage
        texts = [c.message.content or "" for c in response.choices]
        counts = _split_tokens(usage.completion_tokens if usage else 0, texts)
        batch = [
            Completion(text=t, token_count=k, finish_reason="length" if c.finish_reason == "length" else "stop",
                       stop_reason=_stop_string(c),
                       top_logprobs=top_logprobs(c) if p.logprobs is not None else None)
            for t, k, c in zip(texts, counts, response.choices)
        ]
        return batch, usage

    def close(self) -> None:
        """Stop every sample in flight, close the connections, end the event loop's thread."""
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._shut_down(), self._loop).result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=60)
        self._loop.close()

    async def _shut_down(self) -> None:
        await asyncio.gather(*self._samples.cancel_all(), return_exceptions=True)
        await self.client.close()


class _InFlight:
    """The HTTP backend's samples in flight, each a task on the backend's event loop, and those of them
    to stop: a stopped sample is read no further (from any thread, at once) and its task is cancelled."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._tasks: dict[str, asyncio.Task] = {}  # touched on the loop's thread only
        self._live: set[str] = set()
        self._stopping: set[str] = set()
        self._lock = threading.Lock()

    def add(self, sample_ids) -> None:
        with self._lock:
            self._live.update(sample_ids)

    def start(self, starts) -> None:
        """On the loop: one task per ``(sample id, coroutine, settle)``; ``settle(task)`` runs once it is done."""
        for sample_id, coroutine, settle in starts:
            task = self._loop.create_task(coroutine)
            task.add_done_callback(settle)
            task.add_done_callback(lambda _, sample_id=sample_id: self._forget(sample_id))
            self._tasks[sample_id] = task

    def abort(self, sample_ids) -> None:
        with self._lock:
            wanted = set(sample_ids) & self._live
            self._stopping |= wanted
        if wanted and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._cancel, wanted)

    def _cancel(self, sample_ids) -> None:
        for sample_id in sample_ids:
            if sample_id in self._tasks:
                self._tasks[sample_id].cancel()

    def cancel_all(self) -> list[asyncio.Task]:
        """On the loop: cancel every task; those cancelled, to wait for."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        return tasks

    def _forget(self, sample_id: str) -> None:
        self._tasks.pop(sample_id, None)
        with self._lock:
            self._live.discard(sample_id)
            self._stopping.discard(sample_id)

    def stopping(self, sample_id: str) -> bool:
        return sample_id in self._stopping


def _retriable(exc: BaseException) -> bool:
    """Faults worth another try: the network, overload, server errors, broken bodies."""
    import openai

    # The client raises APIConnectionError for a stream broken off mid-way too.
    if isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError,
                        json.JSONDecodeError, MalformedResponse)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


def _stop_string(choice) -> str | None:
    """vLLM and SGLang name the stop string that ended a choice; plain OpenAI servers do not."""
    reason = getattr(choice, "stop_reason", None) or (getattr(choice, "model_extra", None) or {}).get("stop_reason")
    return reason if isinstance(reason, str) else None


def top_logprobs(choice) -> tuple[dict[str, float], ...] | None:
    """A chat choice's ``logprobs.content[i].top_logprobs`` as one ``{token text: logprob}`` per token.

    Alternatives whose texts coincide are merged by adding their probabilities. None where the
    server sent no log-probabilities (it ignored the request for them).
    """
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if content is None:
        return None
    out = []
    for position in content:
        top: dict[str, float] = {}
        for alt in position.top_logprobs or ():
            merge_logprob(top, alt.token, alt.logprob)
        out.append(top)
    return tuple(out)


def _split_tokens(total: int, texts: list[str]) -> list[int]:
    """Share a response's completion tokens among its choices by text length.

    The API reports one total per response; the sum stays exact.
    """
    if not texts:
        return []
    weights = [len(t) or 1 for t in texts]
    whole = sum(weights)
    counts = [total * w // whole for w in weights]
    counts[-1] += total - sum(counts)
    return counts
