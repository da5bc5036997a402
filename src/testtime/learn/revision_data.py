"""Training data for a revision model (Snell et al. 2024, section 6.1), from a pool of samples.

Each example is a conversation in the exact form the ``revisions`` strategy prompts with: the
question, then 0 to ``max_wrong`` wrong attempts of the same question, each followed by the revision
request, and last a right attempt as the reply to learn. The wrong attempt shown last is the one
closest to the right answer by edit distance, so the model learns to fix a near miss. Examples are
chat JSONL in TRL's conversational prompt-completion form ({"prompt": [...], "completion": [...]}):
``SFTTrainer`` then computes the loss on the right attempt alone, never on the wrong ones shown.
"""

from __future__ import annotations

import difflib
import random
from dataclasses import dataclass
from typing import Iterable

from testtime.answers import stored_correct
from testtime.prompting import PromptTemplate
from testtime.strategies.revisions import DEFAULT_REVISION_REQUEST
from testtime.tasks import Task


@dataclass(frozen=True)
class RevisionDataParams:
    max_wrong: int = 4  # wrong attempts before the right one, at most (Snell: 0-4)
    per_question: int = 4  # examples per question, at most (one right attempt each)
    seed: int = 0

    def __post_init__(self):
        for name, least in (("max_wrong", 0), ("per_question", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")


def similarity(a: str, b: str) -> float:
    """How close two attempts are, in [0, 1]: 1 - a normalised edit distance (difflib's ratio)."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def revision_examples(lines: Iterable[dict], params: RevisionDataParams = RevisionDataParams(),
                      template: PromptTemplate = PromptTemplate(),
                      revision_request: str = DEFAULT_REVISION_REQUEST) -> list[dict]:
    """Examples from a pool's result lines (each with its question, gold answer and candidates)."""
    rng = random.Random(params.seed)
    out = []
    for line in lines:
        finished = [c for c in line["candidates"] if c.get("finish_reason", "stop") == "stop"]  # none cut short
        right = [c["text"] for c in finished if stored_correct(c, line["gold"])]
        wrong = [c["text"] for c in finished if not stored_correct(c, line["gold"])]
        if not right:
            continue  # nothing to revise towards
        base = template.build(Task(line["id"], line["question"], line["gold"])).messages
        for target in rng.sample(right, min(params.per_question, len(right))):
            shown = rng.sample(wrong, rng.randint(0, min(params.max_wrong, len(wrong))))
            shown.sort(key=lambda t: similarity(t, target))  # the closest wrong attempt comes last
            prompt = [{"role": role, "content": content} for role, content in base]
            for attempt in shown:
                prompt += [{"role": "assistant", "content": attempt}, {"role": "user", "content": revision_request}]
            out.append({"id": line["id"], "wrong_attempts": len(shown), "prompt": prompt,
                        "completion": [{"role": "assistant", "content": target}]})
    return out
