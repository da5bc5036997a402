"""The Python API: a ``Solver`` holds one engine (and verifier) and answers questions with any strategy.

    import testtime as tt
    with tt.Solver(model="smollm2-135m-instruct", verifier="arithmetic", max_tokens=256, seed=0) as solver:
        r = solver.solve("What is 17 * 3?", strategy="majority", budget=8)
        print(r.prediction, r.ledger.completion_tokens)

Engine settings (model, dtype, context) are the solver's; request settings (strategy, budget,
the strategy's parameters) are each ``solve``'s, as in vLLM's ``LLM`` and ``SamplingParams``.
Everything is checked by ``testtime.specs`` and ``testtime.params``, as on the command line.
"""

from __future__ import annotations

from typing import Any, Sequence, overload

from testtime.generators import DEFAULT_MAX_TOKENS, GeneratorSpec, SamplingParams
from testtime.models import DEFAULT_MODEL
from testtime.prompting import DOMAIN_PROMPT, PromptTemplate
from testtime.runner import check_prompts_fit
from testtime.specs import make_verifier
from testtime.steps import check_thinking_split
from testtime.strategies import Context, QuestionResult, Strategy
from testtime.tasks import Task
from testtime.verifiers import Verifier
from testtime.verifiers.assertions import AssertionsVerifier


class SolverClosedError(RuntimeError):
    """A solver used after ``close()`` (or after its ``with`` block)."""


class Solver:
    """One generator (in-process vLLM or an OpenAI-compatible server) and one verifier, opened once."""

    def __init__(self, model: str = DEFAULT_MODEL, *, backend: str = "vllm", base_url: str | None = None,
                 verifier: str | Verifier | None = None, verifier_model: str | None = None,
                 aggregation: str | None = None, verifier_options: dict[str, Any] | None = None,
                 temperature: float = 0.8, top_p: float = 1.0, max_tokens: int = DEFAULT_MAX_TOKENS, seed: int = 0,
                 dtype: str = "auto", max_model_len: int = 2048, system_prompt: str | None = DOMAIN_PROMPT,
                 api_key: str = "EMPTY", thinking_split: str = "paragraph"):
        self.sampling = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens)
        self.template = PromptTemplate(system=system_prompt)
        self.verifier = verifier if isinstance(verifier, Verifier) else make_verifier(
            verifier, aggregation=aggregation, model=verifier_model, options=verifier_options, policy=model)
        self.spec = GeneratorSpec(backend, model, base_url=base_url, api_key=api_key, seed=seed,
                                  max_model_len=max_model_len, dtype=dtype)
        self.seed = seed
        self.thinking_split = check_thinking_split(thinking_split)
        self.generator = self.spec.open()

    @overload
    def solve(self, questions: str | Task, strategy: str | Strategy = ..., budget: int | None = ...,
              **params: Any) -> QuestionResult: ...

    @overload
    def solve(self, questions: Sequence[str | Task], strategy: str | Strategy = ..., budget: int | None = ...,
              **params: Any) -> list[QuestionResult]: ...

    def solve(self, questions, strategy="majority", budget=None, tests=None, **params):
        """Answer one question (a result) or many (a list of results, all batched together).

        ``strategy`` is a name (see ``testtime strategies``) with ``budget`` and its own parameters,
        or a ``Strategy`` object. A question is a string or a ``Task`` (with a gold answer, results
        say whether they are correct; a HumanEval task's are graded by its hidden tests). ``tests``,
        a list of assert statements, makes the answer a program chosen by the share of them it
        passes in the sandbox: they are this call's verifier (test-driven generation)."""
        if self.generator is None:
            raise SolverClosedError("this Solver is closed; open a new one: with tt.Solver(...) as solver: ...")
        one = isinstance(questions, (str, Task))
        tasks = [_task(q, i, "code" if tests else "math") for i, q in enumerate([questions] if one else questions)]
        verifier = AssertionsVerifier(tests) if tests else self.verifier
        chosen = strategy if isinstance(strategy, Strategy) else Strategy.create(
            strategy, **({"budget": budget} if budget is not None else {}), **params)
        chosen.check(verifier)
        check_prompts_fit(tasks, self.generator, self.template)
        ctx = Context(generator=self.generator, verifier=verifier, sampling=self.sampling,
                      template=self.template, seed=self.seed, thinking_split=self.thinking_split)
        results = chosen.solve(tasks, ctx)
        return results[0] if one else results

    def close(self) -> None:
        if self.generator is not None:
            self.generator.close()
            self.generator = None

    def __enter__(self) -> Solver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _task(question: str | Task, index: int, domain: str = "math") -> Task:
    if isinstance(question, Task):
        return question
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question {index}: expected a non-empty string or a Task, got {question!r}")
    return Task(id=f"q{index}", question=question, answer="", domain=domain)
