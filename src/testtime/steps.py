"""Reasoning steps: a solution is a sequence of steps separated by a delimiter."""

from __future__ import annotations

DEFAULT_STEP_DELIMITER = "\n\n"


def split_steps(text: str, delimiter: str = DEFAULT_STEP_DELIMITER) -> list[str]:
    """Non-empty steps of a solution, in order (a text without delimiters is one step)."""
    steps = [s.strip() for s in text.split(delimiter)]
    return [s for s in steps if s] or [text.strip()]
