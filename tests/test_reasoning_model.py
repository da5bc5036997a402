"""A reasoning model on the real engine: a tiny random model built here from a config, with SmolLM2's
tokenizer and a chat template that thinks in tags. Budget forcing in tags, and the same model as the
reviser of `revisions` on an engine of its own beside the session's. Random weights: the assertions
are about structure (tags, token counts, which engine wrote what), not about answers."""

from __future__ import annotations

import pytest

from testtime.generators import SamplingParams, SecondModel
from testtime.reasoning import TAGS
from testtime.strategies import Context, Strategy
from testtime.tasks import Task
from tiny_model import tiny_model

pytestmark = pytest.mark.engine

TASKS = [Task("q1", "question one", "7"), Task("q2", "question two", "7")]

# In the shape of Qwen3's template: it opens the thought in the generation prompt and keeps only what
# follows </think> of an earlier assistant turn.
THINKING_TEMPLATE = (
    "{%- for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' %}{{ m['content'].split('</think>')[-1] }}{% else %}{{ m['content'] }}{% endif %}"
    "<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
)


@pytest.fixture(scope="module")
def thinking_model(tmp_path_factory, model_dir) -> str:
    """The model's folder."""
    folder = tmp_path_factory.mktemp("thinking-model")
    tiny_model(model_dir, folder, THINKING_TEMPLATE)
    return str(folder)


@pytest.fixture(scope="module")
def thinking_engine(thinking_model):
    """Its engine, opened once for this module as a second model would be (revisions' reviser shares it)."""
    model = SecondModel(thinking_model)
    yield model.generator
    model.close()


def test_a_model_whose_template_opens_the_thought_is_forced_in_tags(thinking_engine):
    gen = thinking_engine
    assert gen.thinks_in_tags and gen.opens_thinking  # read from the chat template alone
    ctx = Context(generator=gen, sampling=SamplingParams(max_tokens=48), seed=0)
    forcing = Strategy.create("budget_forcing", budget=2, max_thinking_tokens=8, answer_tokens=6)
    [result] = forcing.solve(TASKS[:1], ctx)
    assert result.details["thinking"] == "tags"
    for sample, candidate in zip(result.details["forcing"], result.candidates):
        # A random model never closes its thought itself: stopped at 8 tokens, closed, and asked for the answer.
        assert (sample["thinking_tokens"], sample["capped"]) == (8, True) and sample["answer_tokens"] <= 6
        assert candidate.reasoning_tokens == 8 and candidate.tokens == 8 + sample["answer_tokens"]
        thought, answer = TAGS.split(candidate.text)
        assert thought and "<think>" not in candidate.text and answer.startswith("\n\nFinal Answer:")
    # The ledger counts the thinking apart: the continuation inside the opened tag, not the answer after it.
    assert result.ledger.reasoning_tokens == 16 < result.ledger.completion_tokens


def test_a_reviser_writes_every_attempt_after_the_first_on_its_own_engine(engine, thinking_model, thinking_engine):
    strategy = Strategy.create("revisions", budget=2, reviser=thinking_model)
    results = strategy.solve(TASKS, Context(generator=engine, sampling=SamplingParams(max_tokens=24), seed=3))
    for result in results:
        [chain] = result.details["chains"]
        assert [a["model"] for a in chain] == [engine.name, thinking_engine.name] and [a["seen"] for a in chain] == [0, 1]
        # Each attempt's FLOPs are charged at the size of the model that wrote it, the reviser's far below SmolLM2's.
        ledger = result.ledger
        computed = ledger.prompt_tokens - ledger.cached_prompt_tokens + ledger.completion_tokens
        assert thinking_engine.parameter_count < engine.parameter_count / 10
        assert 2 * thinking_engine.parameter_count * computed < ledger.policy_flops < 2 * engine.parameter_count * computed
        # Reasoning is counted by the writer's own template: all of the reviser's reply is inside its opened thought.
        first, revised = result.candidates
        assert (first.reasoning_tokens, revised.reasoning_tokens) == (0, revised.tokens) == (0, ledger.reasoning_tokens)
