"""The ``Domain`` interface and the lookup every strategy and analysis goes through."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar, Sequence

from testtime.registry import Registered
from testtime.selection import Candidate
from testtime.tasks import Task


@dataclass(frozen=True)
class Reply:
    """A model's reply to a task, before it is read as a candidate."""

    task: Task
    text: str
    tokens: int
    finish_reason: str = "stop"
    reasoning_tokens: int = 0


class Domain(Registered, abc.ABC):
    kind, kind_plural = "domain", "domains"
    registry: ClassVar[dict[str, type[Domain]]] = {}
    system_prompt: ClassVar[str] = ""

    @abc.abstractmethod
    def candidates(self, replies: Sequence[Reply]) -> list[Candidate]:
        """Each reply as a candidate (its answer and voting key), all in one batch."""

    @abc.abstractmethod
    def grade(self, graded: Sequence[tuple[Task, Candidate]]) -> list[bool]:
        """Whether each candidate answers its task rightly, all in one batch."""


_INSTANCES: dict[str, Domain] = {}


def domain_of(task: Task | str) -> Domain:
    """The domain a task (or a domain name) names: one shared instance per name."""
    name = task if isinstance(task, str) else task.domain
    if name not in _INSTANCES:
        _INSTANCES[name] = Domain.lookup(name)()
    return _INSTANCES[name]


def make_candidates(replies: Sequence[Reply]) -> list[Candidate]:
    """Replies as candidates, one batch per domain (the code domain runs them in the sandbox)."""
    out: list[Candidate | None] = [None] * len(replies)
    by_domain: dict[str, list[int]] = {}
    for k, reply in enumerate(replies):
        by_domain.setdefault(reply.task.domain, []).append(k)
    for name, places in by_domain.items():
        for k, candidate in zip(places, domain_of(name).candidates([replies[k] for k in places])):
            out[k] = candidate
    return out


def grade_results(pairs: Sequence[tuple[Task, Sequence[Candidate]]]) -> None:
    """Fill ``Candidate.correct`` of every candidate not yet graded, one batch per domain."""
    by_domain: dict[str, list[tuple[Task, Candidate]]] = {}
    for task, candidates in pairs:
        for c in candidates:
            if c.correct is None:
                by_domain.setdefault(task.domain, []).append((task, c))
    for name, graded in by_domain.items():
        for (_, candidate), right in zip(graded, domain_of(name).grade(graded)):
            candidate.correct = right
