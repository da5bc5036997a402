import pytest

from testtime.verifiers import Aggregation, Solution, Verifier, aggregate
from testtime.verifiers.arithmetic import ArithmeticVerifier, evaluate, find_claims


@pytest.mark.parametrize(
    "expr, value",
    [("3 + 5", 8), ("16-3-4", 9), ("9 * 2", 18), ("10 / 4", 2.5), ("2^3", 8), ("(1 + 2) × 3", 9), ("$1,000 + $5", 1005), ("4 x 5", 20)],
)
def test_evaluate(expr, value):
    assert evaluate(expr) == pytest.approx(value)


@pytest.mark.parametrize("expr", ["import os", "2 ** 1000", "1 / 0", "abc", "__import__('os')"])
def test_evaluate_refuses_non_arithmetic(expr):
    assert evaluate(expr) is None


def test_claims_true_and_false():
    claims = find_claims("So 3 + 5 = 8 apples and 4 x 5 = 21 pears.")
    assert [(c.expression, c.holds) for c in claims] == [("3 + 5", True), ("4 x 5", False)]


def test_gsm8k_annotations_are_checked():
    assert all(c.holds for c in find_claims("She sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs."))
    assert not all(c.holds for c in find_claims("She sells <<16-3-4=10>>10 eggs."))


def test_rounding_shown_in_the_statement_is_accepted():
    assert find_claims("10/3 = 3.33")[0].holds
    assert not find_claims("10/3 = 3.5")[0].holds


def test_words_and_lone_equalities_are_not_claims():
    assert find_claims("x = 5 and the total = 12") == []
    assert find_claims("no equations here") == []


def test_step_scores_and_aggregation():
    v = ArithmeticVerifier()
    text = "First, 2 + 2 = 4.\n\nThen 4 * 3 = 13.\n\nThe answer is: 13"
    [scores] = v.score_steps([Solution("q", text)])
    assert scores.scores == (1.0, 0.1, 0.9)
    assert v.score([Solution("q", text)]) == [pytest.approx(1.0 * 0.1 * 0.9)]
    assert ArithmeticVerifier(aggregation="min").score([Solution("q", text)]) == [0.1]
    assert ArithmeticVerifier(aggregation="last").score([Solution("q", text)]) == [0.9]


def test_correct_solution_outscores_one_with_a_false_step():
    v = ArithmeticVerifier()
    good = Solution("q", "3 * 4 = 12\n\n12 + 1 = 13\n\nThe answer is: 13")
    bad = Solution("q", "3 * 4 = 12\n\n12 + 1 = 14\n\nThe answer is: 14")
    assert v.score([good])[0] > v.score([bad])[0]


@pytest.mark.parametrize(
    "how, expected", [("product", 0.08), ("min", 0.2), ("last", 0.4), ("mean", pytest.approx(0.5333333))]
)
def test_aggregate(how, expected):
    assert aggregate([1.0, 0.2, 0.4], Aggregation(how)) == pytest.approx(expected)


def test_unknown_verifier_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown verifier 'nope'.*arithmetic"):
        Verifier.create("nope")
