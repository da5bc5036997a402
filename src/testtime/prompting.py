"""How a task becomes a prompt."""

from __future__ import annotations

from dataclasses import dataclass

from testtime.generators.base import Prompt
from testtime.tasks import Task

DEFAULT_SYSTEM_PROMPT = (
    "Solve the math problem step by step, with a blank line between steps. "
    "Put the final answer within \\boxed{}."
)


@dataclass(frozen=True)
class PromptTemplate:
    system: str | None = DEFAULT_SYSTEM_PROMPT
    user: str = "{question}"

    def build(self, task: Task) -> Prompt:
        return Prompt.chat(self.system, self.user.format(question=task.question))
