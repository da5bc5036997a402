"""Score a program by the share of given ``assert`` statements it passes: test-driven generation.

The tests come with the request (the server's ``testtime.tests``, the Python API's ``tests=``), not
from a registry name, so this verifier is made per request and has no name of its own. Each
statement must be one ``assert``; its condition is evaluated in the program's namespace in the
sandbox and ``bool()`` of it comes back, compared here (an assert that raises counts as failed).
"""

from __future__ import annotations

import ast
from typing import Sequence

from testtime.programs import extract_program
from testtime.sandbox import Job, shared_sandbox
from testtime.verifiers.base import OutcomeVerifier, Solution, StepScores


class TestsError(ValueError):
    """A test that is not one assert statement, or tests over the caps."""


def conditions(tests: Sequence[str], max_tests: int = 32, max_chars: int = 2000) -> tuple[str, ...]:
    """Each test's condition as an expression, or a TestsError naming the test that is wrong."""
    if not isinstance(tests, (list, tuple)) or not tests:
        raise TestsError("tests must be a non-empty list of assert statements")
    if len(tests) > max_tests:
        raise TestsError(f"{len(tests)} tests are over the cap of {max_tests}")
    out = []
    for k, test in enumerate(tests):
        if not isinstance(test, str) or len(test) > max_chars:
            raise TestsError(f"tests[{k}] must be a string of at most {max_chars} characters")
        try:
            body = ast.parse(test.strip()).body
            if len(body) != 1 or not isinstance(body[0], ast.Assert):
                raise TestsError(f"tests[{k}] must be one assert statement, e.g. assert f(2) == 4")
            out.append(f"bool({ast.unparse(body[0].test)})")
        except SyntaxError as exc:
            raise TestsError(f"tests[{k}] is not valid Python: {exc.msg}") from None
        except (RecursionError, MemoryError):
            raise TestsError(f"tests[{k}] is nested too deeply to read") from None
    return tuple(out)


class AssertionsVerifier(OutcomeVerifier):
    """The share of ``tests`` a solution's program passes (0 for a reply with no program)."""

    def __init__(self, tests: Sequence[str], max_tests: int = 32, max_chars: int = 2000):
        self.calls = conditions(tests, max_tests, max_chars)  # checked here, once, with the caller's caps
        self.tests = tuple(tests)

    def _score(self, solutions: Sequence[Solution]) -> list[StepScores]:
        programs = [extract_program(s.question, s.text) for s in solutions]
        out = []
        for execution in shared_sandbox().run_many([Job(p, self.calls) if p is not None else None for p in programs]):
            passed = sum(o.value == "True" for o in execution.outputs) if execution is not None and execution.passed else 0
            out.append(StepScores((passed / len(self.calls),)))
        return out
