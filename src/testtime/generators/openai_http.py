"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, Ollama) over HTTP.

Requests run concurrently up to ``concurrency``, each with a timeout and
retried under a ``RetryPolicy`` (exponential backoff with jitter) on connection
errors, timeouts, 408/409/429, 5xx and malformed responses; a server that stays
down raises ``UpstreamError`` after a bounded time. A server that ignores ``n``
gets follow-up requests until every request has its n completions.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from testtime.generators.base import (
    Completion,
    GenerationRequest,
    GenerationResult,
    Generator,
    PromptTooLongError,
    merge_logprob,
)
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

    def _call(self, index: int, request: GenerationRequest, n: int):
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
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                n=n,
                temperature=p.temperature,
                top_p=p.top_p,
                max_tokens=p.max_tokens,
                stop=list(p.stop) or None,
                seed=p.seed,
                extra_body=extra or None,
                **logprob_args,
            )
        except openai.BadRequestError as exc:
            if "context" in str(exc).lower() or "too long" in str(exc).lower():
                raise PromptTooLongError(f"request {index}: {exc}") from exc
            raise
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
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


def _retriable(exc: BaseException) -> bool:
    """Faults worth another try: the network, overload, server errors, broken bodies."""
    import openai

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
