"""The FastAPI application: OpenAI-compatible endpoints in front of a generator.

A client picks the strategy per request, by model name (``smollm2+beam_search``)
or by a ``testtime`` object in the body; the server's config supplies defaults
and caps. Every answer's ``usage`` is the request's ledger: every token it cost
upstream, verifier tokens included.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import queue
import signal
import time
from pathlib import Path
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from testtime.generators.base import Generator, Prompt, SamplingParams
from testtime.params import ParameterError, parameters
from testtime.selection import Candidate
from testtime.server import protocol
from testtime.server.config import ServerConfig
from testtime.report.figures import finite
from testtime.server.scheduler import Draining, Job, Scheduler
from testtime.server.ui import ui_page, ui_state
from testtime.specs import make_verifier
from testtime.strategies import Strategy
from testtime.strategies.base import QuestionResult
from testtime.tasks import Task
from testtime.verifiers import Verifier
from testtime.verifiers.assertions import AssertionsVerifier, TestsError


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.kind, self.code, self.param, self.headers = status, kind, code, param, headers


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("testtime_requests", "Requests by endpoint and status", ["endpoint", "status"],
                                registry=self.registry)
        self.tokens = Counter("testtime_tokens", "Tokens spent upstream, by kind", ["kind"], registry=self.registry)
        self.latency = Histogram("testtime_request_seconds", "Request latency", ["endpoint"], registry=self.registry,
                                 buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600))
        self.queue_depth = Gauge("testtime_queue_depth", "Requests waiting for the engine", registry=self.registry)

    def charge(self, ledger) -> None:
        for kind in ("prompt_tokens", "cached_prompt_tokens", "completion_tokens", "verifier_tokens"):
            self.tokens.labels(kind).inc(getattr(ledger, kind))


def create_app(config: ServerConfig, generator: Generator) -> FastAPI:
    # The model's own name (an embedded model's folder is named after it): what clients call it by default,
    # and the policy whose shipped PRM/ORM a request's `prm` / `orm` loads.
    policy = Path(generator.model).name
    if config.served_model is None:
        config = dataclasses.replace(config, served_model=policy)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        scheduler.close()

    app = FastAPI(title="testtime", docs_url=None, redoc_url=None, lifespan=lifespan)
    verifiers: dict[str | None, Verifier | None] = {None: None}

    def verifier_named(name: str | None) -> Verifier | None:
        """Built (and its artifact loaded) once per name; one that needs a model or URL is a 400."""
        if name not in verifiers:
            if name not in Verifier.registry:
                raise ApiError(400, f"unknown verifier {name!r}; known: {', '.join(sorted(Verifier.registry))}",
                               param="testtime.verifier")
            try:
                verifiers[name] = make_verifier(name, policy=policy)
            except (ValueError, OSError) as exc:
                raise ApiError(400, f"{exc}; this server cannot build it for a request", param="testtime.verifier")
        return verifiers[name]

    servable = servable_strategies(config)  # the config is fixed for the app's life
    scheduler = Scheduler(generator, config.max_queue, config.batch_window_seconds, config.max_running)
    metrics = Metrics()
    app.state.scheduler, app.state.metrics, app.state.config = scheduler, metrics, config

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        metrics.requests.labels(request.url.path, str(exc.status)).inc()
        return JSONResponse(protocol.error_body(str(exc), exc.kind, exc.code, exc.param), exc.status,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        metrics.requests.labels(request.url.path, "400").inc()
        return JSONResponse(protocol.error_body(f"{where or 'the request body'}: {first['msg']}",
                                                "invalid_request_error", param=where or None), 400)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):  # never a stack trace to the client
        metrics.requests.labels(request.url.path, "500").inc()
        return JSONResponse(protocol.error_body("internal server error", "server_error"), 500)

    @app.middleware("http")
    async def _guard(request: Request, call_next):
        path = request.url.path
        # /health stays open (a load balancer's probe); /metrics needs a key unless the config opens it.
        # /ui (the page) holds no data; its state at /ui/state is keyed as /v1 is.
        keyed = path.startswith(("/v1/", "/ui/")) or (path == "/metrics" and not config.metrics_public)
        if keyed and config.api_keys:
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in config.api_keys:
                metrics.requests.labels(path, "401").inc()
                return JSONResponse(protocol.error_body("invalid or missing API key", "authentication_error",
                                                        "invalid_api_key"), 401)
        if path.startswith("/v1/"):
            length = request.headers.get("content-length", "0")
            if not length.isdigit() or int(length) > config.max_body_bytes:
                metrics.requests.labels(request.url.path, "413").inc()
                return JSONResponse(protocol.error_body(
                    f"request body is {length} bytes; the limit is {config.max_body_bytes}",
                    "invalid_request_error", "request_too_large"), 413)
        return await call_next(request)

    @app.get("/health")
    async def health():
        """Ready only while the worker runs and the engine is up (a load balancer stops sending otherwise)."""
        if not scheduler.alive:
            return JSONResponse({"status": "unavailable", "reason": "the worker is stopped or draining"}, 503)
        if not generator.healthy():
            return JSONResponse({"status": "unavailable", "reason": "the engine is gone"}, 503)
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics_endpoint():
        metrics.queue_depth.set(scheduler.depth)
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/ui", response_class=HTMLResponse)
    async def ui():
        return ui_page(config.served_model)

    @app.get("/ui/state")
    def ui_state_endpoint():  # a plain def: FastAPI runs it on a thread, off the event loop
        return JSONResponse(finite(ui_state(list(scheduler.seen), time.time())))

    @app.get("/v1/models")
    async def models():
        names = [config.served_model] + [f"{config.served_model}+{s}" for s in servable]
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "testtime"}
                                           for n in names]}

    @app.post("/v1/chat/completions")
    async def chat(body: protocol.ChatCompletionRequest, request: Request):
        messages = [(m.role if m.role != "developer" else "system", m.content) for m in body.messages]
        max_tokens = body.max_completion_tokens or body.max_tokens
        job = _job(config, servable, body, messages, max_tokens, verifier_named, generator)
        return await _answer(request, job, body, chat=True)

    @app.post("/v1/completions")
    async def completions(body: protocol.CompletionRequest, request: Request):
        job = _job(config, servable, body, [("user", body.prompt)], body.max_tokens, verifier_named, generator)
        return await _answer(request, job, body, chat=False)

    async def _answer(request: Request, job: Job, body, chat: bool):
        started = time.perf_counter()
        try:
            scheduler.submit(job)
        except queue.Full:
            raise ApiError(429, "the server's queue is full; retry later", "rate_limit_error", "queue_full",
                           headers={"Retry-After": "1"})
        except Draining:
            raise ApiError(503, "the server is shutting down", "server_error", "shutting_down")
        request_id = protocol.new_id("chatcmpl" if chat else "cmpl")
        if body.stream and chat:
            return StreamingResponse(_stream(request, job, body, request_id, started), media_type="text/event-stream")
        if body.stream:
            raise ApiError(400, "streaming is supported on /v1/chat/completions only", param="stream")
        result = await _wait(request, job)
        answers = distinct_answers(result, body.n)
        metrics.charge(result.ledger)
        metrics.requests.labels(request.url.path, "200").inc()
        metrics.latency.labels(request.url.path).observe(time.perf_counter() - started)
        kind = "chat.completion" if chat else "text_completion"
        return protocol.response(kind, request_id, body.model, answers, result.ledger, _details(job, result))

    async def _wait(request: Request, job: Job) -> QuestionResult:
        try:
            return await _poll(request, job)
        finally:  # this handler was cancelled before the answer: stop the work
            if not job.future.done():
                job.cancelled.set()

    async def _poll(request: Request, job: Job) -> QuestionResult:
        waiting = asyncio.wrap_future(job.future)
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=0.25)
            if done:
                try:
                    return waiting.result()
                except asyncio.CancelledError:
                    raise ApiError(499, "the client went away", code="client_closed")
            if await request.is_disconnected():
                job.cancelled.set()

    async def _stream(request: Request, job: Job, body, request_id: str, started: float) -> AsyncIterator[str]:
        try:
            async for event in _events(request, job, body, request_id, started):
                yield event
        finally:  # the client left before the answer (the server cancels this generator): stop the work
            if not job.future.done():
                job.cancelled.set()

    async def _events(request: Request, job: Job, body, request_id: str, started: float) -> AsyncIterator[str]:
        def sse(chunk: dict) -> str:
            return f"data: {json.dumps(chunk)}\n\n"

        yield sse(protocol.chat_chunk(request_id, body.model, {"role": "assistant", "content": ""}))
        waiting = asyncio.wrap_future(job.future)
        streamed = ""  # the answer's text sent as it was written (a strategy whose answer is its one sample)
        while not waiting.done():
            await asyncio.wait({waiting}, timeout=0.05)
            for message in _drained(job.progress):
                yield sse(protocol.chat_chunk(request_id, body.model, {"reasoning_content": message + "\n"}))
            if text := "".join(_drained(job.written)):
                streamed += text
                yield sse(protocol.chat_chunk(request_id, body.model, {"content": text}))
            if await request.is_disconnected():
                return
        try:
            result = waiting.result()
        except Exception:
            yield sse(protocol.error_body("internal server error", "server_error"))
            return
        streamed += "".join(_drained(job.written))
        for index, answer in enumerate(distinct_answers(result, body.n)):
            if streamed and index == 0 and answer.text.startswith(streamed):  # only what is still to come
                message = {"content": answer.text[len(streamed):]}
            else:
                message = protocol.message(answer.text)
            if "reasoning_content" in message:
                yield sse(protocol.chat_chunk(request_id, body.model, {"reasoning_content": message["reasoning_content"]},
                                              index))
            yield sse(protocol.chat_chunk(request_id, body.model, {"content": message["content"]}, index))
            yield sse(protocol.chat_chunk(request_id, body.model, {}, index, finish_reason=answer.finish_reason))
        if (body.stream_options or {}).get("include_usage"):
            yield sse({**protocol.chat_chunk(request_id, body.model, {}), "choices": [],
                       "usage": protocol.usage(result.ledger)})
        metrics.charge(result.ledger)
        metrics.requests.labels(request.url.path, "200").inc()
        metrics.latency.labels(request.url.path).observe(time.perf_counter() - started)
        yield "data: [DONE]\n\n"

    return app


def _drained(waiting: queue.SimpleQueue) -> list[str]:
    out = []
    while True:
        try:
            out.append(waiting.get_nowait())
        except queue.Empty:
            return out


def servable_strategies(config: ServerConfig) -> list[str]:
    """Strategies a client may name: not internal ones, nor those naming a file the config offers none of."""
    return sorted(name for name, cls in Strategy.registry.items()
                  if not cls.internal and all(getattr(config, p.names_file) for p in parameters(cls) if p.names_file))


def _server_files(cls: type, given: dict, config: ServerConfig) -> dict[str, tuple[str, str]]:
    """A client names a configured file by its name; the server puts in the path. Any other value is a 400.

    {parameter: (name, path)} for each file parameter of the strategy."""
    resolved = {}
    for p in parameters(cls):
        if not p.names_file:
            continue
        table = getattr(config, p.names_file)
        name = given.get(p.name, next(iter(table)) if len(table) == 1 else None)
        if name is None:
            raise ApiError(400, f"strategy {cls.name!r} needs params.{p.name}: the name of one of this server's "
                                f"{p.names_file} ({', '.join(sorted(table))})", param=f"testtime.params.{p.name}")
        if name not in table:
            raise ApiError(400, f"{p.name} {name!r} is not one this server serves; name one of: "
                                f"{', '.join(sorted(table))}", param=f"testtime.params.{p.name}")
        resolved[p.name] = (name, table[name])
    return resolved


def _job(config: ServerConfig, servable: list[str], body, messages: list[tuple[str, str]], max_tokens: int | None,
         verifier_named, generator: Generator) -> Job:
    """The request as a job, every part of it built and checked here, before it is queued."""
    base, _, named = body.model.partition("+")
    if base != config.served_model:
        raise ApiError(404, f"model {body.model!r} does not exist; this server serves {config.served_model!r} "
                            f"(optionally {config.served_model}+STRATEGY)", code="model_not_found", param="model")
    options = body.testtime or protocol.TesttimeOptions()
    thinking = _thinking_budget(config, body, options.strategy or named or None)
    if thinking is not None:
        options = options.model_copy(update={"strategy": THINKING_STRATEGY,
                                             "params": {**options.params, "max_thinking_tokens": thinking}})
    tests = _request_tests(config, options)
    name = options.strategy or named or (TESTS_STRATEGY if tests else config.strategy)
    if name not in servable:
        raise ApiError(400, f"unknown strategy {name!r}; this server serves: {', '.join(servable)}",
                       param="testtime.strategy" if options.strategy else "model")
    cls = Strategy.registry[name]
    if "budget" in options.params:  # else it would slip past the budget cap below
        raise ApiError(400, "budget goes in testtime.budget, not testtime.params", param="testtime.params.budget")
    budget = options.budget or cls.fixed_budget or config.budget
    for what, asked, cap in (("budget", budget, config.max_budget), ("n", body.n, config.max_n),
                             ("max_tokens", max_tokens or 0, config.max_max_tokens)):
        if asked > cap:
            raise ApiError(400, f"{what} {asked} is over this server's cap of {cap}", param=what)
    if budget < body.n:
        raise ApiError(400, f"n ({body.n}) distinct answers need a budget of at least n (budget is {budget})", param="n")
    for p in parameters(cls):
        if p.opens_model and options.params.get(p.name):
            raise ApiError(400, f"params.{p.name} opens a model of its own; this server opens none per request "
                                f"(serve {cls.name} with `testtime run` or the Python API)",
                           param=f"testtime.params.{p.name}")
    files = _server_files(cls, options.params, config)
    try:
        strategy = Strategy.create(name, **{"budget": budget, **options.params,
                                            **{k: path for k, (_, path) in files.items()}})
    except ParameterError as exc:
        raise ApiError(400, str(exc), param="testtime.params")
    if tests:
        verifier_name = "tests:" + hashlib.sha256(json.dumps(tests.tests).encode()).hexdigest()[:16]
        verifier = tests
    else:
        verifier_name = options.verifier if options.verifier is not None else config.verifier
        verifier = verifier_named(verifier_name)
    try:
        strategy.check(verifier)  # a verifier it needs; the files it reads
    except ValueError as exc:
        raise ApiError(400, str(exc), param="testtime")
    prompt = Prompt(messages=tuple(messages))
    used, limit = generator.count_prompt_tokens(prompt), generator.max_model_len
    if used is not None and limit and used >= limit:
        raise ApiError(400, f"the prompt is {used} tokens; the model's context is {limit}", param="messages",
                       code="context_length_exceeded")
    sampling = SamplingParams(
        temperature=body.temperature if body.temperature is not None else 0.8,
        top_p=body.top_p if body.top_p is not None else 1.0,
        max_tokens=max_tokens or config.max_tokens,
    )
    seeded = body.seed is not None
    task = Task(id="seeded" if seeded else protocol.new_id("q"), question=messages[-1][1], answer="",
                meta={"messages": messages}, domain="code" if tests else "math")
    return Job(task=task, strategy=strategy, sampling=sampling, verifier_name=verifier_name, verifier=verifier,
               seed=body.seed if seeded else 0, deadline=time.monotonic() + config.max_wall_seconds,
               shown={**strategy.describe(), **{k: file_name for k, (file_name, _) in files.items()}})


THINKING_STRATEGY = "budget_forcing"  # what a thinking budget runs
TESTS_STRATEGY = "best_of_n"  # what a request with tests runs unless it names a strategy


def _request_tests(config: ServerConfig, options: protocol.TesttimeOptions) -> AssertionsVerifier | None:
    """The request's ``testtime.tests`` as its verifier, checked against the caps, or None."""
    if options.tests is None:
        return None
    if options.verifier is not None:
        raise ApiError(400, "testtime.tests are the request's verifier: drop testtime.verifier", param="testtime.verifier")
    try:
        return AssertionsVerifier(options.tests, config.max_tests, config.max_test_chars)
    except TestsError as exc:
        raise ApiError(400, str(exc), param="testtime.tests")


def _thinking_budget(config: ServerConfig, body, named: str | None) -> int | None:
    """The request's thinking budget in tokens (``reasoning_effort`` or ``max_thinking_tokens``), or None."""
    effort, tokens = getattr(body, "reasoning_effort", None), getattr(body, "max_thinking_tokens", None)
    if effort is None and tokens is None:
        return None
    if effort is not None and tokens is not None:
        raise ApiError(400, "give reasoning_effort or max_thinking_tokens, not both", param="reasoning_effort")
    param = "reasoning_effort" if effort is not None else "max_thinking_tokens"
    if named not in (None, THINKING_STRATEGY):
        raise ApiError(400, f"{param} sets the thinking budget of strategy {THINKING_STRATEGY!r}; "
                            f"strategy {named!r} has none", param=param)
    if body.testtime and "max_thinking_tokens" in body.testtime.params:
        raise ApiError(400, f"{param} and testtime.params.max_thinking_tokens both set the thinking budget; "
                            "give one", param=param)
    budget = config.thinking_budgets[effort] if effort is not None else tokens
    if budget > config.max_max_tokens:
        asked = f"reasoning_effort {effort!r} ({budget} thinking tokens)" if effort else f"max_thinking_tokens {budget}"
        raise ApiError(400, f"{asked} is over this server's cap of {config.max_max_tokens}", param=param)
    return budget


def distinct_answers(result: QuestionResult, n: int) -> list[Candidate]:
    """The chosen solution, then the best-scored solutions with other answers, n in all (fewer if none remain)."""
    chosen: list[Candidate] = [result.chosen] if result.chosen else []
    keys = {c.key for c in chosen}
    ranked = sorted(result.candidates, key=lambda c: c.score if c.score is not None else 0.0, reverse=True)
    for candidate in ranked:
        if len(chosen) >= n:
            break
        if candidate.key not in keys:
            chosen.append(candidate)
            keys.add(candidate.key)
    return chosen or [Candidate(text="", answer=None, key=None)]


def _details(job: Job, result: QuestionResult) -> dict:
    tested = isinstance(job.verifier, AssertionsVerifier) and result.chosen is not None
    return {"strategy": job.shown, "answer": result.prediction,
            "candidates": len(result.candidates), "rounds": result.details.get("rounds"),
            **({"tests_passed": result.chosen.score} if tested else {})}


def run_server(app: FastAPI, host: str, port: int, *, grace_seconds: float = 20) -> None:
    """Serve until SIGTERM or SIGINT, then drain: no new work (503), every running job stops at its
    next round and answers with what it has, and open connections are closed within ``grace_seconds``."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            # As uvicorn's own, a second Ctrl-C forcing the exit, but without re-raising the signal
            # afterwards: that would end the process before the caller shuts its engine down.
            app.state.scheduler.drain()
            self.force_exit = self.should_exit and sig == signal.SIGINT
            self.should_exit = True

    Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                          timeout_graceful_shutdown=grace_seconds)).run()
