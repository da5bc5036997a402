"""Budget forcing (strategies/budget_forcing.py) and reasoning in tags (reasoning.py).

The forcing logic runs on a scripted generator that continues a reply word by word (fakes.py), so
the exact prompts, cuts and token counts are known; then `testtime run` on the real engine."""

from __future__ import annotations

import json

import pytest

from fakes import ContinuingGenerator
from testtime.params import ParameterError
from testtime.reasoning import TAGS, Thinking
from testtime.strategies import Context, Strategy
from testtime.strategies.base import make_candidate
from testtime.tasks import Task

TASKS = [Task("q1", "question one", "7"), Task("q2", "question two", "7")]


def tagged(question: str, so_far: str) -> str:
    """A model that thinks in tags: 10 words of thought, then 5 more after each Wait; answer 5, then 7."""
    if so_far.endswith("Final Answer:"):
        return "7 and more words after it"
    if TAGS.close in so_far:
        return "The answer is: 7"
    if so_far.endswith("Wait"):
        return "more " * 5 + "</think> The answer is: 7"
    return ("" if so_far.endswith(TAGS.open + "\n") else "<think> ") + "step " * 10 + "</think> The answer is: 5"


def untagged(question: str, so_far: str) -> str:
    """A model without tags: its whole turn is its thinking, ending in an answer."""
    if so_far.endswith("Final Answer:"):
        return "7"
    if so_far.endswith("Wait"):
        return "more " * 5 + "so the answer is: 7"
    return "step " * 10 + "so the answer is: 5"


def continuations(gen) -> list[list[str]]:
    return [[r.prompt.continuation for r in call] for call in gen.calls]


def test_short_thinking_in_tags_is_extended_with_wait_up_to_max_waits():
    gen = ContinuingGenerator(tagged)
    strategy = Strategy.create("budget_forcing", budget=2, min_thinking_tokens=20, max_waits=2, thinking="tags")
    [r1, r2] = strategy.solve(TASKS, Context(generator=gen))
    # Round 1 (in the thought testtime opened): 11 tokens (< 20): its </think> is cut and Wait appended;
    # round 2: 6 more (17 < 20): Wait again; round 3: 23 tokens, the thought closes; round 4: the answer.
    assert [len(call) for call in gen.calls] == [4, 4, 4, 4]  # every question's samples in each round
    first, second, third, fourth = continuations(gen)
    assert all(c == TAGS.open + "\n" for c in first)  # the reply begins in its thought
    assert second[0].endswith("step\n\nWait") and TAGS.close not in second[0]
    assert third[0].count("Wait") == 2 and TAGS.close not in third[0]
    assert fourth[0].endswith(TAGS.close)
    assert all(r.params.stop == (TAGS.close,) for call in gen.calls[:3] for r in call)
    assert r1.details["forcing"][0] == {"thinking_tokens": 23, "answer_tokens": 4, "waits": 2, "capped": False}
    assert r1.details["thinking"] == "tags" and r1.prediction == "7" and r1.correct
    candidate = r1.candidates[0]
    assert candidate.tokens == 27 and candidate.reasoning_tokens == 23
    assert r1.ledger.completion_tokens == 2 * 27
    # The generator's own count of what was in tags: the tokens before each </think> it wrote (three
    # per sample, two of them cut for a Wait); forcing counts the tags among its thinking tokens.
    assert r1.ledger.reasoning_tokens == 2 * (23 - 3)


def test_long_thinking_is_stopped_at_max_thinking_tokens_and_the_cue_asks_for_the_answer():
    gen = ContinuingGenerator(tagged)
    strategy = Strategy.create("budget_forcing", budget=1, max_thinking_tokens=8, answer_tokens=3, thinking="tags")
    [result] = strategy.solve(TASKS[:1], Context(generator=gen))
    think, answer = gen.calls
    assert think[0].params.max_tokens == 8 and answer[0].params.max_tokens == 3
    assert answer[0].prompt.continuation.endswith(f"step\n{TAGS.close}\n\nFinal Answer:")
    assert result.details["forcing"] == [{"thinking_tokens": 8, "answer_tokens": 3, "waits": 0, "capped": True}]
    assert result.prediction == "7"  # read after the cue, not from the thought (which never answered)


def test_a_model_without_tags_thinks_for_its_whole_turn():
    gen = ContinuingGenerator(untagged)
    strategy = Strategy.create("budget_forcing", budget=1, min_thinking_tokens=16, max_waits=3)  # auto: no tags here
    [result] = strategy.solve(TASKS[:1], Context(generator=gen))
    assert result.details["thinking"] == "turn"
    assert all(r.params.stop == () for call in gen.calls for r in call)
    # 15 tokens, then 10 more after one Wait: 25 >= 16, done without an answer round.
    assert result.details["forcing"] == [{"thinking_tokens": 25, "answer_tokens": 0, "waits": 1, "capped": False}]
    assert result.prediction == "7" and result.candidates[0].reasoning_tokens == 0
    capped = Strategy.create("budget_forcing", budget=1, max_thinking_tokens=6).solve(
        TASKS[:1], Context(generator=ContinuingGenerator(untagged)))
    assert capped[0].details["forcing"][0]["capped"] and capped[0].prediction == "7"


def test_auto_follows_the_generator_and_max_tokens_bounds_the_whole_reply():
    gen = ContinuingGenerator(tagged, thinks_in_tags=True)
    ctx = Context(generator=gen)
    ctx.sampling = type(ctx.sampling)(max_tokens=20)
    [result] = Strategy.create("budget_forcing", budget=1, min_thinking_tokens=100, max_waits=5).solve(TASKS[:1], ctx)
    assert result.details["thinking"] == "tags"
    # Each round asks only for what the reply has left: 20 tokens in all, however many Waits were due.
    assert result.candidates[0].tokens <= 20 and result.details["forcing"][0]["waits"] < 5


@pytest.mark.parametrize("params, message", [
    ({"max_thinking_tokens": 10, "min_thinking_tokens": 20}, "max_thinking_tokens (10) is below min_thinking_tokens (20)"),
    ({"max_waits": -1}, "max_waits must be an integer >= 0, got -1"),
    ({"thinking": "loud"}, "thinking must be one of auto, tags, turn, got 'loud'"),
    ({"wait": " "}, "wait and answer_cue must not be empty"),
    ({"answer_tokens": 0}, "answer_tokens must be an integer >= 1, got 0"),
])
def test_bad_parameters_are_named(params, message):
    with pytest.raises((ValueError, ParameterError), match=message.replace("(", r"\(").replace(")", r"\)")):
        Strategy.create("budget_forcing", **params)


def test_reasoning_is_split_from_the_answer_with_or_without_the_opening_tag():
    assert TAGS.split("<think>a b</think> The answer is 3") == ("a b", " The answer is 3")
    assert TAGS.split("a b</think>ok") == ("a b", "ok")  # the chat template opened it
    assert TAGS.split("<think>cut mid-thought") == ("cut mid-thought", "")
    assert TAGS.split("more thought", inside=True) == ("more thought", "")
    assert TAGS.split("plain answer 4") == ("", "plain answer 4")
    assert TAGS.is_open("x <think> y") and not TAGS.is_open("<think> y </think> z")
    custom = Thinking("<reasoning>", "</reasoning>")
    assert custom.split("<reasoning>r</reasoning>a") == ("r", "a")
    with pytest.raises(ValueError, match="two different non-empty strings"):
        Thinking("<t>", "<t>")
    # An answer is read after the thinking: a number in the thought does not count.
    assert make_candidate("<think>maybe 12</think>The answer is 5", 9).answer == "5"
    assert make_candidate("<think>maybe 12", 9).answer is None


@pytest.mark.engine
def test_budget_forcing_from_the_cli_caps_thinking_on_the_real_model(on_engine, tmp_path):
    done = on_engine("run", "--dataset", "sample", "--limit", "2", "--n", "2", "--strategy", "budget_forcing",
                     "--max-tokens", "96", "--param", "max_thinking_tokens=24", "--param", "answer_tokens=8",
                     "--out", tmp_path / "capped")
    assert done.exit_code == 0, done.output[-3000:]
    lines = [json.loads(line) for line in (tmp_path / "capped" / "results.jsonl").read_text().splitlines()]
    samples = [(s, c) for line in lines for s, c in zip(line["forcing"], line["candidates"])]
    assert all(line["thinking"] == "turn" for line in lines)  # SmolLM2 does not think in tags
    for sample, candidate in samples:
        assert sample["thinking_tokens"] <= 24 and sample["answer_tokens"] <= 8
        assert candidate["tokens"] == sample["thinking_tokens"] + sample["answer_tokens"]
        assert sample["capped"] == ("Final Answer:" in candidate["text"])
    assert any(s["capped"] for s, _ in samples)  # the default prompt's solutions run past 24 tokens


@pytest.mark.engine
def test_budget_forcing_makes_the_real_model_think_past_its_own_end(engine):
    from testtime.generators import SamplingParams
    from testtime.prompting import PromptTemplate
    from testtime.tasks import load_dataset

    tasks = load_dataset("sample", limit=2)
    terse = Context(generator=engine, sampling=SamplingParams(max_tokens=160), seed=0,
                    template=PromptTemplate(system="Give only the answer, as a number, in one short sentence."))
    forced = Strategy.create("budget_forcing", budget=2, min_thinking_tokens=64, max_waits=2).solve(tasks, terse)
    samples = [(s, c) for r in forced for s, c in zip(r.details["forcing"], r.candidates)]
    # Every sample thought at least 64 tokens, or was extended twice, or ran out of max_tokens.
    for s, c in samples:
        assert s["thinking_tokens"] >= 64 or s["waits"] == 2 or c.finish_reason == "length"
        assert c.text.count("\n\nWait") >= s["waits"]
    extended = [c for s, c in samples if s["waits"]]
    assert extended  # this prompt's short replies end early
    # The model wrote on after a "Wait", past where it had ended. (Not against an unforced run of the same
    # seeds: in bfloat16 a prefix-cache hit may change a draw, so two runs need not share their beginnings.)
    assert any(part.strip() for c in extended for part in c.text.split("\n\nWait")[1:])


def test_a_thought_in_tags_is_split_into_steps_by_paragraph_sentence_or_turn():
    from testtime.steps import split_steps
    from testtime.verifiers.base import Solution

    text = "<think>3 + 4 = 7. So 7 apples.\n\nWait, check: 4 + 3 = 7. Alternatively count up.</think>\n\nThe answer is 7"
    assert split_steps(text) == ["3 + 4 = 7. So 7 apples.", "Wait, check: 4 + 3 = 7. Alternatively count up.",
                                 "The answer is 7"]
    assert split_steps(text, thinking="sentence") == ["3 + 4 = 7.", "So 7 apples.", "Wait, check: 4 + 3 = 7.",
                                                      "Alternatively count up.", "The answer is 7"]
    assert split_steps(text, thinking="markers") == ["3 + 4 = 7. So 7 apples.", "Wait, check: 4 + 3 = 7.",
                                                     "Alternatively count up.", "The answer is 7"]
    assert Solution("q", text, thinking_split="markers").steps == split_steps(text, thinking="markers")
    with pytest.raises(ValueError, match="thinking split 'words'"):  # refused when the run is set up
        Context(generator=ContinuingGenerator(untagged), thinking_split="words")
    assert split_steps("a\n\nb") == ["a", "b"]  # no tags: the delimiter as before
    with pytest.raises(ValueError, match="thinking split 'words' is not one of paragraph, sentence, markers"):
        split_steps(text, thinking="words")


def test_reasoning_tokens_are_counted_where_the_chat_template_opened_the_thought():
    from testtime.generators import GenerationRequest, Prompt
    from testtime.ledger import Ledger

    gen = ContinuingGenerator(lambda question, so_far: "one two three four", thinks_in_tags=True)
    plain, opened = Ledger(), Ledger()
    gen.generate([GenerationRequest(Prompt.chat(None, "q"))], [plain])
    gen.opens_thinking = True  # a reply now starts inside thinking, with no tag of its own
    gen.generate([GenerationRequest(Prompt.chat(None, "q"))], [opened])
    assert (plain.reasoning_tokens, opened.reasoning_tokens) == (0, 4)
    after = Ledger()  # once the continuation closed the thought, the rest is the answer
    gen.generate([GenerationRequest(Prompt.chat(None, "q").extend("x</think>"))], [after])
    assert after.reasoning_tokens == 0 and after.completion_tokens == 4
