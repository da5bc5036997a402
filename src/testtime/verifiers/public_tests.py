"""``public_tests``: score a program by the share of its prompt's visible examples it passes.

The examples are read from the question alone (``programs.visible_examples``: ``>>>`` doctests and
the prose forms), so the task's hidden tests cannot reach this verifier: it is never given the
task. Each candidate runs once in the sandbox with every example call; the values come back as
repr() and are compared here, outside the program's process. Some prompts show wrong examples
(HumanEval/47, /116): the score is the share passed, not all-or-nothing. A question with no
example scores 0.5 for a program that loads, 0 for one that does not.
"""

from __future__ import annotations

from typing import Sequence

from testtime.programs import extract_program, same_value, visible_examples
from testtime.sandbox import Job, shared_sandbox
from testtime.verifiers.base import OutcomeVerifier, Solution, StepScores

NO_EXAMPLE_SCORE = 0.5


class PublicTestsVerifier(OutcomeVerifier):
    """The share of the prompt's visible examples (doctests, prose) a program passes, in the sandbox."""

    name = "public_tests"

    def _score(self, solutions: Sequence[Solution]) -> list[StepScores]:
        examples = [visible_examples(s.question) for s in solutions]
        programs = [extract_program(s.question, s.text) for s in solutions]
        jobs = [Job(p, tuple(e.call for e in ex)) for p, ex in zip(programs, examples) if p is not None]
        executions = iter(shared_sandbox().run_many(jobs))
        out = []
        for program, shown in zip(programs, examples):
            execution = next(executions) if program is not None else None
            out.append(StepScores((_share_passed(execution, shown),)))
        return out


def _share_passed(execution, shown) -> float:
    if execution is None or execution.status != "passed":
        return 0.0
    if not shown:
        return NO_EXAMPLE_SCORE
    passed = sum(o.raised is None and same_value(o.value, e.expected) for o, e in zip(execution.outputs, shown))
    return passed / len(shown)
