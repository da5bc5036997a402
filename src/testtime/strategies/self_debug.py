"""Self-debugging with execution feedback (Chen et al. 2023, "Teaching LLMs to Self-Debug"; S*'s
sequential half): revisions of a program, each told how the last one did on the prompt's visible
examples in the sandbox.

A chain's next attempt sees its last attempt and, as the user's reply, the first visible example it
got wrong (the call, what it should return, what it returned or raised), or the error that kept it
from loading. A chain whose attempt passes every visible example stops there: the rest of its
budget is not spent. The hidden tests are never shown: feedback comes from the question's own
examples, the same ones ``public_tests`` scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from testtime.domains.code import examples_job, examples_passed
from testtime.programs import same_value, visible_examples
from testtime.sandbox import shared_sandbox
from testtime.selection import Selector
from testtime.strategies.revisions import Attempt, Revisions
from testtime.tasks import Task

FIX = "Fix the function and reply with the whole corrected function in one ```python code block."


@dataclass
class SelfDebug(Revisions):
    """Revisions of a program told where its last attempt failed a visible example."""

    name = "self_debug"
    selector: str = field(default=Selector.MAJORITY.value, metadata={
        "help": "choice within a chain, then among chains: majority (by behaviour), best, weighted, borda "
                "(these three need a verifier, e.g. public_tests)"})
    revision_request: str = field(default=FIX, metadata={
        "escapes": True, "help": "what follows the feedback on the last attempt: the request to fix it"})

    def request_after(self, task: Task, attempt: Attempt) -> str:
        return feedback(task, attempt.candidate.answer, self.revision_request)

    def chain_done(self, task: Task, chain: list[Attempt]) -> bool:
        return bool(chain) and passes_examples(task, chain[-1].candidate.answer)


def _run(task: Task, program: str):
    examples = visible_examples(task.question)
    [execution] = shared_sandbox().run_many([examples_job(task.question, program)])
    return examples, execution  # the candidate's behaviour-key job: run once, remembered


def passes_examples(task: Task, program: str | None) -> bool:
    """Whether a program loads and returns every visible example's value (a question with none: loads)."""
    if program is None:
        return False
    examples, execution = _run(task, program)
    return examples_passed(execution, examples) == len(examples)


def feedback(task: Task, program: str | None, fix: str = FIX) -> str:
    """What the last attempt did wrong, in a user's words, then the request to fix it."""
    if program is None:
        return f"Your reply holds no Python function that parses. {fix}"
    examples, execution = _run(task, program)
    if not execution.passed:
        lines = [f"Running your code failed ({execution.status}): {execution.error or execution.status}",
                 *execution.stderr.strip().splitlines()[-3:], fix]
        return "\n".join(line for line in lines if line)
    for output, example in zip(execution.outputs, examples):
        shown = f"Your function was run on an example from the docstring: `{example.call}` should return {example.expected}"
        if output.raised is not None:
            message = f": {output.message}" if output.message else ""
            return f"{shown}, but it raised {output.raised}{message}. {fix}"
        if not same_value(output.value, example.expected):
            return f"{shown}, but it returned {output.value}. {fix}"
    return f"Your function passes the docstring's examples. Check it for the cases they do not show. {fix}"
