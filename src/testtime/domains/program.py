"""The program domain (program of thought, Chen et al. 2022; PAL, Gao et al. 2022): a math
question answered by a Python program that prints the answer, run in the sandbox.

A reply's answer is the last number its program prints; votes count those numbers, so every
parallel strategy votes over executed answers. Grading is math's: the printed number against
the gold answer. A program that fails, prints nothing or runs too long has no answer.
"""

from __future__ import annotations

from typing import Sequence

from testtime.answers import answers_match, normalize_answer
from testtime.domains.base import Domain, Reply
from testtime.programs import printed_answer, program_block
from testtime.sandbox import Job, shared_sandbox
from testtime.selection import Candidate
from testtime.tasks import Task

SYSTEM_PROMPT = ("Solve the math problem by writing a Python program that computes the answer and prints "
                 "only the final number. Reply with the program in one ```python code block.")


def run_programs(texts: Sequence[str]) -> list[str | None]:
    """The number each reply's program prints last, all in one sandbox batch (None: no answer)."""
    programs = [program_block(t) for t in texts]
    executions = iter(shared_sandbox().run_many([Job(p) for p in programs if p is not None]))
    return [printed_answer(next(executions)) if p is not None else None for p in programs]


class ProgramDomain(Domain):
    name = "program"
    system_prompt = SYSTEM_PROMPT

    def candidates(self, replies: Sequence[Reply]) -> list[Candidate]:
        answers = run_programs([r.text for r in replies])
        return [Candidate(text=r.text, answer=a, key=normalize_answer(a), tokens=r.tokens,
                          finish_reason=r.finish_reason, reasoning_tokens=r.reasoning_tokens)
                for r, a in zip(replies, answers)]

    def grade(self, graded: Sequence[tuple[Task, Candidate]]) -> list[bool]:
        return [answers_match(c.answer, task.answer) for task, c in graded]
