"""The scaling analysis's numbers against hand computations, brute force and synthetic data
with known parameters. No model: the inputs are crafted so each expected value is exact."""

from __future__ import annotations

import math
from itertools import permutations

import numpy as np
import pytest

from testtime.analysis.estimators import bootstrap_interval, pass_at_k, pass_at_k_brute_force, replay
from testtime.analysis.fits import fit_coverage, fit_log_compute
from testtime.policy import (
    Option, assign_levels, cost_to_match, cross_validated, learn_policy, level_edges, probe_easiness,
)
from testtime.selection import Candidate
from testtime.strategies import Strategy


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_equals_the_share_of_all_subsets_with_a_right_sample(n):
    rng = np.random.default_rng(n)
    for c in range(n + 1):
        correct = [True] * c + [False] * (n - c)
        rng.shuffle(correct)
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(pass_at_k_brute_force(correct, k), abs=1e-12)


def test_pass_at_k_by_hand_and_bad_input():
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - 3 / 6)  # C(3,2)/C(4,2)
    assert pass_at_k(64, 0, 64) == 0.0 and pass_at_k(64, 1, 64) == 1.0
    assert 0 < pass_at_k(1000, 3, 10) < 1  # large n stays finite
    with pytest.raises(ValueError, match="n=4, c=5, k=1"):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError, match="k=5"):
        pass_at_k(4, 1, 5)


def _cands(*keys, scores=None):
    scores = scores or [None] * len(keys)
    return [Candidate(text=k, answer=k, key=k, tokens=10 + i, score=s) for i, (k, s) in enumerate(zip(keys, scores))]


ALL_ORDERS = np.array(list(permutations(range(4))))


def test_majority_replayed_on_every_order_equals_the_hand_computation():
    pool = _cands("A", "A", "B", "C")  # A is right
    correct = [True, True, False, False]
    # k=2: a tie goes to the answer seen first, so it is right iff an A comes first: 1/2.
    assert replay(Strategy.create("majority", budget=2), pool, correct, ALL_ORDERS).accuracy == pytest.approx(1 / 2)
    # k=3: {A,A,x} wins (2 of 4 subsets); {A,B,C} is a three-way tie, right when A is first (1/3).
    assert replay(Strategy.create("majority", budget=3), pool, correct, ALL_ORDERS).accuracy == pytest.approx(2 / 3)
    r = replay(Strategy.create("majority", budget=4), pool, correct, ALL_ORDERS)
    assert (r.accuracy, r.samples, r.tokens) == (1.0, 4.0, 10 + 11 + 12 + 13)


def test_best_of_k_replay_picks_the_top_score_of_each_subset():
    pool = _cands("A", "B", "C", "D", scores=[0.9, 0.8, 0.1, 0.2])
    correct = [False, True, False, False]
    # Right iff the subset holds B but not A: of the 6 pairs, {B,C} and {B,D}.
    r = replay(Strategy.create("best_of_n", budget=2), pool, correct, ALL_ORDERS)
    assert r.accuracy == pytest.approx(2 / 6)


def test_an_adaptive_strategy_replays_its_early_stop():
    pool = _cands(*["7"] * 16)
    r = replay(Strategy.create("adaptive_consistency", budget=16), pool, [True] * 16, np.array([list(range(16))]))
    assert r.accuracy == 1.0 and r.samples == 4  # four agreeing votes are decisive


def test_replay_refuses_a_budget_larger_than_the_pool():
    with pytest.raises(ValueError, match="pool's 4"):
        replay(Strategy.create("majority", budget=8), _cands("A", "B", "C", "D"), [True] * 4, ALL_ORDERS)


def test_bootstrap_interval_holds_the_mean_and_narrows_with_more_questions():
    rng = np.random.default_rng(1)
    small, large = rng.random(20) < 0.3, rng.random(2000) < 0.3
    lo, hi = bootstrap_interval(small)
    assert lo <= small.mean() <= hi
    lo2, hi2 = bootstrap_interval(large)
    assert lo2 <= large.mean() <= hi2 and hi2 - lo2 < (hi - lo) / 4


def test_log_compute_fit_recovers_known_parameters():
    compute = np.geomspace(100, 100_000, 8)
    exact = fit_log_compute(compute, 0.1 + 0.05 * np.log(compute))
    assert (exact.line.intercept, exact.slope, exact.line.r2) == pytest.approx((0.1, 0.05, 1.0))
    rng = np.random.default_rng(0)
    noisy = fit_log_compute(compute, 0.1 + 0.05 * np.log(compute) + rng.normal(0, 0.01, 8))
    assert abs(noisy.slope - 0.05) < 3 * noisy.line.slope_stderr
    mid, lo, hi = noisy.predict(1e6)  # extrapolation: the true value lies in the interval, which is wider
    assert lo < 0.1 + 0.05 * math.log(1e6) < hi
    assert hi - lo > noisy.predict(3000)[2] - noisy.predict(3000)[1]
    with pytest.raises(ValueError, match="positive"):
        fit_log_compute([0, 1], [0.1, 0.2])


def test_coverage_law_recovers_known_parameters():
    k = np.array([1, 2, 4, 8, 16, 32])
    fit = fit_coverage(k, np.exp(-2.0 * k**-0.5))
    assert (fit.a, fit.b) == pytest.approx((-2.0, -0.5))
    assert fit.predict(128)[0] == pytest.approx(math.exp(-2.0 * 128**-0.5))
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        fit_coverage([1, 2, 4], [0.0, 1.0, 1.0])


def test_probe_easiness_and_levels():
    assert probe_easiness(["1", "1", "2", None], [None] * 4) == 0.5
    assert probe_easiness(["1", "1", "1", "1"], [0.5, 0.5, 0.5, 0.5]) == 0.75
    assert probe_easiness([None, None], [None, None]) == 0.0
    difficulty = np.arange(10) / 10
    edges = level_edges(difficulty)
    assert assign_levels(difficulty, edges).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def _crafted():
    """20 easy questions (difficulty 0) that a cheap option solves, 30 hard ones (difficulty 1)
    only an expensive option solves. The optimum under a mean cost of 7.5: cheap on easy,
    expensive on hard, accuracy 1 at mean cost (20*1 + 30*10)/50 = 6.4."""
    easy = np.array([True] * 20 + [False] * 30)
    cheap = Option("majority", 1, easy.astype(float), np.full(50, 1.0))
    dear = Option("beam_search", 16, np.ones(50), np.full(50, 10.0))
    return [cheap, dear], np.where(easy, 0.0, 1.0), [f"q{i}" for i in range(50)]


def test_the_policy_finds_the_known_optimum_under_the_limit():
    options, difficulty, _ = _crafted()
    policy = learn_policy(options, difficulty, np.arange(50), limit=7.5)
    level_of = assign_levels(difficulty, policy.edges)
    chosen = {policy.choices[level - 1].label for level in set(level_of[:20])}
    assert chosen == {"majority@1"}
    assert {policy.choices[level - 1].label for level in set(level_of[20:])} == {"beam_search@16"}
    assert (policy.train_accuracy, policy.train_cost) == pytest.approx((1.0, 6.4))
    # Under a limit no mix can meet, the cheapest option everywhere.
    tight = learn_policy(options, difficulty, np.arange(50), limit=0.5)
    assert {c.label for c in tight.choices} == {"majority@1"}
    # With a generous limit the expensive option is taken only where it helps.
    assert learn_policy(options, difficulty, np.arange(50), limit=100).train_cost == pytest.approx(6.4)


def test_the_policy_spends_up_to_its_limit_where_a_price_per_token_would_not():
    # Two levels alike: one cheap option that fails and one dear option that succeeds. A price per token
    # takes the same option on both levels (mean cost 1 or 10); the best under 5.5 mixes them.
    options = [Option("majority", 1, np.zeros(40), np.full(40, 1.0)), Option("majority", 16, np.ones(40), np.full(40, 10.0))]
    difficulty = np.repeat([0.0, 1.0], 20)
    policy = learn_policy(options, difficulty, np.arange(40), limit=5.5, levels=2)
    assert (policy.train_accuracy, policy.train_cost) == pytest.approx((0.5, 5.5))
    assert sorted(c.label for c in policy.choices) == ["majority@1", "majority@16"]


def test_the_cross_validated_policy_is_scored_on_questions_it_never_saw():
    options, difficulty, ids = _crafted()
    correct, cost, policies = cross_validated(options, difficulty, ids, limit=7.5)
    assert correct.mean() == 1.0 and cost.mean() == pytest.approx(6.4)
    assert len(policies) == 2
    # A difficulty signal that says nothing leaves one option per level for everyone: worse.
    flat, _, _ = cross_validated(options, np.zeros(50), ids, limit=7.5)
    assert flat.mean() == pytest.approx(0.4)


def test_cost_to_match_interpolates_in_log_cost():
    costs, accs = [1, 2, 4, 8], [0.1, 0.2, 0.3, 0.4]
    assert cost_to_match(costs, accs, 0.25) == pytest.approx(math.sqrt(8))
    assert cost_to_match(costs, accs, 0.05) == 1
    assert cost_to_match(costs, accs, 0.5) is None
    assert cost_to_match([1, 2, 4], [0.3, 0.2, 0.35], 0.3) == 1  # the running maximum


def test_train_vs_test_multiplier_reduces_to_snells_and_picks_within_the_matched_flops():
    from testtime.analysis.train_vs_test import ModelCost, compare, test_time_multiplier

    small, large = ModelCost("s", 100, 1e9), ModelCost("l", 300, 1e9)
    for ratio in (0.16, 1.0, 22.0):  # equal pretraining tokens: X = M + 3 (M - 1) / R
        assert test_time_multiplier(small, large, ratio) == pytest.approx(3 + 3 * 2 / ratio)
    with pytest.raises(ValueError, match="must be > 0"):
        test_time_multiplier(small, large, 0)
    # 40 questions; the large model solves the first 8. majority@4 solves the first 9 (one more: not
    # separated), majority@16 the first 30 (separated on the same questions).
    solved = {1: 4, 4: 9, 16: 30}
    correct = [np.arange(40) < solved[b] for b in (1, 4, 16)]
    points = [{"strategy": "majority", "budget": b, "accuracy": solved[b] / 40, "ci95": [0, 1], "flops": 200.0 * 10 * b}
              for b in (1, 4, 16)]
    # Large model: 10 tokens per query. R = 1: X = 9, so 2*100*9*10 = 18,000 FLOPs: budget 4 fits, 16 does not.
    out = compare(small, large, np.arange(40) < 8, 10.0, points, correct, [1.0, 0.16])
    assert out["rows"][0]["small_best"] == "majority@4" and out["rows"][0]["winner"] == "not separated"
    assert out["rows"][0]["difference"]["difference"] == pytest.approx(1 / 40)
    assert out["rows"][1]["small_best"] == "majority@16" and out["rows"][1]["winner"] == "test-time (small)"
    assert out["rows"][1]["difference"]["separated"] and out["rows"][1]["large_accuracy"] == 0.2
