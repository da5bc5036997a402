"""``program_agreement``: score a chain-of-thought answer by how many of K programs agree with it.

For each question the verifier's model writes K programs (program of thought) once; the sandbox
runs them, and a solution's score is the share of the K that print its final answer. It checks a
solution by an independent route to the answer, and costs K generations per question, not per
solution (charged to the question's first solution scored). Scores stay in [0, 1]: a question
whose programs all fail gives every solution 0, which leaves a weighted vote to ties.
"""

from __future__ import annotations

from typing import Sequence

from testtime.answers import answers_match, extract_answer
from testtime.domains.program import SYSTEM_PROMPT, run_programs
from testtime.generators import ModelOf
from testtime.generators.base import GenerationRequest, Generator, Prompt, SamplingParams
from testtime.reasoning import TAGS
from testtime.verifiers.base import OutcomeVerifier, Solution, StepScores


class ProgramAgreement(OutcomeVerifier):
    """The share of K programs, written by its model and run in the sandbox, that print a solution's answer."""

    name = "program_agreement"
    model_parameter = "generator"

    def __init__(self, generator: Generator | str, programs: int = 8, temperature: float = 0.8,
                 max_tokens: int = 384, seed: int = 0):
        if isinstance(programs, bool) or not isinstance(programs, int) or programs < 1:
            raise ValueError(f"programs must be an integer >= 1, got {programs!r}")
        self._model = ModelOf(generator)
        self.programs = programs
        self.params = SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=seed)
        self._answers: dict[str, list[str | None]] = {}  # question -> what its K programs printed

    @property
    def generator(self) -> Generator:
        return self._model.generator

    @property
    def parameter_count(self) -> int:
        return self._model.parameter_count

    def close(self) -> None:
        self._model.close()

    def program_answers(self, questions: Sequence[str]) -> dict[str, int]:
        """Write and run the K programs of every question not seen yet; the tokens that cost, per question."""
        new = list(dict.fromkeys(q for q in questions if q not in self._answers))
        if not new:
            return {}
        requests = [GenerationRequest(Prompt.chat(SYSTEM_PROMPT, q), n=self.programs, params=self.params) for q in new]
        results = self.generator.generate(requests)
        for question, result in zip(new, results):
            self._answers[question] = run_programs([c.text for c in result.completions])
        return {q: r.prompt_tokens - r.cached_prompt_tokens + r.completion_tokens for q, r in zip(new, results)}

    def _score(self, solutions: Sequence[Solution]) -> list[StepScores]:
        cost = self.program_answers([s.question for s in solutions])
        out = []
        for s in solutions:
            answer = extract_answer(TAGS.split(s.text)[1])
            printed = self._answers[s.question]
            agree = sum(answer is not None and answers_match(p, answer) for p in printed if p is not None)
            out.append(StepScores((agree / self.programs,), tokens=cost.pop(s.question, 0)))
        return out
