"""The program domain (program of thought, Chen et al. 2022; PAL, Gao et al. 2022): a math
question answered by a Python program that prints the answer, run in the sandbox.

A reply's answer is read from what its program prints, as math reads a solution (``extract_answer``:
"The answer is 18", or the last number); votes count those answers, so every
parallel strategy votes over executed answers. Grading is math's: the printed answer against
the gold one. A program that fails, prints nothing or runs too long has no answer.
"""

from __future__ import annotations

from typing import Sequence

from testtime.answers import answers_match, extract_answer, normalize_answer
from testtime.domains.base import Domain, Reply
from testtime.programs import program_block
from testtime.sandbox import Execution, Job, shared_sandbox
from testtime.selection import Candidate
from testtime.tasks import Task

SYSTEM_PROMPT = ("Solve the math problem by writing a Python program that computes the answer and prints "
                 "only the final number. Reply with the program in one ```python code block.")


def run_programs(texts: Sequence[str]) -> list[str | None]:
    """What each reply's program prints as its answer, all in one sandbox batch (None: no answer)."""
    jobs = [Job(p) if (p := program_block(t)) is not None else None for t in texts]
    return [printed_answer(e) for e in shared_sandbox().run_many(jobs)]


def printed_answer(execution: Execution | None) -> str | None:
    """The answer a program printed, where it ran to its end (else None)."""
    return extract_answer(execution.stdout) if execution is not None and execution.passed else None


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
