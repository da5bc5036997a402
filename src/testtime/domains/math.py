"""The math domain: a final answer (a number or an expression), read from the reply's text."""

from __future__ import annotations

from typing import Sequence

from testtime.answers import answers_match, extract_answer, normalize_answer
from testtime.domains.base import Domain, Reply
from testtime.reasoning import TAGS
from testtime.selection import Candidate
from testtime.tasks import Task


class MathDomain(Domain):
    name = "math"
    system_prompt = ("Solve the math problem step by step, with a blank line between steps. "
                     "Put the final answer within \\boxed{}.")

    def candidates(self, replies: Sequence[Reply]) -> list[Candidate]:
        out = []
        for r in replies:
            answer = extract_answer(TAGS.split(r.text)[1])  # after its thinking, where it thinks in tags
            out.append(Candidate(text=r.text, answer=answer, key=normalize_answer(answer), tokens=r.tokens,
                                 finish_reason=r.finish_reason, reasoning_tokens=r.reasoning_tokens))
        return out

    def grade(self, graded: Sequence[tuple[Task, Candidate]]) -> list[bool]:
        return [answers_match(c.answer, task.answer) for task, c in graded]
