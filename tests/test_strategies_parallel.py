"""Parallel strategies on the scripted generator, where the right choice is known exactly."""

import re

import pytest

from fakes import ScriptedGenerator, cycle
from testtime.strategies import Context, Pool, PoolSource, Strategy
from testtime.strategies.adaptive_consistency import AdaptiveConsistency, prob_leader_is_majority
from testtime.tasks import Task
from testtime.verifiers.arithmetic import ArithmeticVerifier

TASKS = [Task("q1", "question one", "12"), Task("q2", "question two", "7")]

# Wrong answers are the majority, the right one has correct arithmetic.
SCRIPT = cycle(
    "3 * 4 = 13\n\nThe answer is: 13",
    "3 * 4 = 12\n\nThe answer is: 12",
    "3 * 4 = 13\n\nThe answer is: 13",
    "I think 5 + 5 = 11\n\nThe answer is: 11",
)


def ctx(script=SCRIPT):
    return Context(generator=ScriptedGenerator(script), verifier=ArithmeticVerifier())


def test_majority_follows_the_votes():
    results = Strategy.create("majority", budget=4).solve(TASKS[:1], ctx())
    assert results[0].prediction == "13" and not results[0].correct
    # a verifier in the context scores the candidates for the record, without changing the vote
    assert all(c.score is not None for c in results[0].candidates)
    assert results[0].ledger.verifier_calls == 1
    bare = Strategy.create("majority", budget=4).solve(TASKS[:1], Context(generator=ScriptedGenerator(SCRIPT)))
    assert bare[0].prediction == "13" and all(c.score is None for c in bare[0].candidates)
    assert bare[0].ledger.verifier_calls == 0


def test_best_of_n_follows_the_verifier():
    results = Strategy.create("best_of_n", budget=4).solve(TASKS[:1], ctx())
    assert results[0].prediction == "12" and results[0].correct
    assert [c.score for c in results[0].candidates] == [pytest.approx(0.09), 0.9, pytest.approx(0.09), pytest.approx(0.09)]


def test_weighted_best_of_n_sums_scores():
    # two "13"s at 0.09 each lose to one "12" at 0.9
    results = Strategy.create("weighted_best_of_n", budget=4).solve(TASKS[:1], ctx())
    assert results[0].prediction == "12"


def test_single_takes_the_first_sample():
    results = Strategy.create("single").solve(TASKS[:1], ctx())
    assert results[0].prediction == "13" and len(results[0].candidates) == 1
    with pytest.raises(ValueError, match="budget must be 1"):
        Strategy.create("single", budget=4)


def test_all_questions_share_one_generate_call():
    c = ctx()
    Strategy.create("best_of_n", budget=8).solve(TASKS, c)
    assert len(c.generator.calls) == 1
    assert [r.n for r in c.generator.calls[0]] == [8, 8]


def test_ledger_counts_what_the_generator_reported():
    c = ctx()
    [r] = Strategy.create("majority", budget=4).solve(TASKS[:1], c)
    assert r.ledger.prompt_tokens == 10 and r.ledger.cached_prompt_tokens == 4
    assert r.ledger.completion_tokens == sum(len(cand.text.split()) for cand in r.candidates)
    assert r.ledger.policy_flops == 2 * 1000 * (10 - 4 + r.ledger.completion_tokens)


@pytest.mark.parametrize("budget, message", [
    (0, "strategy 'majority': budget must be an integer >= 1, got 0"),
    (-1, "budget must be an integer >= 1, got -1"),
    (2.5, "strategy 'majority': parameter budget = 2.5: expected an integer"),
    ("8", "strategy 'majority': parameter budget = '8': expected an integer"),
])
def test_budget_below_one_or_not_an_integer_is_refused(budget, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Strategy.create("majority", budget=budget)


def test_unknown_strategy_lists_known_ones():
    with pytest.raises(ValueError, match="unknown strategy 'nope'; known strategies: .*majority"):
        Strategy.create("nope")


def test_verifier_strategies_need_a_verifier():
    with pytest.raises(ValueError, match="needs a verifier"):
        Strategy.create("best_of_n", budget=2).solve(TASKS, Context(generator=ScriptedGenerator(SCRIPT)))


def test_prob_leader_is_majority_matches_beta_tail():
    # P(Beta(5, 1) > 1/2) = 1 - 0.5**5
    assert prob_leader_is_majority(4, 0) == pytest.approx(1 - 0.5**5)
    # symmetric case: exactly one half
    assert prob_leader_is_majority(3, 3) == pytest.approx(0.5)


def test_adaptive_stops_early_on_easy_questions_and_spends_more_on_hard_ones():
    def script(question, index):
        if question == "question one":  # easy: always the same answer
            return "The answer is: 12"
        return f"The answer is: {index % 3}"  # hard: answers disagree

    c = ctx(script)
    results = AdaptiveConsistency(budget=16).solve(TASKS, c)
    easy, hard = results
    assert len(easy.candidates) == 4 and easy.details["rounds"] == 1
    assert len(hard.candidates) == 16 and hard.details["rounds"] == 4
    # one generate call per round, each for every question still sampling
    assert [len(call) for call in c.generator.calls] == [2, 1, 1, 1]
    assert easy.ledger.completion_tokens < hard.ledger.completion_tokens


def test_pool_evaluation_charges_only_the_samples_used():
    c = ctx()
    pool = Pool.draw(TASKS, c, 8)
    [r2] = Strategy.create("majority", budget=2).solve_from(PoolSource(pool), TASKS[:1], c)
    [r8] = Strategy.create("majority", budget=8).solve_from(PoolSource(pool), TASKS[:1], c)
    assert [x.text for x in r2.candidates] == [x.text for x in pool.candidates[0][:2]]
    assert r2.ledger.completion_tokens == sum(x.tokens for x in pool.candidates[0][:2])
    assert r8.ledger.completion_tokens == sum(x.tokens for x in pool.candidates[0])
    assert r2.ledger.prompt_tokens == r8.ledger.prompt_tokens == 10
    with pytest.raises(ValueError, match="pool holds 8 samples"):
        Strategy.create("majority", budget=16).solve_from(PoolSource(pool), TASKS[:1], c)


class CountingArithmetic(ArithmeticVerifier):
    """The arithmetic verifier, counting how many solutions it scored."""

    scored = 0

    def _score(self, solutions):
        self.scored += len(solutions)
        return super()._score(solutions)


def test_pool_is_scored_once_and_each_strategy_pays_for_the_scores_it_reads():
    verifier = CountingArithmetic()
    c = Context(generator=ScriptedGenerator(SCRIPT), verifier=verifier)
    pool = Pool.draw(TASKS, c, 8)
    assert verifier.scored == 16
    for name, budget in [("best_of_n", 2), ("best_of_n", 8), ("weighted_best_of_n", 4)]:
        [r] = Strategy.create(name, budget=budget).solve_from(PoolSource(pool), TASKS[:1], c)
        assert r.ledger.verifier_calls == 1 and all(x.score is not None for x in r.candidates)
    assert verifier.scored == 16  # no candidate was scored again
    [r] = Strategy.create("best_of_n", budget=4).solve_from(PoolSource(pool), TASKS[:1], c)
    assert r.prediction == "12"
    r.candidates[0].score = -1.0
    assert pool.candidates[0][0].score != -1.0  # strategies get copies
