"""The real embedded model (SmolLM2-135M-Instruct) through in-process vLLM."""

from __future__ import annotations

import pytest

from testtime.generators import GenerationRequest, Prompt, PromptTooLongError, SamplingParams
from testtime.ledger import Ledger
from testtime.analysis import summary_row
from testtime.runner import check_prompts_fit
from testtime.strategies import Context, Strategy
from testtime.tasks import Task
from testtime.verifiers.arithmetic import ArithmeticVerifier

pytestmark = pytest.mark.engine

PROMPT = Prompt.chat("Solve step by step. Finish with 'The answer is: N'.", "Tom has 3 apples and buys 5 more. How many apples?")


def test_batched_generate_returns_n_completions_per_request_and_charges_ledgers(engine):
    ledgers = [Ledger(), Ledger()]
    requests = [
        GenerationRequest(PROMPT, n=4, params=SamplingParams(max_tokens=48, seed=1)),
        GenerationRequest(PROMPT.extend("Step 1:"), n=2, params=SamplingParams(max_tokens=48, seed=2)),
    ]
    results = engine.generate(requests, ledgers)
    assert [len(r.completions) for r in results] == [4, 2]
    for result, ledger in zip(results, ledgers):
        assert all(0 < c.token_count <= 48 for c in result.completions)
        assert ledger.completion_tokens == result.completion_tokens > 0
        assert ledger.prompt_tokens == result.prompt_tokens > 0
        assert ledger.policy_flops > 0 and ledger.wall_seconds > 0
    # the continuation's prompt is the first prompt plus the partial answer
    assert results[1].prompt_tokens > results[0].prompt_tokens


def test_shared_prefix_is_served_from_the_prefix_cache(engine):
    long_question = "Consider the following list of numbers. " * 30 + "What is 2 + 2?"
    prompt = Prompt.chat(None, long_question)
    params = SamplingParams(max_tokens=8, seed=3)
    engine.generate([GenerationRequest(prompt, n=1, params=params)])
    ledger = Ledger()
    [again] = engine.generate([GenerationRequest(prompt.extend("The"), n=1, params=params)], [ledger])
    assert again.cached_prompt_tokens >= 32 * ((again.prompt_tokens - 32) // 32)
    assert ledger.cached_prompt_tokens == again.cached_prompt_tokens
    assert ledger.policy_flops < 2 * engine.parameter_count * (again.prompt_tokens + again.completion_tokens)


def test_stop_string_ends_generation_and_is_kept(engine):
    # Steps end at a delimiter; "apple" is a stop string this prompt is sure to reach.
    prompt = Prompt.chat(None, "Write three short paragraphs about apples.")
    params = SamplingParams(max_tokens=300, stop=("apple",), temperature=0.0)
    [result] = engine.generate([GenerationRequest(prompt, n=1, params=params)])
    [c] = result.completions
    assert c.text.endswith("apple") and c.finish_reason == "stop"
    assert "apple" not in c.text[:-5]  # generation stopped at the first occurrence


def test_same_seed_same_samples(engine):
    # Each call from a cold prefix cache: in bfloat16 a cache hit rounds differently from the prefill it
    # replaces (seen on a CPU with AMX), so only equal cache states promise equal draws (docs/reliability.md).
    params = SamplingParams(max_tokens=32, seed=123)
    engine.llm.reset_prefix_cache()
    a = engine.generate([GenerationRequest(PROMPT, n=3, params=params)])[0]
    engine.llm.reset_prefix_cache()
    b = engine.generate([GenerationRequest(PROMPT, n=3, params=params)])[0]
    assert [c.text for c in a.completions] == [c.text for c in b.completions]
    assert len({c.text for c in a.completions}) > 1  # the n samples differ from each other


def test_prompt_longer_than_context_is_refused_before_generation(engine):
    huge = Task("big", "word " * 3000, "1", source="mine.jsonl:7")
    ctx = Context(generator=engine)
    with pytest.raises(PromptTooLongError, match=r"mine\.jsonl:7: .* longer than the model's context of 2048"):
        check_prompts_fit([huge], ctx.generator, ctx.template)
    with pytest.raises(PromptTooLongError, match="request 0"):
        engine.generate([GenerationRequest(Prompt.chat(None, "word " * 3000))])


@pytest.mark.parametrize("name", ["single", "majority", "best_of_n", "weighted_best_of_n", "adaptive_consistency"])
def test_each_parallel_strategy_on_real_model_output(engine, gsm8k_tasks, name):
    tasks = gsm8k_tasks[:4]
    budget = 1 if name == "single" else 4
    ctx = Context(generator=engine, verifier=ArithmeticVerifier(), sampling=SamplingParams(max_tokens=256), seed=7)
    strategy = Strategy.create(name, budget=budget)
    results = strategy.solve(tasks, ctx)
    assert len(results) == len(tasks)
    for result in results:
        assert 1 <= len(result.candidates) <= budget
        assert result.chosen in result.candidates
        assert result.ledger.completion_tokens == sum(c.tokens for c in result.candidates)
        if Strategy.registry[name].uses_verifier:
            assert all(c.score is not None and 0 <= c.score <= 1 for c in result.candidates)
    row = summary_row(strategy.describe(), [r.correct for r in results], [r.ledger for r in results])
    assert row["questions"] == 4 and 0 <= row["accuracy"] <= 1
    assert row["completion_tokens"] == sum(r.ledger.completion_tokens for r in results)
