"""A small deterministic generator for unit tests of strategy logic.

It is not a model: it returns scripted completions so a test can state the
exact expected answer. Tests of real behaviour use the embedded model through
vLLM (see test_engine.py).
"""

from __future__ import annotations

from typing import Callable, Sequence

from testtime.generators.base import Completion, GenerationRequest, GenerationResult, Generator


class ScriptedGenerator(Generator):
    """Completion texts come from ``script(question, sample_index)``; sample_index counts per question."""

    name = "scripted"
    parameter_count = 1000

    def __init__(self, script: Callable[[str, int], str], prompt_tokens: int = 10):
        self.script = script
        self.prompt_tokens = prompt_tokens
        self.calls: list[list[GenerationRequest]] = []
        self.drawn: dict[str, int] = {}

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.calls.append(list(requests))
        results = []
        for request in requests:
            question = request.prompt.messages[-1][1]
            completions = []
            for _ in range(request.n):
                index = self.drawn.get(question, 0)
                self.drawn[question] = index + 1
                text = self.script(question, index)
                completions.append(Completion(text=text, token_count=len(text.split()), finish_reason="stop"))
            results.append(GenerationResult(tuple(completions), self.prompt_tokens, cached_prompt_tokens=4))
        return results


def cycle(*texts: str) -> Callable[[str, int], str]:
    """A script that answers every question with ``texts`` in turn."""
    return lambda question, index: texts[index % len(texts)]
