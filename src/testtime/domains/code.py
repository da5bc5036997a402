"""The code domain: a Python function, graded by the task's hidden tests in the sandbox.

A reply's answer is the whole program it means (``programs.extract_program``). Votes count
behaviour, not text: candidates that return the same values on the prompt's visible example
inputs share one key (AlphaCode's clustering, MBR-exec). Grading runs the hidden ``check`` of the
task against the program; it is the only place the hidden tests are read.
"""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

from testtime.domains.base import Domain, Reply
from testtime.programs import entry_point, extract_program, visible_examples
from testtime.sandbox import Execution, Job, shared_sandbox
from testtime.selection import Candidate
from testtime.tasks import Task

SYSTEM_PROMPT = ("Complete the Python function. Reply with the whole function, its imports included, "
                 "in one ```python code block.")


def behaviour_jobs(question: str, programs: Sequence[str | None]) -> list[Job | None]:
    """The job that shows each program's behaviour: the prompt's example calls (at least one run)."""
    calls = tuple(e.call for e in visible_examples(question))
    return [Job(p, calls) if p is not None else None for p in programs]


def behaviour_key(execution: Execution | None) -> str | None:
    """One key per behaviour on the example inputs; None for a program that does not even load."""
    if execution is None or execution.status != "passed":
        return None
    seen = [o.value if o.raised is None else f"raised {o.raised}" for o in execution.outputs]
    return "behaviour:" + hashlib.sha256(json.dumps(seen).encode()).hexdigest()[:16]


def run_jobs(jobs: Sequence[Job | None]) -> list[Execution | None]:
    """The jobs that exist, in one parallel batch of the shared sandbox."""
    real = [j for j in jobs if j is not None]
    done = iter(shared_sandbox().run_many(real))
    return [next(done) if j is not None else None for j in jobs]


class CodeDomain(Domain):
    name = "code"
    system_prompt = SYSTEM_PROMPT

    def candidates(self, replies: Sequence[Reply]) -> list[Candidate]:
        programs = [extract_program(r.task.question, r.text, _entry(r.task)) for r in replies]
        jobs = [job for r, p in zip(replies, programs) for job in behaviour_jobs(r.task.question, [p])]
        executions = run_jobs(jobs)
        return [Candidate(text=r.text, answer=p, key=behaviour_key(e) if p is not None else None, tokens=r.tokens,
                          finish_reason=r.finish_reason, reasoning_tokens=r.reasoning_tokens)
                for r, p, e in zip(replies, programs, executions)]

    def grade(self, graded: Sequence[tuple[Task, Candidate]]) -> list[bool]:
        """A task without hidden tests (a question asked of the server or the API) grades nothing right."""
        jobs = [Job(hidden_test_program(task, c.answer)) if c.answer is not None and task.meta.get("test") else None
                for task, c in graded]
        executions = run_jobs(jobs)
        for (task, candidate), execution in zip(graded, executions):
            why = "no program in the reply" if candidate.answer is None else "the task has no hidden tests"
            candidate.verdict = execution.to_dict() if execution is not None else {"status": "error", "error": why,
                                                                                   "stderr": ""}
        return [e is not None and e.passed for e in executions]


def _entry(task: Task) -> str | None:
    return task.meta.get("entry_point") or entry_point(task.question)


def hidden_test_program(task: Task, program: str) -> str:
    """The program, then the task's hidden tests and their call, as HumanEval's harness joins them."""
    test = task.meta.get("test")
    if not test:
        raise ValueError(f"{task.source or task.id}: a code task needs its hidden tests in 'test'")
    return f"{program}\n\n{test}\n\ncheck({_entry(task)})\n"
