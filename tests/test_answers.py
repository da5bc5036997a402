import pytest

from testtime.answers import answers_match, as_number, extract_answer, last_boxed, normalize_answer


@pytest.mark.parametrize(
    "text, expected",
    [
        ("so we get \\boxed{42}.", "42"),
        ("first \\boxed{1} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("The answer is: 18", "18"),
        ("Therefore the answer is $1,250.", "1250"),
        ("The answer is 18 dollars.", "18"),
        ("Janet makes 9 * 2 = 18\n#### 18", "18"),
        ("He has 3 + 5 = 8 apples", "8"),
        ("no numbers here", None),
        ("", None),
        ("The answer is: \\frac{3}{4}", "\\frac{3}{4}"),
        # The cues real models write, and junk after a cue, which is no answer.
        ("The answer is: 14.", "14"),
        ("**Answer:** 14", "14"),
        ("Final Answer: $\\boxed{14}$", "14"),
        ("the answer is 14 dollars", "14"),
        ("Final answer: \\frac{1}{2}", "\\frac{1}{2}"),
        ("The answer is (B).", "(B)"),
        ("This is the answer is correct.", None),
        ("The answer is, in this case, 1.", "1"),
        ("I think the answer is wrong, so 3 + 4 = 7", "7"),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_last_boxed_handles_nesting_and_unbalanced():
    assert last_boxed("\\boxed{\\sqrt{2}+{1}}") == "\\sqrt{2}+{1}"
    assert last_boxed("\\boxed{unclosed") is None


@pytest.mark.parametrize(
    "a, b",
    [("18", "18.0"), ("1,000", "1000"), ("$18", "18"), ("0.5", "1/2"), ("\\frac{1}{2}", "0.5"), ("50%", "50")],
)
def test_numeric_equivalence(a, b):
    assert answers_match(a, b)


@pytest.mark.parametrize("a, b", [("18", "19"), (None, "1"), ("1", None), ("x", "y")])
def test_non_equivalence(a, b):
    assert not answers_match(a, b)


def test_symbolic_equivalence_uses_math_verify():
    assert answers_match("\\frac{\\sqrt{8}}{2}", "\\sqrt{2}")
    assert answers_match("x^2+2x+1", "(x+1)^2")
    assert not answers_match("\\sqrt{3}", "\\sqrt{2}")


def test_normalize_gives_equal_keys_to_equal_numbers():
    assert normalize_answer("1,000") == normalize_answer("1000.0") == "1000"
    assert as_number("3/4") == as_number("0.75")
    assert normalize_answer(None) is None


def test_symbolic_equivalence_off_the_main_thread():
    import threading

    out = []
    thread = threading.Thread(target=lambda: out.append(answers_match("\\frac{\\sqrt{8}}{2}", "\\sqrt{2}")))
    thread.start()
    thread.join(timeout=30)
    assert out == [True]


def test_pathological_input_returns_within_its_time_bound():
    import time

    start = time.perf_counter()
    assert not answers_match("9^{9^{9^{9}}}", "\\sqrt{2}")
    assert time.perf_counter() - start < 15
