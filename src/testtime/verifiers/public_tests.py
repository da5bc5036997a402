"""``public_tests``: score a program by the share of its prompt's visible examples it passes.

The examples are read from the question alone (``programs.visible_examples``: ``>>>`` doctests and
the prose forms), so the task's hidden tests cannot reach this verifier: it is never given the
task. Each candidate runs once in the sandbox with every example call (the code domain's
``examples_job``, which its behaviour key already ran); the values come back as repr() and are
compared in our process. Some prompts show wrong examples (HumanEval/47, /116): the score is the
share passed, not all-or-nothing. A question with no example scores 0.5 for a program that loads,
0 for one that does not.
"""

from __future__ import annotations

from typing import Sequence

from testtime.domains.code import examples_job, examples_passed
from testtime.programs import extract_program, visible_examples
from testtime.sandbox import shared_sandbox
from testtime.verifiers.base import OutcomeVerifier, Solution, StepScores

NO_EXAMPLE_SCORE = 0.5


class PublicTestsVerifier(OutcomeVerifier):
    """The share of the prompt's visible examples (doctests, prose) a program passes, in the sandbox."""

    name = "public_tests"

    def _score(self, solutions: Sequence[Solution]) -> list[StepScores]:
        jobs = [examples_job(s.question, extract_program(s.question, s.text)) for s in solutions]
        out = []
        for s, execution in zip(solutions, shared_sandbox().run_many(jobs)):
            shown = visible_examples(s.question)
            passed = examples_passed(execution, shown)
            score = 0.0 if passed is None else passed / len(shown) if shown else NO_EXAMPLE_SCORE
            out.append(StepScores((score,)))
        return out
