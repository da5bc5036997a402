"""An LLM as judge: an outcome verifier that asks a model whether a solution is correct.

The score is the model's own probability of answering "yes" rather than "no",
read from the top log-probabilities of the first token of its reply; nothing is
sampled, so the score is as deterministic as the backend.
"""

from __future__ import annotations

import math
from typing import Sequence

from testtime.generators import ModelOf
from testtime.generators.base import GenerationRequest, Generator, Prompt, SamplingParams
from testtime.verifiers.base import OutcomeVerifier, Solution, StepScores

DEFAULT_QUESTION_TEMPLATE = (
    "Here is a question and a proposed solution to it.\n\n"
    "Question:\n{question}\n\n"
    "Proposed solution:\n{solution}\n\n"
    "Is the proposed solution correct? Answer with a single word, yes or no."
)


def _normalise(token: str) -> str:
    return token.strip().lower()


def p_yes(top: dict[str, float]) -> float:
    """P("yes") among the yes/no answers in one position's top log-probabilities.

    Every token that is "yes" once whitespace is stripped and case ignored
    (" Yes", "YES", "yes") adds to the mass of yes, likewise for "no"; the
    score is mass(yes) / (mass(yes) + mass(no)).
    """
    yes = [lp for token, lp in top.items() if _normalise(token) == "yes" and not math.isnan(lp)]
    no = [lp for token, lp in top.items() if _normalise(token) == "no" and not math.isnan(lp)]
    high = max(yes + no, default=-math.inf)
    if high == -math.inf:
        # Neither answer is among the top alternatives (or both have probability zero): the
        # model gave no evidence either way, so the score is the uninformed middle, not a
        # verdict. Both masses are below the smallest listed alternative's, and their ratio
        # is unknown.
        return 0.5
    # Relative to the largest, so that very unlikely answers do not underflow to 0 / 0.
    yes_mass = sum(math.exp(lp - high) for lp in yes)
    no_mass = sum(math.exp(lp - high) for lp in no)
    return yes_mass / (yes_mass + no_mass)


class LLMJudge(OutcomeVerifier):
    """Scores each solution by the judge model's probability of answering "yes".

    ``question_template`` is formatted with ``question`` and ``solution``. All
    solutions of a batch go to the generator in one ``generate`` call, each as a
    greedy one-token request with ``top_logprobs`` alternatives (vLLM and the
    OpenAI API allow at most 20).
    """

    name = "llm_judge"
    model_parameter = "generator"  # --verifier-model: a model to open as the judge's own engine

    def __init__(self, generator: Generator | str, question_template: str = DEFAULT_QUESTION_TEMPLATE,
                 top_logprobs: int = 20):
        missing = [f"{{{key}}}" for key in ("question", "solution") if f"{{{key}}}" not in question_template]
        if missing:
            raise ValueError(f"question_template must contain {' and '.join(missing)}")
        if isinstance(top_logprobs, bool) or top_logprobs < 1:
            raise ValueError(f"top_logprobs must be an integer >= 1, got {top_logprobs!r}")
        self._model = ModelOf(generator)
        self.question_template = question_template
        self.top_logprobs = top_logprobs
        self.params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=top_logprobs)

    @property
    def generator(self) -> Generator:
        return self._model.generator

    @property
    def parameter_count(self) -> int:
        return self._model.parameter_count  # known once opened

    def close(self) -> None:
        """Close the engine the judge opened itself (one it was given belongs to the caller)."""
        self._model.close()

    def prompt(self, solution: Solution) -> Prompt:
        return Prompt.chat(None, self.question_template.format(question=solution.question, solution=solution.text))

    def request(self, solution: Solution) -> GenerationRequest:
        """The one-token request that judges ``solution``."""
        return GenerationRequest(self.prompt(solution), n=1, params=self.params)

    def _score(self, solutions: Sequence[Solution]) -> list[StepScores]:
        results = self.generator.generate([self.request(s) for s in solutions])
        out = []
        for i, result in enumerate(results):
            [completion] = result.completions
            if not completion.top_logprobs:
                raise ValueError(
                    f"llm_judge: generator {self.generator.name!r} returned no top log-probabilities for "
                    f"solution {i}; the judge needs a backend that honours SamplingParams.logprobs"
                )
            score = p_yes(completion.top_logprobs[0])
            # The judge reads the prompt and computes one token.
            out.append(StepScores((score,), tokens=result.prompt_tokens + 1))
        return out
