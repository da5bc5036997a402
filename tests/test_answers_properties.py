"""Property-based tests of answer extraction and equivalence (hypothesis): arbitrary text and
LaTeX never raise, never run past the time bound, and known forms come out right."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testtime.answers import (
    SYMBOLIC_TIME_BOUND_S,
    answers_match,
    as_number,
    extract_answer,
    normalize_answer,
    states_final_answer,
)

LATEX_PIECES = [
    "\\frac{", "\\dfrac{", "}", "{", "\\sqrt{", "^", "_", "(", ")", "[", "]", "\\left(", "\\right)",
    "\\boxed{", "\\fbox{", "$", "\\$", "\\%", "%", "\\pi", "\\infty", "\\text{", "\\mathrm{", "\\cdot",
    "\\times", "\\le", "=", ",", ".", "/", "-", "+", " ", "\n", "\\", "x", "y", "1", "2", "3", "0", "10",
    "The answer is", "answer is:", "####", "\\begin{pmatrix}", "\\end{pmatrix}", "&", "\\\\", "e^{", "i",
]
latex = st.lists(st.sampled_from(LATEX_PIECES), max_size=40).map("".join)
any_text = st.one_of(st.text(max_size=300), latex, st.tuples(st.text(max_size=80), latex).map("".join))
# No explicit deadline: math-verify's first call imports sympy; the bound below is ours.
checked = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# A call may use the symbolic bound once for each parse and once for the comparison, plus slack.
CALL_BOUND_S = 3 * SYMBOLIC_TIME_BOUND_S + 1.0


def timed(fn, *args):
    started = time.monotonic()
    value = fn(*args)
    elapsed = time.monotonic() - started
    assert elapsed < CALL_BOUND_S, f"{fn.__name__}{args!r} took {elapsed:.1f} s"
    return value


@checked
@given(any_text)
def test_extraction_never_raises_and_returns_text_or_none(text):
    answer = timed(extract_answer, text)
    assert answer is None or isinstance(answer, str)
    assert isinstance(timed(states_final_answer, text), bool)
    key = normalize_answer(answer)
    assert key is None or isinstance(key, str)


@checked
@given(any_text, any_text)
def test_equivalence_never_raises_and_is_bounded(predicted, gold):
    assert isinstance(timed(answers_match, predicted, gold), bool)


@checked
@given(any_text)
def test_an_answer_matches_itself(answer):
    assert timed(answers_match, answer, answer)


@checked
@given(st.text(max_size=200).filter(lambda t: "boxed" not in t and "fbox" not in t), st.integers(-10**9, 10**9))
def test_a_boxed_number_is_extracted_whatever_precedes_it(prefix, number):
    assert extract_answer(f"{prefix}\n\\boxed{{{number}}}") == str(number)


@checked
@given(st.text(max_size=200).filter(lambda t: "boxed" not in t and "fbox" not in t), st.integers(0, 10**9))
def test_a_stated_answer_is_extracted_and_matches_the_gold_number(prefix, number):
    text = f"{prefix}\nThe answer is {number:,}."
    assert states_final_answer(text)
    assert answers_match(extract_answer(text), str(number))


@checked
@given(st.integers(-10**6, 10**6), st.integers(1, 10**6))
def test_equal_numbers_in_different_forms_match(numerator, denominator):
    value = Fraction(numerator, denominator)
    forms = [f"{numerator}/{denominator}", f"\\frac{{{numerator}}}{{{denominator}}}"]
    assert all(as_number(f) == value for f in forms)
    assert answers_match(forms[0], forms[1])
    assert not answers_match(forms[0], str(value + 1))


@settings(max_examples=40, deadline=None)
@given(any_text, any_text)
def test_equivalence_off_the_main_thread_is_bounded_too(predicted, gold):
    # Servers and Ray workers compare answers off the main thread, where SIGALRM timers are unavailable.
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        assert isinstance(pool.submit(answers_match, predicted, gold).result(timeout=CALL_BOUND_S), bool)
        assert time.monotonic() - started < CALL_BOUND_S


prose = st.lists(st.from_regex(r"[A-Za-z]{2,10}", fullmatch=True), min_size=1, max_size=6).map(" ".join)
cues = st.sampled_from(["The answer is ", "the answer is: ", "This is the answer is ", "**Answer:** ",
                        "Final answer: ", "The answer is, ", "answer is "])


@checked
@given(before=st.text(alphabet="abc .,\n", max_size=40), cue=cues, junk=prose,
       ending=st.sampled_from(["", ".", "!", " indeed.", "\n"]))
def test_words_after_a_cue_never_become_the_answer(before, cue, junk, ending):
    """Prose after "the answer is" is no answer; with no number anywhere, there is none."""
    text = before + cue + junk + ending
    assert extract_answer(text) is None, text
    assert not states_final_answer(text)


@checked
@given(cue=cues, junk=prose, value=st.integers(-10_000, 10_000))
def test_an_earlier_number_wins_over_words_after_a_cue(cue, junk, value):
    text = f"So the total is {value}. {cue}{junk}."
    assert extract_answer(text) == str(value)
