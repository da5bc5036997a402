"""DeepConf (strategies/deepconf.py) and the confidences it reads (confidence.py). The logic runs on a
scripted generator whose words carry known top log-probabilities (fakes.ConfidentGenerator), so the
exact filters, thresholds and early stops are known; then `testtime run` on the real engine."""

from __future__ import annotations

import json
import math

import pytest

from fakes import ConfidentGenerator
from testtime.confidence import group_confidences, token_confidence, token_self_certainty, trace_confidence
from testtime.generators import SamplingParams
from testtime.params import ParameterError
from testtime.strategies import Context, Strategy
from testtime.tasks import Task

TASK = Task("q1", "question one", "5")
SURE = 8.0 * 4 / 5 + 0.01 / 5  # a sure word's confidence: -(mean of its top-5 log-probabilities)
UNSURE = (1.5 + 1.7 * 4) / 5


def trace(words: str, answer: str) -> str:
    return f"{words} The answer is: {answer}"


def test_token_group_and_trace_confidences():
    assert token_confidence({"a": -0.01, "b": -8, "c": -8, "d": -8, "e": -8}) == pytest.approx(SURE)
    assert token_self_certainty({"a": -1.0, "b": -1.0}) == pytest.approx(0.0)  # flat: no certainty
    assert token_self_certainty({"a": -0.01, "b": -8}) > token_self_certainty({"a": -0.5, "b": -1.0}) > 0
    assert group_confidences([1, 2, 3, 4], 2) == [1.5, 2.5, 3.5] and group_confidences([1, 3], 4) == [2.0]
    sure, unsure = {"a": -0.01, "b": -8.0}, {"a": -1.5, "b": -1.7}
    tops = [sure] * 18 + [unsure] * 2  # 20 tokens, the last two unsure; groups of 2
    assert trace_confidence(tops, "lowest", 2, 4) == pytest.approx(1.6)
    assert trace_confidence(tops, "tail", 2, 4) == pytest.approx((2 * 4.005 + 2 * 1.6) / 4)
    assert trace_confidence(tops, "bottom10", 2, 4) == pytest.approx((1.6 + (4.005 + 1.6) / 2) / 2)  # 2 of 19 groups
    assert trace_confidence(tops, "mean", 2, 4) == pytest.approx((18 * 4.005 + 2 * 1.6) / 20)


def test_offline_keeps_the_most_confident_traces_and_weights_their_votes():
    # One sure trace says 5; three unsure ones say 3. Majority says 3; confidence says 5.
    texts = [trace("sure sure sure sure", "5")] + [trace("~um ~er ~well ~so", "3")] * 3
    gen = ConfidentGenerator(lambda question, k: texts[k])
    ctx = Context(generator=gen, sampling=SamplingParams(max_tokens=64))
    [filtered] = Strategy.create("deepconf", budget=4, keep=0.25, window=4).solve([TASK], ctx)
    assert filtered.prediction == "5" and filtered.details["voters"] == [0]
    [request] = gen.calls[0]
    assert (request.n, request.params.logprobs) == (4, 5) and len(gen.calls) == 1  # one batched call
    [weighted] = Strategy.create("deepconf", budget=4, keep=1.0, window=4).solve([TASK], Context(
        generator=ConfidentGenerator(lambda question, k: texts[k]), sampling=SamplingParams(max_tokens=64)))
    assert weighted.prediction == "5"  # 5's one sure vote outweighs 3's three unsure ones
    [plain] = Strategy.create("deepconf", budget=4, keep=1.0, selector="majority").solve([TASK], Context(
        generator=ConfidentGenerator(lambda question, k: texts[k]), sampling=SamplingParams(max_tokens=64)))
    assert plain.prediction == "3"


def test_online_stops_an_unsure_trace_mid_generation_and_the_question_at_consensus():
    sure = "sure " * 7
    texts = [trace("a sure sure sure", "5"),  # warm-up: sure, says 5
             trace("b ?hm sure ?hm", "3"),  # warm-up: half sure, says 3; its lowest group is the threshold
             trace("c sure sure sure", "5"),  # finishes in round 2 (8 words, 4 a round)
             trace("d sure sure sure ~um ~um ~um ~um", "3"),  # unsure from word 5: stopped after round 2
             trace("e " + sure, "5"),  # finishes in round 3: then 5 holds 80 % of the vote's weight > tau
             trace("f " + sure * 5, "5")]  # still writing in round 3: stopped at consensus
    gen = ConfidentGenerator(lambda question, k: texts[k])
    ctx = Context(generator=gen, sampling=SamplingParams(max_tokens=64))
    online = Strategy.create("deepconf", budget=6, mode="online", warmup=2, keep=1.0, window=4, chunk=4, tau=0.75)
    [result] = online.solve([TASK], ctx)
    reasons = [c.finish_reason for c in result.candidates]
    assert reasons == ["stop", "stop", "stop", "aborted", "stop", "aborted"]
    assert [len(call) for call in gen.calls] == [1, 4, 4, 2]  # warm-up (n=2), then rounds of 4-token chunks
    assert result.prediction == "5" and result.details["voters"] == [0, 1, 2, 4]
    assert result.details["aborted"] == 2 and result.candidates[3].answer is None
    # Stopped traces' tokens are charged: 8 of the unsure one and 12 of the long one.
    assert result.candidates[3].tokens == 8 and result.candidates[5].tokens == 12
    assert result.ledger.completion_tokens == sum(c.tokens for c in result.candidates)
    assert result.details["threshold"] == pytest.approx((SURE + (0.5 + 4 * 4) / 5) / 2)  # b's lowest group


def test_online_draws_nothing_more_where_the_warmup_already_agrees():
    gen = ConfidentGenerator(lambda question, k: trace("sure sure sure", "5"))
    [result] = Strategy.create("deepconf", budget=8, mode="online", warmup=2).solve(
        [TASK], Context(generator=gen, sampling=SamplingParams(max_tokens=64)))
    assert len(gen.calls) == 1 and len(result.candidates) == 2 and result.prediction == "5"


def test_a_warmup_trace_with_no_answer_is_no_consensus():
    texts = [trace("sure sure sure", "5"), "sure sure sure sure no answer here"] + [trace("sure sure", "5")] * 2
    gen = ConfidentGenerator(lambda question, k: texts[k])
    [result] = Strategy.create("deepconf", budget=4, mode="online", warmup=2, tau=0.9).solve(
        [TASK], Context(generator=gen, sampling=SamplingParams(max_tokens=64)))
    # 5 holds half the warm-up's weight, not 0.9 of it: the other two traces are drawn.
    assert len(result.candidates) == 4 and result.prediction == "5" and len(gen.calls) == 2


def test_one_confident_warmup_trace_is_no_consensus():
    # keep=0.1: the threshold is near the surer warm-up trace's lowest group, so it alone passes. One
    # vote agreeing with itself must not end the question at warm-up (it did: DeepConf-low was best-of-warm-up).
    texts = [trace("sure sure sure", "5"), trace("~um ~er ~so", "3")] + [trace("sure sure sure", "5")] * 2
    gen = ConfidentGenerator(lambda question, k: texts[k])
    [result] = Strategy.create("deepconf", budget=4, mode="online", warmup=2, keep=0.1, window=2).solve(
        [TASK], Context(generator=gen, sampling=SamplingParams(max_tokens=64)))
    assert len(gen.calls) > 1 and len(result.candidates) == 4
    assert result.prediction == "5" and 1 not in result.details["voters"] and len(result.details["voters"]) >= 2


def test_a_backend_without_log_probabilities_is_a_clear_error():
    from fakes import ScriptedGenerator

    with pytest.raises(ValueError, match="returned no top log-probabilities; deepconf needs a backend that honours"):
        Strategy.create("deepconf", budget=2).solve([TASK], Context(generator=ScriptedGenerator(lambda q, k: "7")))


@pytest.mark.parametrize("params, message", [
    ({"mode": "later"}, "mode must be one of offline, online, got 'later'"),
    ({"measure": "vibes"}, "measure must be one of mean, bottom10, lowest, tail, self_certainty"),
    ({"keep": 0}, "keep must be in (0, 1], got 0"),
    ({"tau": 1.5}, "tau must be in (0, 1], got 1.5"),
    ({"mode": "online", "budget": 2, "warmup": 4}, "warmup (4) must be at most the budget (2)"),
    ({"window": 0}, "window must be an integer >= 1, got 0"),
    ({"top_k": 50}, "top_k must be at most 20"),
])
def test_bad_parameters_are_named(params, message):
    with pytest.raises((ValueError, ParameterError), match=message.replace("(", r"\(").replace(")", r"\)")):
        Strategy.create("deepconf", **params)


@pytest.mark.engine
def test_deepconf_from_the_cli_on_the_real_model(on_engine, tmp_path):
    common = ("--dataset", "sample", "--limit", "2", "--n", "4", "--max-tokens", "48", "--strategy", "deepconf")
    for mode in ("offline", "online"):
        done = on_engine("run", *common, "--param", f"mode={mode}", "--param", "warmup=2", "--param", "chunk=16",
                         "--out", tmp_path / mode)
        assert done.exit_code == 0, done.output[-3000:]
        for line in map(json.loads, (tmp_path / mode / "results.jsonl").read_text().splitlines()):
            assert len(line["confidences"]) == len(line["candidates"]) and all(
                math.isfinite(c) and c > 0 for c in line["confidences"])  # every token's top-5 was read
            assert line["ledger"]["completion_tokens"] == sum(c["tokens"] for c in line["candidates"])
            assert all(line["candidates"][k]["finish_reason"] != "aborted" for k in line["voters"])


def test_self_certainty_votes_by_rank_of_the_models_own_certainty():
    # The same draws as above: one sure trace says 5, three half-unsure ones say 3 (each "~" word flat).
    texts = [trace("sure sure sure sure", "5")] + [trace("~um ~er ~well ~so", "3")] * 3

    def solve(**params):
        gen = ConfidentGenerator(lambda question, k: texts[k])
        [result] = Strategy.create("self_certainty", budget=4, **params).solve(
            [TASK], Context(generator=gen, sampling=SamplingParams(max_tokens=64)))
        return result, gen

    borda, gen = solve()
    [request] = gen.calls[0]
    assert (request.n, request.params.logprobs) == (4, 5) and len(gen.calls) == 1
    certainties = borda.details["self_certainties"]
    assert certainties[0] > certainties[1] == certainties[2] == certainties[3] > 0
    # Borda (p = 0.5): 5's rank-1 weight 4 ** 0.5 = 2 loses to 3's three tied rank-2 weights, 3 * 3 ** 0.5.
    assert borda.prediction == "3" and [c.score for c in borda.candidates] == certainties
    assert solve(selector="best")[0].prediction == "5"  # the single most certain sample


@pytest.mark.parametrize("params, message", [
    ({"top_k": 50}, "'self_certainty': top_k must be at most 20"),
    ({"budget": 0}, "'self_certainty': budget must be an integer >= 1, got 0"),
    ({"selector": "vibes"}, "'self_certainty': selector must be one of best, majority, weighted, borda"),
])
def test_self_certainty_bad_parameters_are_named(params, message):
    with pytest.raises((ValueError, ParameterError), match=message):
        Strategy.create("self_certainty", **params)
