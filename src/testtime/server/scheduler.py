"""Gathers concurrent requests into batches and runs each batch as one strategy call.

Requests that ask for the same strategy, verifier and sampling settings within
a short window become the tasks of one ``Strategy.solve``, so their candidates
share every generate call. One worker thread owns the engine; no job's failure
stops it (the job's requests get the error, the next batch runs). The queue is
bounded: a full queue is refused at once (the caller answers 429). ``drain``
stops taking jobs and makes every waiting or running one stop at its next
round and answer with what it has, so a shutdown takes seconds.
"""

from __future__ import annotations

import collections
import json
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field

from testtime.generators.base import Generator, Prompt, SamplingParams
from testtime.prompting import PromptTemplate
from testtime.strategies.base import Context, QuestionResult, Strategy
from testtime.tasks import Task
from testtime.verifiers.base import Verifier


class MessagesTemplate(PromptTemplate):
    """The request's own messages are the prompt."""

    def build(self, task: Task) -> Prompt:
        return Prompt(messages=tuple(task.meta["messages"]))


@dataclass(eq=False)
class Job:
    task: Task
    strategy: Strategy
    sampling: SamplingParams
    verifier_name: str | None
    verifier: Verifier | None  # built and checked when the request came in
    seed: int
    deadline: float  # time.monotonic() after which the search stops and answers with what it has
    shown: dict = field(default_factory=dict)  # the strategy as the client may see it (file names, not paths)
    future: Future = field(default_factory=Future)
    cancelled: threading.Event = field(default_factory=threading.Event)
    progress: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)

    @property
    def key(self) -> str:
        """Jobs with equal keys can share one strategy call."""
        return json.dumps([self.strategy.describe(), asdict(self.sampling), self.verifier_name, self.seed], default=str)

    def stopped(self) -> bool:
        return self.cancelled.is_set() or time.monotonic() > self.deadline


class Draining(Exception):
    """The server is shutting down and takes no new work."""


class Scheduler:
    def __init__(self, generator: Generator, max_queue: int, batch_window_seconds: float):
        self.generator = generator
        self.window = batch_window_seconds
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self._running: list[Job] = []
        self._draining = threading.Event()
        self._thread = threading.Thread(target=self._run, name="testtime-scheduler", daemon=True)
        self.batches = 0
        self.recent: collections.deque[tuple[Job, QuestionResult]] = collections.deque(maxlen=64)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue a job; raises queue.Full when the queue is at its bound, Draining when shutting down."""
        if self._draining.is_set():
            raise Draining
        self._queue.put_nowait(job)

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._draining.is_set()

    def drain(self) -> None:
        """Take no new jobs; every queued or running job stops at its next round (its answer is what it has)."""
        self._draining.set()
        for job in list(self._running) + list(self._queue.queue):
            if job is not None:
                job.cancelled.set()

    def close(self, timeout: float = 30) -> None:
        self.drain()
        self._queue.put(None)
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            try:
                self._run_batch([first, *self._gather()])
            except Exception as exc:  # never let one batch end the worker
                for job in self._running:
                    if not job.future.done():
                        job.future.set_exception(exc)
            finally:
                self._running = []

    def _run_batch(self, batch: list[Job]) -> None:
        self._running = batch
        groups: dict[str, list[Job]] = {}
        for job in batch:
            if job.cancelled.is_set() and not self._draining.is_set():
                job.future.cancel()  # its client left before it started
                continue
            groups.setdefault(job.key, []).append(job)
        for jobs in groups.values():
            self._solve(jobs)

    def _gather(self) -> list[Job]:
        jobs, deadline = [], time.monotonic() + self.window
        while (left := deadline - time.monotonic()) > 0:
            try:
                job = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if job is None:
                self._queue.put(None)  # let the loop see the stop after this batch
                break
            jobs.append(job)
        return jobs

    def _solve(self, jobs: list[Job]) -> None:
        first = jobs[0]
        by_task = {id(job.task): job for job in jobs}
        ctx = Context(
            generator=self.generator, verifier=first.verifier, sampling=first.sampling,
            template=MessagesTemplate(), seed=first.seed,
            progress=lambda task, message: by_task[id(task)].progress.put(message),
            cancelled=lambda task: by_task[id(task)].stopped(),
        )
        self.batches += 1
        try:
            results: list[QuestionResult] = first.strategy.solve([job.task for job in jobs], ctx)
        except Exception as exc:  # every waiting request learns of the failure; the worker goes on
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        for job, result in zip(jobs, results):
            self.recent.append((job, result))
            if not job.future.done():
                job.future.set_result(result)
