"""The sweep analysis on a stored pool, and the compute_optimal strategy, on the scripted
generator (a deterministic fake: easy questions are always answered right, hard ones
split their votes, so every expected count is exact). The real model runs them in
test_cli.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakes import ScriptedGenerator
from testtime.analysis.sweep import PASS_AT_K, SweepAnalysis
from testtime.runner import Unit
from testtime.strategies import Context, Strategy
from testtime.tasks import Task

EASY = [Task(f"e{i}", f"easy question {i}", "4") for i in range(6)]
HARD = [Task(f"h{i}", f"hard question {i}", "9") for i in range(6)]


def script(question: str, index: int) -> str:
    if question.startswith("easy"):
        return "2 + 2 = 4\n\nThe answer is 4"
    # One right answer in four, and three different wrong ones: a split vote.
    return f"The answer is {[9, 1, 2, 3][index % 4]}"


def pooled_lines(size=8):
    tasks = EASY + HARD
    unit = Unit(Strategy.create("pool", budget=size), 0)
    results = unit.strategy.solve(tasks, Context(generator=ScriptedGenerator(script)))
    return [(unit.description(), [unit.line(r) for r in results])]


def test_the_analysis_estimates_every_budget_from_one_pool():
    analysis = SweepAnalysis(pooled_lines(), strategies=["majority", "single"], orders=32)
    by = {(p.strategy, p.budget): p for p in analysis.points}
    assert sorted(b for s, b in by if s == "majority") == [1, 2, 4, 8]
    assert ("single", 1) in by and ("single", 2) not in by
    # pass@k: easy questions always 1; hard ones have 2 right of 8: 1 - C(6,k)/C(8,k).
    assert by[(PASS_AT_K, 2)].accuracy == pytest.approx((6 + 6 * (1 - 15 / 28)) / 12)
    # majority@1 is one random sample: a hard question is right with probability 1/4.
    assert by[("majority", 1)].correct[6:].mean() == pytest.approx(0.25, abs=0.15)
    assert by[("majority", 8)].correct[:6].tolist() == [1.0] * 6
    # Costs grow with the samples used; a budget-k point pays k samples' tokens.
    tokens = [by[("majority", k)].cost.tokens.mean() for k in (1, 2, 4, 8)]
    assert tokens == sorted(tokens) and tokens[-1] > 4 * tokens[0] * 0.9
    # Oracle difficulty: easy questions have pass@1 = 1, hard ones 1/4.
    assert analysis.oracle_difficulty().tolist() == [0.0] * 6 + [0.75] * 6
    # The probe's agreement tells them apart without gold answers.
    predicted = analysis.predicted_difficulty(analysis.probe)
    assert predicted[:6].max() < predicted[6:].min()
    scaling = analysis.to_dict()
    assert json.loads(json.dumps(scaling))["questions"] == 12
    assert scaling["compute_optimal"]["baseline"] == "majority"


def write_policy(path, probe=2, easy=("majority", 2), hard=("majority", 8)):
    choices = [dict(zip(("strategy", "budget"), easy))] + [dict(zip(("strategy", "budget"), hard))] * 4
    path.write_text(json.dumps({"version": 1, "probe": probe, "budgets": {
        "8": {"edges": [0.3, 0.3, 0.3, 0.3], "choices": choices}}}))
    return path


def test_compute_optimal_spends_the_probe_on_easy_questions_and_more_on_hard_ones(tmp_path):
    policy = write_policy(tmp_path / "policy.json")
    gen = ScriptedGenerator(script)
    results = Strategy.create("compute_optimal", budget=8, policy=str(policy)).solve(EASY[:2] + HARD[:2], Context(generator=gen))
    assert [len(r.candidates) for r in results] == [2, 2, 8, 8]
    assert [r.details["probe"]["choice"] for r in results] == ["majority@2"] * 2 + ["majority@8"] * 2
    assert [r.details["probe"]["level"] for r in results] == [1, 1, 5, 5]
    # The probe's samples are the first of the hard questions' eight: nothing is drawn twice.
    assert gen.drawn == {"easy question 0": 2, "easy question 1": 2, "hard question 0": 8, "hard question 1": 8}
    for r in results:
        assert r.ledger.completion_tokens == sum(c.tokens for c in r.candidates)
    assert [r.prediction for r in results[:2]] == ["4", "4"]


def test_compute_optimal_errors_name_the_file_and_the_budget(tmp_path):
    policy = write_policy(tmp_path / "policy.json")
    with pytest.raises(ValueError, match="no policy for budget 4; it has budgets 8"):
        Strategy.create("compute_optimal", budget=4, policy=str(policy)).solve(EASY[:1], Context(ScriptedGenerator(script)))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="cannot read the policy .*bad.json"):
        Strategy.create("compute_optimal", budget=8, policy=str(tmp_path / "bad.json")).solve(
            EASY[:1], Context(ScriptedGenerator(script)))


def test_the_deployable_policy_runs_as_compute_optimal(tmp_path):
    analysis = SweepAnalysis(pooled_lines(), strategies=["majority"], orders=16)
    policy = analysis.deployable_policy()
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    results = Strategy.create("compute_optimal", budget=8, policy=str(tmp_path / "policy.json")).solve(
        EASY + HARD, Context(generator=ScriptedGenerator(script)))
    used = np.array([len(r.candidates) for r in results])
    # Easy questions need no more than the probe; the policy never spends more than the pool held.
    assert used[:6].max() <= policy["probe"] <= used[6:].min() and used.max() <= 8


def test_fits_extrapolate_with_intervals():
    fits = SweepAnalysis(pooled_lines(), strategies=["majority"], orders=16).fits()
    tokens = fits["majority"]["tokens"]
    assert tokens["points"] == 4 and len(tokens["extrapolated"]) == 2
    far = tokens["extrapolated"][1]
    assert far["ci95"][0] <= far["accuracy"] <= far["ci95"][1]


def test_a_missing_curve_or_fit_says_why_in_the_analysis_and_the_cli():
    from testtime.cli.console import console, print_points

    [(unit, lines)] = pooled_lines()
    few = SweepAnalysis([(unit, lines[:3])], strategies=["majority"], orders=8).to_dict()
    assert few["compute_optimal"] is None
    assert few["missing"]["compute_optimal"] == "needs at least 4 questions to cross-validate on two folds; the run has 3"
    easy = SweepAnalysis([(unit, lines[:6])], strategies=["majority"], orders=8).to_dict()  # always right
    assert easy["fits"]["majority"]["tokens"]["r2"] is None
    json.dumps(easy, allow_nan=False)  # no NaN in scaling.json
    with console.capture() as captured:
        print_points(few)
        print_points(easy)
    said = " ".join(captured.get().split())
    assert "compute-optimal: not computed (needs at least 4 questions" in said and "no compute_optimal.png" in said
    assert "R^2 undefined: accuracy is the same at every budget" in said


def weak_script(question: str, index: int) -> str:
    # The demo's case on the weak model: one question in forty is solved, by one sample in eight.
    if question == "hard question 0":
        return f"The answer is {9 if index == 3 else index + 10}"
    return f"The answer is {index + 10}"


def test_a_weak_policy_within_noise_of_best_of_n_gets_no_efficiency_claim():
    from testtime.cli.console import console, print_points

    tasks = [Task(f"h{i}", f"hard question {i}", "9") for i in range(40)]
    unit = Unit(Strategy.create("pool", budget=8), 0)
    results = unit.strategy.solve(tasks, Context(generator=ScriptedGenerator(weak_script)))
    scaling = SweepAnalysis([(unit.description(), [unit.line(r) for r in results])],
                            strategies=["best_of_n", "majority"], orders=32).to_dict()
    curve = scaling["compute_optimal"]["curve"]
    assert curve and max(row["accuracy"] for row in curve) > 0  # the policy solves something ...
    for row in curve:  # ... but never separably more than best-of-N: no ratio is claimed
        assert not row["versus_baseline"]["separated"] and not row["versus_best_baseline"]["separated"]
        assert row["efficiency"] is None and row["efficiency_at_least"] is None
        # ... and is set beside the most accurate single strategy that fits its limit
        fixed = row["versus_best_fixed"]
        fits = [p for p in scaling["points"] if p["strategy"] != "pass@k" and p["tokens"] <= row["limit_tokens"]]
        best = max(fits, key=lambda p: p["accuracy"])
        assert any(f"{p['strategy']}@{p['budget']}" == fixed["strategy"] and p["accuracy"] == best["accuracy"]
                   for p in fits)
        assert not fixed["separated"]
    with console.capture() as captured:
        print_points(scaling)
    said = " ".join(captured.get().split())
    assert "never matches" not in said and "needs" not in said
    assert said.count("are not separated") == 2 * len(curve)  # against best-of-N and the best single one
    # The best strategy per difficulty level is no winner either: the report says so.
    levels = [row for row in scaling["difficulty"]["oracle"] if row["questions"]]
    assert levels and all(not row["versus_next"]["separated"] for row in levels)
    from testtime.report.page import difficulty_table

    assert "not separated from" in difficulty_table(scaling["difficulty"])


def test_a_paired_difference_is_separated_only_when_its_interval_excludes_zero():
    from testtime.analysis.paired import paired_difference

    base = np.zeros(50)
    better = paired_difference(np.arange(50) < 20, base)
    assert better.separated and better.low > 0 and better.difference == pytest.approx(0.4)
    assert better.describe("A", "B").startswith("A beats B (A - B: +40.0 pp, 95% CI +")
    worse = paired_difference(base, np.arange(50) < 20)
    assert worse.separated and worse.describe("A", "B").startswith("B beats A")
    one = paired_difference(np.arange(50) < 1, base)
    assert not one.separated and "not separated" in one.describe("A", "B")
    # Pairing: the same 25 questions right on both sides plus one more differs by 1/50, not separated;
    # 20 more on one side are separated although both sides' own intervals are wide.
    assert not paired_difference(np.arange(50) < 26, np.arange(50) < 25).separated
    with pytest.raises(ValueError, match="same questions"):
        paired_difference(np.zeros(3), np.zeros(4))


def test_a_policy_separated_below_the_baseline_gets_no_ratio_whatever_its_tokens():
    from testtime.cli.console import efficiency_claim
    from testtime.report.page import efficiency

    below = {"budget": 4, "accuracy": 0.222, "baseline_accuracy": 0.256, "efficiency": None,
             "efficiency_at_least": None, "baseline_tokens_to_match": None,
             "versus_baseline": {"difference": -0.034, "ci95": [-0.06, -0.01], "separated": True, "questions": 200},
             "versus_best_baseline": {"budget": 16, "difference": -0.11, "ci95": [-0.15, -0.07], "separated": True,
                                      "questions": 200}}
    said = efficiency_claim("majority", below)
    assert said.startswith("no ratio: majority@4 beats the policy") and "-3.4 pp" in said
    assert efficiency(below) == "below the baseline"
