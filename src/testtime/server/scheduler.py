"""Runs each request as a strategy call as soon as it comes, many at once.

A request starts at once on a thread of its own, up to ``max_running`` at a time; its generate
calls join the engine's running batch (the in-process engine loop), so no request waits for
another to finish, and a client that leaves has its sequences aborted within an engine step.
With ``batch_window_seconds`` > 0 (0 by default), requests with the same strategy, verifier and
sampling settings that arrive within it share one ``Strategy.solve``. No job's
failure stops the scheduler (the job's requests get the error). The queue of waiting requests
is bounded: a full queue is refused at once (the caller answers 429). ``drain`` stops taking
jobs and makes every waiting or running one stop now and answer with what it has, so a
shutdown takes seconds.
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
    written: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)  # the answer's text as it comes (single)
    # What the /ui view shows of it: when it came and ran, its progress so far, what the strategy holds.
    submitted: float = field(default_factory=time.time)
    began: float | None = None
    ended: float | None = None
    log: list[str] = field(default_factory=list)
    holding: dict | None = None

    def note(self, message: str) -> None:
        self.progress.put(message)
        self.log.append(message)

    def grow(self, holding: dict) -> None:
        self.holding = holding

    @property
    def state(self) -> str:
        if not self.future.done():
            return "running" if self.began is not None else "queued"
        if self.future.cancelled():
            return "cancelled"
        return "failed" if self.future.exception() is not None else "done"

    @property
    def key(self) -> str:
        """Jobs with equal keys can share one strategy call."""
        return json.dumps([self.strategy.describe(), asdict(self.sampling), self.verifier_name, self.seed], default=str)

    def stopped(self) -> bool:
        return self.cancelled.is_set() or time.monotonic() > self.deadline


class Draining(Exception):
    """The server is shutting down and takes no new work."""


class Scheduler:
    def __init__(self, generator: Generator, max_queue: int, batch_window_seconds: float = 0.0,
                 max_running: int = 64):
        self.generator = generator
        self.window = batch_window_seconds
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self._running: set[Job] = set()
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(max_running)
        self._solvers: list[threading.Thread] = []
        self._draining = threading.Event()
        self._thread = threading.Thread(target=self._run, name="testtime-scheduler", daemon=True)
        self.batches = 0
        self.recent: collections.deque[tuple[Job, QuestionResult]] = collections.deque(maxlen=64)
        self.seen: collections.deque[Job] = collections.deque(maxlen=50)  # the latest requests, for /ui
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue a job; raises queue.Full when the queue is at its bound, Draining when shutting down."""
        if self._draining.is_set():
            raise Draining
        self._queue.put_nowait(job)
        self.seen.append(job)

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._draining.is_set()

    def drain(self) -> None:
        """Take no new jobs; every queued or running job stops at its next round (its answer is what it has)."""
        self._draining.set()
        with self._lock:
            running = list(self._running)
        for job in running + list(self._queue.queue):
            if job is not None:
                job.cancelled.set()

    def close(self, timeout: float = 30) -> None:
        self.drain()
        self._queue.put(None)
        deadline = time.monotonic() + timeout
        self._thread.join(timeout=timeout)
        for solver in list(self._solvers):
            solver.join(timeout=max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first, *self._gather()]
            self._slots.acquire()  # all slots busy: requests wait in the queue (and a full one is refused)
            solver = threading.Thread(target=self._run_batch, args=(batch,), name="testtime-solve", daemon=True)
            self._solvers = [t for t in self._solvers if t.is_alive()] + [solver]
            solver.start()

    def _run_batch(self, batch: list[Job]) -> None:
        with self._lock:
            self._running.update(batch)
        try:
            self._solve_groups(batch)
        except Exception as exc:  # never let one batch end the scheduler
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
        finally:
            with self._lock:
                self._running.difference_update(batch)
            self._slots.release()

    def _solve_groups(self, batch: list[Job]) -> None:
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
            progress=lambda task, message: by_task[id(task)].note(message),
            growing=lambda task, holding: by_task[id(task)].grow(holding),
            cancelled=lambda task: by_task[id(task)].stopped(),
            # A model that thinks in tags has its reply split into reasoning and content once it is whole.
            writing=None if self.generator.thinks_in_tags else (lambda task, text: by_task[id(task)].written.put(text)),
        )
        with self._lock:
            self.batches += 1
        for job in jobs:
            job.began = time.time()
        try:
            results: list[QuestionResult] = first.strategy.solve([job.task for job in jobs], ctx)
        except Exception as exc:  # every waiting request learns of the failure; the worker goes on
            for job in jobs:
                job.ended = time.time()
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        for job, result in zip(jobs, results):
            job.ended = time.time()
            self.recent.append((job, result))
            if not job.future.done():
                job.future.set_result(result)
