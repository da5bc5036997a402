"""The code domain: a Python function, graded by the task's hidden tests in the sandbox.

A reply's answer is the whole program it means (``programs.extract_program``). Votes count
behaviour, not text: candidates that return the same values on the prompt's visible example
inputs share one key (AlphaCode's clustering, MBR-exec). Grading runs the hidden ``check`` of the
task against the program; it is the only place the hidden tests are read.

``examples_job`` is the one execution of a program on its prompt's examples: the behaviour key,
``public_tests`` and ``self_debug`` all read it, so the sandbox runs it once (its memo).
"""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

from testtime.domains.base import Domain, Reply
from testtime.programs import Example, entry_point, extract_program, same_value, visible_examples
from testtime.sandbox import Execution, Job, shared_sandbox
from testtime.selection import Candidate
from testtime.tasks import Task

SYSTEM_PROMPT = ("Complete the Python function. Reply with the whole function, its imports included, "
                 "in one ```python code block.")


def examples_job(question: str, program: str | None) -> Job | None:
    """The program, then each of the prompt's example calls (None for a reply with no program)."""
    return Job(program, tuple(e.call for e in visible_examples(question))) if program is not None else None


def examples_passed(execution: Execution | None, examples: Sequence[Example]) -> int | None:
    """How many examples an execution of ``examples_job`` got right; None where the program did not load."""
    if execution is None or not execution.passed:
        return None
    return sum(o.raised is None and same_value(o.value, e.expected) for o, e in zip(execution.outputs, examples))


def behaviour_key(execution: Execution | None) -> str | None:
    """One key per behaviour on the example inputs; None for a program that does not even load."""
    if execution is None or not execution.passed:
        return None
    seen = [o.value if o.raised is None else f"raised {o.raised}" for o in execution.outputs]
    return "behaviour:" + hashlib.sha256(json.dumps(seen).encode()).hexdigest()[:16]


class CodeDomain(Domain):
    name = "code"
    system_prompt = SYSTEM_PROMPT

    def candidates(self, replies: Sequence[Reply]) -> list[Candidate]:
        programs = [extract_program(r.task.question, r.text, _entry(r.task)) for r in replies]
        executions = shared_sandbox().run_many([examples_job(r.task.question, p) for r, p in zip(replies, programs)])
        return [Candidate(text=r.text, answer=p, key=behaviour_key(e), tokens=r.tokens,
                          finish_reason=r.finish_reason, reasoning_tokens=r.reasoning_tokens)
                for r, p, e in zip(replies, programs, executions)]

    def grade(self, graded: Sequence[tuple[Task, Candidate]]) -> list[bool]:
        """A task without hidden tests (a question asked of the server or the API) grades nothing right."""
        jobs = [Job(hidden_test_program(task, c.answer)) if c.answer is not None and task.meta.get("test") else None
                for task, c in graded]
        executions = shared_sandbox().run_many(jobs)
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
