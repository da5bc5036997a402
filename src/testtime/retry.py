"""Retries for calls to remote servers: exponential backoff with full jitter,
bounded both in attempts and in total time, so a server that stays down ends a
run with a clear error instead of a hang.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")


class UpstreamError(RuntimeError):
    """A remote server kept failing past the retry policy."""


@dataclass(frozen=True)
class RetryPolicy:
    timeout: float = 600.0  # seconds one request may take
    attempts: int = 5  # tries per request, the first included
    backoff: float = 0.5  # seconds before the first retry; doubles each time
    max_backoff: float = 8.0
    deadline: float = 900.0  # seconds after which a failing request is not tried again

    def __post_init__(self):
        if self.attempts < 1 or self.timeout <= 0 or self.backoff < 0 or self.deadline <= 0:
            raise ValueError(f"retry policy needs attempts >= 1, timeout > 0, backoff >= 0, deadline > 0: {self}")

    def delay(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, backoff * 2**retry], capped."""
        return rng.uniform(0, min(self.max_backoff, self.backoff * 2**retry))


def call_with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    retriable: Callable[[BaseException], bool],
    what: str,
    rng: random.Random | None = None,
) -> T:
    """``call()``, tried again on retriable faults; raises ``UpstreamError`` naming ``what`` when they persist."""
    rng, started = rng or random.Random(), time.monotonic()
    for attempt in range(policy.attempts):
        try:
            return call()
        except Exception as exc:
            time.sleep(_pause_or_raise(exc, attempt, started, policy, retriable, what, rng))
    raise AssertionError("unreachable")  # pragma: no cover


async def call_with_retries_async(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    retriable: Callable[[BaseException], bool],
    what: str,
    rng: random.Random | None = None,
) -> T:
    """``await call()`` under the same policy. Cancellation is never retried: it ends the call at once."""
    rng, started = rng or random.Random(), time.monotonic()
    for attempt in range(policy.attempts):
        try:
            return await call()
        except Exception as exc:
            await asyncio.sleep(_pause_or_raise(exc, attempt, started, policy, retriable, what, rng))
    raise AssertionError("unreachable")  # pragma: no cover


def _pause_or_raise(exc: Exception, attempt: int, started: float, policy: RetryPolicy,
                    retriable: Callable[[BaseException], bool], what: str, rng: random.Random) -> float:
    """The pause before the next try, or the fault raised (not retriable) or named (tries or time spent)."""
    if not retriable(exc):
        raise exc
    elapsed = time.monotonic() - started
    pause = policy.delay(attempt, rng)
    if attempt + 1 == policy.attempts or elapsed + pause >= policy.deadline:
        raise UpstreamError(
            f"{what} failed {attempt + 1} times over {elapsed:.1f} s; last error: {type(exc).__name__}: {exc}"
        ) from exc
    return pause
