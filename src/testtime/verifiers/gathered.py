"""A verifier shared by many threads, as a stream: each caller's solutions are scored as soon as
the verifier is free, in one batch with whatever else is waiting by then.

Trees that grow on their own threads (``SearchStrategy.solve`` on a streaming generator) score
their new steps through it: no tree waits for a round of all the others, and the verifier still
sees batches, not one solution at a time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Sequence

from testtime.ledger import Ledger
from testtime.verifiers.base import Solution, StepScores, Verifier


@dataclass(eq=False)
class _Waiting:
    solutions: Sequence[Solution]
    ledgers: Sequence[Ledger] | None
    scores: list[StepScores] | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass(eq=False)
class Gathered(Verifier):
    """``inner`` behind a queue: the first caller to find it free scores everything queued."""

    inner: Verifier
    batches: int = 0  # verifier calls made, for tests and benches
    _queue: list[_Waiting] = field(default_factory=list)
    _busy: bool = False
    _lock: threading.Condition = field(default_factory=threading.Condition)

    @property
    def parameter_count(self) -> int:
        return self.inner.parameter_count

    def _score(self, solutions):  # every call goes through score_steps
        return self.inner._score(solutions)

    def reduce(self, step_scores):
        return self.inner.reduce(step_scores)

    def score_steps(self, solutions, ledgers=None):
        if not solutions:
            return []
        mine = _Waiting(solutions, ledgers)
        with self._lock:
            self._queue.append(mine)
            while not mine.done and self._busy:
                self._lock.wait()
            if mine.done:
                return self._outcome(mine)
            self._busy, batch, self._queue = True, self._queue, []
        try:
            self._run(batch)
        finally:
            with self._lock:
                self._busy = False
                self._lock.notify_all()
        return self._outcome(mine)

    def _run(self, batch: list[_Waiting]) -> None:
        solutions = [s for w in batch for s in w.solutions]
        ledgers = [ledger for w in batch for ledger in (w.ledgers or [Ledger() for _ in w.solutions])]
        try:
            scores = self.inner.score_steps(solutions, ledgers)
        except BaseException as exc:  # each waiting caller gets the error
            for w in batch:
                w.error, w.done = exc, True
            return
        self.batches += 1
        at = 0
        for w in batch:
            w.scores, w.done = scores[at : at + len(w.solutions)], True
            at += len(w.solutions)

    @staticmethod
    def _outcome(waiting: _Waiting) -> list[StepScores]:
        if waiting.error is not None:
            raise waiting.error
        return waiting.scores
