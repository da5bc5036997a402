"""Reasoning in tags: the part of a reply a model thinks in (``<think>...</think>``) and the answer after it.

Models that think in tags write the opening tag themselves, or their chat template writes it into
the prompt (then the reply holds only the closing tag). Either way the reasoning is the text up to
the closing tag, and the answer is read from what follows it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thinking:
    """The tags a model thinks in."""

    open: str = "<think>"
    close: str = "</think>"

    def __post_init__(self):
        if not self.open or not self.close or self.open == self.close:
            raise ValueError(f"thinking tags must be two different non-empty strings, got {self.open!r}, {self.close!r}")

    def split(self, text: str, *, inside: bool = False) -> tuple[str, str]:
        """(reasoning, answer) of a reply. ``inside``: the reply continues text whose thinking is
        open (a continuation that opened the tag), so it starts as reasoning."""
        opened = text.find(self.open)
        closed = text.find(self.close)
        if opened >= 0 and (closed < 0 or opened < closed):
            start, inside = opened + len(self.open), True
            closed = text.find(self.close, start)
        else:
            start = 0
        if closed >= 0:  # a closing tag with no opening one: the chat template opened it
            return text[start:closed], text[closed + len(self.close):]
        return (text[start:], "") if inside else ("", text)

    def is_open(self, text: str) -> bool:
        """Whether ``text`` ends inside thinking: an opening tag with no closing tag after it."""
        opened = text.rfind(self.open)
        return opened >= 0 and text.find(self.close, opened) < 0


TAGS = Thinking()
