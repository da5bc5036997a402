"""The LLM judge (verifiers/judge.py) and the top log-probabilities it reads from generators."""

from __future__ import annotations

import math

import pytest
from fakes import LogprobGenerator, ScriptedGenerator, cycle

from testtime.generators import GenerationRequest, Prompt, SamplingParams
from testtime.ledger import Ledger
from testtime.verifiers import Solution, Verifier
from testtime.verifiers.judge import LLMJudge, p_yes

ln = math.log


# --- p_yes, by hand ---------------------------------------------------------------------------


def test_p_yes_is_the_share_of_yes_in_the_yes_no_mass():
    # 0.6 / (0.6 + 0.2); "Maybe" takes no part
    assert p_yes({"Yes": ln(0.6), "No": ln(0.2), "Maybe": ln(0.1)}) == pytest.approx(0.75)


def test_p_yes_adds_every_spelling_that_normalises_to_yes_or_no():
    top = {" Yes": ln(0.3), "YES": ln(0.1), "yes": ln(0.2), " no": ln(0.25), "NO\n": ln(0.15)}
    # yes: 0.3 + 0.1 + 0.2 = 0.6; no: 0.25 + 0.15 = 0.4
    assert p_yes(top) == pytest.approx(0.6)


def test_p_yes_counts_only_whole_words_after_stripping_whitespace():
    # "Yes." and "Yesterday" are not "yes" once stripped and lowercased; only "No" is left
    assert p_yes({"Yes.": ln(0.5), "Yesterday": ln(0.3), "No": ln(0.1)}) == 0.0
    assert p_yes({"\tyes ": ln(0.1), "Nope": ln(0.8)}) == 1.0


def test_p_yes_is_one_half_when_neither_answer_is_listed():
    assert p_yes({"The": ln(0.7), "I": ln(0.2)}) == 0.5
    assert p_yes({}) == 0.5
    assert p_yes({"yes": -math.inf, "no": -math.inf}) == 0.5


def test_p_yes_does_not_underflow_on_very_unlikely_answers():
    # exp(-1000) is 0.0 in floating point; the ratio is still 1 / (1 + e^-1)
    assert p_yes({"yes": -1000.0, "no": -1001.0}) == pytest.approx(1 / (1 + math.exp(-1)))


# --- LLMJudge on a fake generator -------------------------------------------------------------


def _tops(user_message: str) -> dict[str, float]:
    """Chosen top log-probabilities by which solution the prompt carries."""
    if "solution A" in user_message:
        return {"Yes": ln(0.7), "No": ln(0.1), "The": ln(0.2)}
    if "solution B" in user_message:
        return {" no": ln(0.6), "yes": ln(0.2), " Yes": ln(0.1)}
    return {"The": ln(0.9), "I": ln(0.1)}  # neither answer


SOLUTIONS = [Solution("What is 2 + 2?", f"solution {x}: the answer is 4") for x in "ABC"]


def test_judge_scores_a_batch_in_one_generate_call():
    gen = LogprobGenerator(_tops)
    judge = LLMJudge(gen)
    assert judge.score(SOLUTIONS) == pytest.approx([0.7 / 0.8, 0.3 / 0.9, 0.5])
    assert len(gen.calls) == 1
    [requests] = gen.calls
    assert len(requests) == 3
    for request, solution in zip(requests, SOLUTIONS):
        assert request.n == 1
        assert request.params.temperature == 0 and request.params.max_tokens == 1
        assert request.params.logprobs == 20
        [(role, text)] = request.prompt.messages
        assert role == "user" and solution.question in text and solution.text in text
        assert "yes or no" in text


def test_judge_reads_only_the_top_alternatives_it_asks_for():
    gen = LogprobGenerator(lambda _: {"The": -0.1, "Yes": -2.0, "No": -3.0})
    assert LLMJudge(gen).score(SOLUTIONS[:1]) == pytest.approx([math.exp(-2) / (math.exp(-2) + math.exp(-3))])
    # with two alternatives "No" is not seen: all the yes/no mass is "Yes"
    assert LLMJudge(gen, top_logprobs=2).score(SOLUTIONS[:1]) == [1.0]
    assert gen.calls[-1][0].params.logprobs == 2


def test_judge_charges_prompt_plus_one_token_at_the_generators_size():
    gen = LogprobGenerator(_tops, prompt_tokens=37)
    judge = LLMJudge(gen)
    ledgers = [Ledger(), Ledger()]
    [a, b] = judge.score_steps(SOLUTIONS[:2], ledgers)
    assert a.tokens == b.tokens == 38
    assert judge.parameter_count == gen.parameter_count == 2000
    assert ledgers[0].verifier_tokens == 38 and ledgers[0].verifier_flops == 2.0 * 2000 * 38
    assert ledgers[0].verifier_calls == 1
    assert judge.score_steps([]) == [] and len(gen.calls) == 1  # nothing to judge, no call


def test_custom_template_and_registration():
    gen = LogprobGenerator(_tops)
    judge = LLMJudge(gen, question_template="Q: {question}\nA: {solution}\nRight? yes/no")
    judge.score(SOLUTIONS[:1])
    assert gen.calls[0][0].prompt.messages[0][1] == "Q: What is 2 + 2?\nA: solution A: the answer is 4\nRight? yes/no"
    assert Verifier.lookup("llm_judge") is LLMJudge
    assert Verifier.create("llm_judge", generator=gen).generator is gen


def test_bad_settings_are_refused():
    gen = LogprobGenerator(_tops)
    with pytest.raises(ValueError, match=r"\{solution\}"):
        LLMJudge(gen, question_template="Is this right: {question}")
    with pytest.raises(ValueError, match="top_logprobs"):
        LLMJudge(gen, top_logprobs=0)


def test_a_generator_without_logprobs_is_an_error_not_a_score():
    with pytest.raises(ValueError, match="no top log-probabilities"):
        LLMJudge(ScriptedGenerator(cycle("Yes"))).score(SOLUTIONS[:1])


# --- the generator interface ------------------------------------------------------------------


def test_sampling_params_logprobs():
    assert SamplingParams().logprobs is None
    assert SamplingParams(logprobs=0).logprobs == 0 and SamplingParams(logprobs=20).logprobs == 20
    with pytest.raises(ValueError, match="logprobs"):
        SamplingParams(logprobs=-1)


def test_openai_choice_logprobs_become_one_dict_per_token():
    """The OpenAI backend's conversion, on a response object built from JSON (no server here)."""
    from openai.types.chat import ChatCompletion

    from testtime.generators.openai_http import top_logprobs

    def alt(token, logprob):
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    response = ChatCompletion.model_validate({
        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [
            {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Yes it"},
             "logprobs": {"content": [
                 {**alt("Yes", -0.2), "top_logprobs": [alt("Yes", -0.2), alt("No", -1.9), alt("\ufffd", -4.0),
                                                       alt("\ufffd", -5.0)]},
                 {**alt(" it", -0.5), "top_logprobs": [alt(" it", -0.5), alt(" is", -1.0)]},
             ]}},
            {"index": 1, "finish_reason": "length", "message": {"role": "assistant", "content": "No"},
             "logprobs": None},
        ],
    })
    first, second = response.choices
    tops = top_logprobs(first)
    assert len(tops) == 2
    assert tops[1] == {" it": -0.5, " is": -1.0}
    # two tokens that both show as U+FFFD (partial UTF-8) are one text: their probabilities add
    assert tops[0]["\ufffd"] == pytest.approx(math.log(math.exp(-4.0) + math.exp(-5.0)))
    assert tops[0]["Yes"] == -0.2 and tops[0]["No"] == -1.9 and len(tops[0]) == 3
    assert top_logprobs(second) is None  # the server sent none


# --- the real embedded model through in-process vLLM ------------------------------------------


def _hand_p_yes(top: dict[str, float]) -> float:
    yes = sum(math.exp(lp) for t, lp in top.items() if t.strip().lower() == "yes")
    no = sum(math.exp(lp) for t, lp in top.items() if t.strip().lower() == "no")
    return yes / (yes + no)


@pytest.mark.engine
def test_vllm_top_logprobs_per_generated_token(engine):
    prompt = Prompt.chat(None, "Name three colours.")
    requests = [GenerationRequest(prompt, params=SamplingParams(temperature=0.0, max_tokens=8, logprobs=k))
                for k in (None, 0, 5)]
    plain, zero, five = engine.generate(requests)
    assert plain.completions[0].top_logprobs is None  # not asked for, as before
    [c0], [c5] = zero.completions, five.completions
    assert c0.text == c5.text  # asking for logprobs changes nothing generated
    assert c0.top_logprobs == ({},) * c0.token_count
    assert len(c5.top_logprobs) == c5.token_count == 8
    for top in c5.top_logprobs:
        assert 1 <= len(top) <= 5 and all(lp <= 0 for lp in top.values())
    # greedy: each generated token is its position's most likely one
    assert sum(max(top.values()) for top in c5.top_logprobs) == pytest.approx(c5.cumulative_logprob, abs=1e-3)
    assert c5.text.startswith(max(c5.top_logprobs[0], key=c5.top_logprobs[0].get))


@pytest.mark.engine
def test_judge_on_the_real_model_matches_a_hand_computation(engine):
    k = 20
    judge = LLMJudge(engine, top_logprobs=k)
    solutions = [
        Solution("What is 2 + 2?", "2 + 2 = 4. The answer is: 4"),
        Solution("What is 2 + 2?", "2 + 2 = 5. The answer is: 5"),
        Solution("Tom has 3 apples and buys 5 more. How many apples?", "3 + 5 = 8. The answer is: 8"),
    ]
    # Both calls from a cold prefix cache: in bfloat16 a cache hit may round differently from the
    # prefill that filled it, and only equal cache states promise equal logprobs.
    engine.llm.reset_prefix_cache()
    scores = judge.score(solutions)
    assert len(scores) == 3 and all(0 < s < 1 for s in scores), scores

    # The same prompts, straight to the engine: vLLM's own top alternatives, scored by hand.
    engine.llm.reset_prefix_cache()
    results = engine.generate([judge.request(s) for s in solutions])
    for score, result in zip(scores, results):
        [completion] = result.completions
        [top] = completion.top_logprobs
        assert len(top) <= k
        assert any(t.strip().lower() in ("yes", "no") for t in top), top
        assert score == pytest.approx(_hand_p_yes(top), abs=1e-4)
