"""How a task becomes a prompt."""

from __future__ import annotations

from dataclasses import dataclass

from testtime.domains import domain_of
from testtime.domains.math import MathDomain
from testtime.generators.base import Prompt
from testtime.tasks import Task

DEFAULT_SYSTEM_PROMPT = MathDomain.system_prompt
# The system prompt of each task's own domain (math's or code's): the default of every template.
DOMAIN_PROMPT = "<the task's domain's system prompt>"


@dataclass(frozen=True)
class PromptTemplate:
    system: str | None = DOMAIN_PROMPT  # None: no system prompt at all
    user: str = "{question}"

    def build(self, task: Task) -> Prompt:
        system = domain_of(task).system_prompt if self.system == DOMAIN_PROMPT else self.system
        return Prompt.chat(system, self.user.format(question=task.question))
