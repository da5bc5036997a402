"""Serve any in-process testtime verifier over HTTP, in testtime's "scorer" protocol.

Host a process reward model on the machine that has the accelerator, and score
from anywhere with ``ServedVerifier(url, protocol="scorer")``::

    import uvicorn
    from testtime.verifiers.arithmetic import ArithmeticVerifier
    from testtime.verifiers.scorer_server import scorer_app

    uvicorn.run(scorer_app(ArithmeticVerifier()), host="0.0.0.0", port=8100)

Endpoints: ``POST /score`` (the protocol is described in
``testtime.verifiers.served``) and ``GET /health``. A bad request is answered
422 with a message naming the field; a verifier that fails or answers out of
range is answered 500. Calls into the verifier are serialized, since a model
on one accelerator is rarely safe to call from many threads at once.
"""

from __future__ import annotations

import math
import threading

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from testtime.verifiers.base import Solution, Verifier

__all__ = ["ScoreRequest", "scorer_app"]

_JOIN = "\n\n"  # how a solution's text is rebuilt from its steps, for verifiers that read the whole text


class ScoredSolution(BaseModel):
    question: str
    steps: list[str]


class ScoreRequest(BaseModel):
    model: str | None = None
    solutions: list[ScoredSolution] = Field(min_length=1)


class _GivenSteps(Solution):
    """A solution whose steps arrived already split: the verifier sees exactly those steps."""

    def __init__(self, question: str, steps: list[str]):
        super().__init__(question, _JOIN.join(steps), _JOIN)
        object.__setattr__(self, "_given", list(steps))

    @property
    def steps(self) -> list[str]:
        return list(self._given)


def _error(status: int, message: str, param: str | None = None, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param}}, status)


def scorer_app(verifier: Verifier, *, api_key: str | None = None, max_solutions: int = 4096) -> FastAPI:
    """A FastAPI app scoring with ``verifier`` at POST /score; with ``api_key``, requests need that bearer token."""
    app = FastAPI(title=f"testtime scorer ({verifier.name or type(verifier).__name__})", docs_url=None,
                  redoc_url=None)
    lock = threading.Lock()
    app.state.verifier = verifier

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, f"{where}: {first['msg']}" if where else first["msg"], where or None)

    @app.middleware("http")
    async def _auth(request: Request, call_next):
        if api_key and request.url.path != "/health":
            if request.headers.get("authorization", "") != f"Bearer {api_key}":
                return _error(401, "invalid or missing API key", kind="authentication_error")
        return await call_next(request)

    @app.get("/health")
    def health():
        return {"status": "ok", "verifier": verifier.name}

    @app.post("/score")
    def score(body: ScoreRequest):  # a plain def: FastAPI runs it in a worker thread
        if len(body.solutions) > max_solutions:
            return _error(413, f"solutions: {len(body.solutions)} in one request; the limit is {max_solutions}",
                          "solutions")
        solutions = [_GivenSteps(s.question, s.steps) for s in body.solutions]
        try:
            with lock:
                results = verifier.score_steps(solutions)
        except Exception as exc:  # the verifier's own failure: a server error, message but no trace
            return _error(500, f"the verifier failed: {type(exc).__name__}: {exc}"[:1000], kind="server_error")
        if len(results) != len(solutions):
            return _error(500, f"the verifier returned {len(results)} results for {len(solutions)} solutions",
                          kind="server_error")
        scores = []
        for i, result in enumerate(results):
            row = [float(v) for v in result.scores]
            if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in row):
                return _error(500, f"the verifier scored solution {i} outside [0, 1]: {row}", kind="server_error")
            scores.append(row)
        tokens = [int(r.tokens) for r in results]
        return {"model": verifier.name, "scores": scores, "tokens": tokens,
                "usage": {"prompt_tokens": sum(tokens), "total_tokens": sum(tokens)}}

    return app
