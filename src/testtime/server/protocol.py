"""The OpenAI wire format: request models, response bodies and errors."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from testtime.reasoning import TAGS

# Strict: a number given as a string, or a float where an integer belongs, is a 400, as at OpenAI.
STRICT = ConfigDict(strict=True)


class TesttimeOptions(BaseModel):
    """The `testtime` object of a request body (`extra_body` in the official client)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    strategy: str | None = None
    budget: int | None = Field(default=None, ge=1)
    verifier: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)  # the strategy's own parameters (width, c, ...)
    # assert statements: the answer is a program, chosen among the samples by the share it passes in
    # the sandbox (best_of_n unless a strategy is named); they are the request's verifier
    tests: list[str] | None = None


def _encodable(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (it holds an unpaired surrogate)") from None
    return text


class ChatMessage(BaseModel):
    model_config = STRICT
    role: Literal["system", "user", "assistant", "developer"]
    content: str

    _check_content = field_validator("content")(_encodable)


class ChatCompletionRequest(BaseModel):
    model_config = STRICT
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    n: int = Field(default=1, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    stream: bool = False
    stream_options: dict | None = None
    # How long to think: OpenAI's effort levels (the server config maps each to a thinking budget)
    # or a budget in tokens; either runs budget_forcing with that max_thinking_tokens.
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    max_thinking_tokens: int | None = Field(default=None, ge=1)
    testtime: TesttimeOptions | None = None


class CompletionRequest(BaseModel):
    model_config = STRICT
    model: str
    prompt: str

    _check_prompt = field_validator("prompt")(_encodable)
    n: int = Field(default=1, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    stream: bool = False
    testtime: TesttimeOptions | None = None


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(ledger) -> dict:
    """Everything the request cost upstream; verifier tokens count in the total."""
    return {
        "prompt_tokens": ledger.prompt_tokens,
        "completion_tokens": ledger.completion_tokens,
        "total_tokens": ledger.total_tokens,
        "prompt_tokens_details": {"cached_tokens": ledger.cached_prompt_tokens},
        "completion_tokens_details": {"reasoning_tokens": ledger.reasoning_tokens},
        "testtime": ledger.to_dict(),
    }


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def response(kind: str, request_id: str, model: str, answers: list, ledger, details: dict) -> dict:
    """A whole (non-streamed) answer: ``kind`` is "chat.completion" or "text_completion"; each answer
    is a candidate, whose own finish reason ("stop", or "length" when cut at max_tokens) it reports."""
    def choice(i: int, answer) -> dict:
        if kind != "chat.completion":
            return {"index": i, "text": answer.text, "finish_reason": answer.finish_reason, "logprobs": None}
        return {"index": i, "message": {"role": "assistant", **message(answer.text)},
                "finish_reason": answer.finish_reason, "logprobs": None}

    return {
        "id": request_id,
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "choices": [choice(i, answer) for i, answer in enumerate(answers)],
        "usage": usage(ledger),
        "testtime": details,
    }


def message(text: str) -> dict:
    """A reply as a message: what it thought in tags as ``reasoning_content``, the rest as ``content``."""
    reasoning, answer = TAGS.split(text)
    return {"content": answer.lstrip(), "reasoning_content": reasoning.strip()} if reasoning else {"content": text}


def chat_chunk(request_id: str, model: str, delta: dict, index: int = 0, finish_reason: str | None = None) -> dict:
    return {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": index, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }
