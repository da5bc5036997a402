"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, Ollama) over HTTP.

Streamed (the default, ``stream=True``): every sample is its own streamed request (seeded
``seed + index``, as vLLM seeds the samples of one request with ``n``), so that many callers' samples
join the server's running batch as they are issued and one sample can be stopped alone: its
connection is closed at its next token and the server aborts it. ``stream=False``: one request per
``GenerationRequest`` with ``n``; a server that ignores ``n`` gets follow-up requests until every
request has its n completions.

Requests run concurrently up to ``concurrency`` (streamed: samples), each with a timeout and
retried under a ``RetryPolicy`` (exponential backoff with jitter) on connection errors, timeouts,
408/409/429, 5xx and malformed responses (a stream that breaks off is drawn again from its start);
a server that stays down raises ``UpstreamError`` after a bounded time.
"""

from __future__ import annotations

import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor
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
from testtime.retry import RetryPolicy, call_with_retries


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
        concurrency: int = 64,
        retry: RetryPolicy = RetryPolicy(),
        parameter_count: int = 0,
        vllm_extensions: bool = True,
        stream: bool = True,
    ):
        import openai

        # Retries are ours (RetryPolicy), so that malformed bodies are retried too and time stays bounded.
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=retry.timeout, max_retries=0)
        self.base_url = base_url
        self.retry = retry
        self.model = model
        self.concurrency = concurrency
        self.parameter_count = parameter_count
        # vLLM and SGLang accept extra fields to keep stop strings and to continue an assistant turn.
        self.vllm_extensions = vllm_extensions
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="testtime-http")
        self.streams = stream
        self._samples = _Live()
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
        for i, stream in enumerate(streams):
            for index in range(stream.request.n):
                self._pool.submit(self._stream_sample, i, stream, index)
        return streams

    def _stream_sample(self, i: int, stream: Stream, index: int) -> None:
        sample_id = stream._ids[index]
        try:
            if not self._samples.stopping(sample_id):
                call_with_retries(lambda: self._read_stream(i, stream, index), self.retry, retriable=_retriable,
                                  what=f"request {i} (sample {index}) to {self.base_url}")
        except BaseException as exc:  # its request fails; the other requests go on
            self._samples.abort(stream._ids)
            stream._fail(exc)
            return
        finally:
            self._samples.forget(sample_id)
        stream._finish_sample(index, ABORTED)  # the reason its stream gave, where it gave one

    def _read_stream(self, i: int, stream: Stream, index: int) -> None:
        """One try: the sample drawn from its start (a watcher sees a retried sample begin again), stopped
        at the token after an abort."""
        sample, sample_id = stream.samples[index], stream._ids[index]
        sample.parts, sample.token_count, sample.finish_reason = [], 0, None
        if sample.tops is not None:
            sample.tops = []
        seed = stream.request.params.seed
        response = self._call(i, stream.request, 1, seed=None if seed is None else seed + index, stream=True)
        try:
            for chunk in response:
                if self._samples.stopping(sample_id):
                    return
                self._take_chunk(stream, index, chunk)
        finally:
            response.close()  # before the end: the server sees the connection go and aborts the sample
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
        futures = [self._pool.submit(self._one, i, r) for i, r in enumerate(requests)]
        return [f.result() for f in futures]

    def _one(self, index: int, request: GenerationRequest) -> GenerationResult:
        completions: list[Completion] = []
        prompt_tokens = cached = 0
        while len(completions) < request.n:
            want = request.n - len(completions)
            batch, usage = call_with_retries(
                lambda: self._call(index, request, want), self.retry, retriable=_retriable,
                what=f"request {index} to {self.base_url}",
            )
            completions.extend(batch[:want])
            # The prompt is paid for once per HTTP request.
            prompt_tokens += getattr(usage, "prompt_tokens", 0) or 0
            details = getattr(usage, "prompt_tokens_details", None)
            cached += int(getattr(details, "cached_tokens", 0) or 0)
        return GenerationResult(tuple(completions), prompt_tokens, cached)

    def _call(self, index: int, request: GenerationRequest, n: int, seed: int | None = None, stream: bool = False):
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
            response = self.client.chat.completions.create(
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
        self._samples.abort_all()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


class _Live:
    """The HTTP backend's samples in flight, and those of them to stop (each read at its next token)."""

    def __init__(self):
        self._live: set[str] = set()
        self._stopping: set[str] = set()
        self._lock = threading.Lock()

    def add(self, sample_ids) -> None:
        with self._lock:
            self._live.update(sample_ids)

    def abort(self, sample_ids) -> None:
        with self._lock:
            self._stopping.update(set(sample_ids) & self._live)

    def abort_all(self) -> None:
        with self._lock:
            self._stopping |= self._live

    def forget(self, sample_id: str) -> None:
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
