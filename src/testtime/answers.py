"""Final-answer extraction and equivalence.

Extraction looks, in order, for ``\\boxed{...}``, "The answer is ...", "#### ..."
and finally the last number in the text. Equivalence compares numbers exactly
and falls back to ``math-verify`` for symbolic answers, bounded by a timeout so
no input can hang a run.
"""

from __future__ import annotations

import re
import threading
from fractions import Fraction
from functools import lru_cache

# "The answer is 14", "answer is: 14", "**Answer:** 14", "Final answer: 14" (an answer cue then what follows).
_ANSWER_IS = re.compile(r"\banswer\b(?:\s*\*\*)?(?:\s+is\b\s*:?|\s*:)\s*(.+)", re.IGNORECASE)
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_WORD = re.compile(r"[A-Za-z]{2,}")
_MAX_ANSWER_CHARS = 60
_HASHES = re.compile(r"####\s*(.+)")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")
SYMBOLIC_TIME_BOUND_S = 2  # seconds math-verify may spend on one parse or comparison
# math-verify bounds its time with SIGALRM, which only the main thread may use. Elsewhere
# only short answers are compared symbolically, with no timer.
_UNTIMED_MAX_CHARS = 64


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox``), with nested braces."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for i in range(brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : i].strip()
    return None


def states_final_answer(text: str) -> bool:
    """Whether the text states its final answer explicitly (boxed, "the answer is", "####")."""
    return bool(last_boxed(text) or any(_clean(m) for m in _ANSWER_IS.findall(text)) or _HASHES.search(text))


def extract_answer(text: str) -> str | None:
    """The final answer stated in a solution, or None when it states none."""
    if not text:
        return None
    boxed = last_boxed(text)
    if boxed:
        return boxed
    for pattern in (_ANSWER_IS, _HASHES):
        matches = pattern.findall(text)
        if matches:
            found = _clean(matches[-1])
            if found:
                return found
    numbers = _NUMBER.findall(text)
    return numbers[-1].replace(",", "") if numbers else None


def _clean(raw: str) -> str | None:
    """What follows an answer cue, as an answer; None when it is not one ("is correct", ", in this case")."""
    line = raw.strip().splitlines()[0] if raw.strip() else ""
    line = line.strip().rstrip(".").strip()
    boxed = last_boxed(line)
    if boxed:
        return boxed
    line = line.strip("$*: ").strip()
    # "The answer is 18 dollars" -> 18: a leading number wins over trailing words.
    number = _NUMBER.match(line.replace("$", "").replace("\\$", ""))
    if number and (len(line) < 40 or not re.search(r"[=\\]", line)):
        return number.group(0).replace(",", "")
    return line if _well_formed(line) else None


def _well_formed(text: str) -> bool:
    """A short mathematical answer: no prose words (LaTeX commands aside), and a digit, a LaTeX
    command or a single symbol ("x", "(B)") in it."""
    if not text or len(text) > _MAX_ANSWER_CHARS:
        return False
    bare = _LATEX_COMMAND.sub(" ", text)
    if _WORD.search(bare):
        return False
    return any(ch.isdigit() for ch in text) or bool(_LATEX_COMMAND.search(text)) or (
        len(re.sub(r"[^A-Za-z]", "", text)) == 1)


def as_number(answer: str | None) -> Fraction | None:
    """An exact number for plain numeric answers ("1,000", "$18", "3/4", "2.50", "50%")."""
    if answer is None:
        return None
    s = answer.strip().replace(",", "").replace("\\$", "").replace("$", "").replace("\\%", "").rstrip("%")
    s = re.sub(r"\\(?:text|mathrm)\{[^}]*\}", "", s).strip()
    s = re.sub(r"^\\[dt]?frac\{(-?\d+)\}\{(\d+)\}$", r"\1/\2", s)
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def normalize_answer(answer: str | None) -> str | None:
    """A canonical key for voting: equal numbers get equal keys."""
    if answer is None:
        return None
    number = as_number(answer)
    if number is not None:
        return str(number)
    return re.sub(r"\s+", "", answer).strip("$.").replace("\\left", "").replace("\\right", "")


def answers_match(predicted: str | None, gold: str | None) -> bool:
    """True when the predicted answer equals the gold one, numerically or symbolically."""
    if predicted is None or gold is None:
        return False
    a, b = as_number(predicted), as_number(gold)
    if a is not None and b is not None:
        return a == b
    if normalize_answer(predicted) == normalize_answer(gold):
        return True
    return _symbolic_match(predicted, gold)


def _symbolic_match(predicted: str, gold: str) -> bool:
    try:
        from math_verify import parse, verify
    except ImportError:  # pragma: no cover - math-verify is a dependency
        return False
    timed = threading.current_thread() is threading.main_thread()
    if not timed and max(len(predicted), len(gold)) > _UNTIMED_MAX_CHARS:
        return False
    limit = SYMBOLIC_TIME_BOUND_S if timed else None
    try:
        gold_parsed = parse(_as_latex(gold), parsing_timeout=limit)
        pred_parsed = parse(_as_latex(predicted), parsing_timeout=limit)
        if not gold_parsed or not pred_parsed:
            return False
        return bool(verify(gold_parsed, pred_parsed, timeout_seconds=limit))
    except Exception:  # math-verify raises many kinds on odd input; any failure means "not shown equal"
        return False


def _as_latex(answer: str) -> str:
    answer = answer.strip()
    return answer if answer.startswith("$") else f"${answer}$"


@lru_cache(maxsize=None)
def _match_cached(predicted: str | None, gold: str | None) -> bool:
    return answers_match(predicted, gold)


def stored_correct(candidate: dict, gold: str | None) -> bool:
    """A stored candidate's grade: as the run graded it (always so for code, by its hidden tests),
    else its answer against the gold one (stores written before runs graded every candidate)."""
    graded = candidate.get("correct")
    return bool(graded) if graded is not None else _match_cached(candidate.get("answer"), gold)
