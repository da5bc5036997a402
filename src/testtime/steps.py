"""Reasoning steps: a solution is a sequence of steps separated by a delimiter.

A reply that thinks in tags (testtime.reasoning) is its thinking's steps, then its answer's. A long
thought rarely keeps to the delimiter, so it can be split by paragraph, by sentence, or where the
model turns ("Wait", "Alternatively", ...).
"""

from __future__ import annotations

import re

from testtime.reasoning import TAGS

DEFAULT_STEP_DELIMITER = "\n\n"
THINKING_SPLITS = ("paragraph", "sentence", "markers")
TURN_MARKERS = ("Wait", "Alternatively", "Hmm", "But wait", "Let me check", "Let me double-check",
                "On second thought")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_TURN = re.compile(r"\s*(?=\b(?:" + "|".join(re.escape(m) for m in sorted(TURN_MARKERS, key=len, reverse=True))
                   + r")\b)")


def check_thinking_split(thinking: str) -> str:
    if thinking not in THINKING_SPLITS:
        raise ValueError(f"thinking split {thinking!r} is not one of {', '.join(THINKING_SPLITS)}")
    return thinking


def split_steps(text: str, delimiter: str = DEFAULT_STEP_DELIMITER, thinking: str = "paragraph") -> list[str]:
    """Non-empty steps of a solution, in order (a text without delimiters is one step)."""
    check_thinking_split(thinking)
    reasoning, answer = TAGS.split(text)
    if not reasoning.strip():
        return _split(text, delimiter)
    pattern = {"paragraph": None, "sentence": _SENTENCE_END, "markers": _TURN}[thinking]
    thought = _split(reasoning, delimiter) if pattern is None else [
        s.strip() for s in pattern.split(reasoning.strip()) if s.strip()]
    return thought + (_split(answer, delimiter) if answer.strip() else [])


def _split(text: str, delimiter: str) -> list[str]:
    steps = [s.strip() for s in text.split(delimiter)]
    return [s for s in steps if s] or [text.strip()]
