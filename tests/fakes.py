"""A small deterministic generator for unit tests of strategy logic.

It is not a model: it returns scripted completions so a test can state the
exact expected answer. Tests of real behaviour use the embedded model through
vLLM (see test_engine.py).
"""

from __future__ import annotations

from typing import Callable, Sequence

from testtime.generators.base import Completion, GenerationRequest, GenerationResult, Generator


class ScriptedGenerator(Generator):
    """Completion texts come from ``script(question, sample_index)``; sample_index counts per question
    (in the order requests arrive: a revision round's requests are question by question, chain by chain)."""

    name = "scripted"
    parameter_count = 1000

    def __init__(self, script: Callable[[str, int], str], prompt_tokens: int = 10):
        self.script = script
        self.prompt_tokens = prompt_tokens
        self.calls: list[list[GenerationRequest]] = []
        self.drawn: dict[str, int] = {}

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.calls.append(list(requests))
        results = []
        for request in requests:
            question = first_user_turn(request)
            completions = []
            for _ in range(request.n):
                index = self.drawn.get(question, 0)
                self.drawn[question] = index + 1
                text = self.script(question, index)
                completions.append(Completion(text=text, token_count=len(text.split()), finish_reason="stop"))
            results.append(GenerationResult(tuple(completions), self.prompt_tokens, cached_prompt_tokens=4))
        return results


class SeededGenerator(ScriptedGenerator):
    """Like a seeded engine: a request's samples depend only on its question, seed and sample
    number, never on what was generated before (``script(question, draw)``, draw from the seed)."""

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        import random

        self.calls.append(list(requests))
        results = []
        for request in requests:
            question = first_user_turn(request)
            rng = random.Random(f"{question}:{request.params.seed}")
            texts = [self.script(question, rng.randrange(1000)) for _ in range(request.n)]
            completions = tuple(Completion(text=t, token_count=len(t.split()), finish_reason="stop") for t in texts)
            results.append(GenerationResult(completions, self.prompt_tokens, cached_prompt_tokens=4))
        return results


def first_user_turn(request: GenerationRequest) -> str:
    """The question: a revision prompt's later turns are the model's attempts and revision requests."""
    return next(content for role, content in request.prompt.messages if role == "user")


def cycle(*texts: str) -> Callable[[str, int], str]:
    """A script that answers every question with ``texts`` in turn."""
    return lambda question, index: texts[index % len(texts)]


class StepGenerator(Generator):
    """Continues partial answers one scripted step at a time, for unit tests of search logic.

    ``next_step(question, steps_so_far, sample_index)`` returns the next step's text;
    a step ending in the delimiter leaves the answer open. A request with no stop
    string (a rollout to the end) gets every remaining step at once.
    """

    name = "scripted-steps"
    parameter_count = 1000

    def __init__(self, next_step: Callable[[str, list[str], int], str], delimiter: str = "\n\n"):
        self.next_step = next_step
        self.delimiter = delimiter
        self.calls: list[list[GenerationRequest]] = []
        self.drawn: dict[tuple[str, str], int] = {}

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.calls.append(list(requests))
        results = []
        for request in requests:
            question = request.prompt.messages[-1][1]
            so_far = request.prompt.continuation
            completions = [self._complete(question, so_far, bool(request.params.stop)) for _ in range(request.n)]
            prompt_tokens = 10 + len(so_far.split())
            results.append(GenerationResult(tuple(completions), prompt_tokens, cached_prompt_tokens=prompt_tokens - 2))
        return results

    def _complete(self, question: str, so_far: str, one_step: bool) -> Completion:
        key = (question, so_far)
        index = self.drawn.get(key, 0)
        self.drawn[key] = index + 1
        text = ""
        while True:
            steps = (so_far + text).split(self.delimiter)[:-1]  # the finished steps
            step = self.next_step(question, steps, index)
            text += step
            if one_step or not step.endswith(self.delimiter):
                break
        stopped = one_step and text.endswith(self.delimiter)
        return Completion(text=text, token_count=len(text.split()), finish_reason="stop",
                          stop_reason=self.delimiter if stopped else None)


class LogprobGenerator(Generator):
    """A fake for unit tests of verifier logic that reads top log-probabilities (the LLM judge).

    It is not a model: ``top(user_message)`` gives the chosen top log-probabilities of the
    first generated token, which it returns trimmed to the ``logprobs`` most likely entries
    asked for, with the most likely one as the text. Every call is recorded.
    """

    name = "scripted-logprobs"
    parameter_count = 2000

    def __init__(self, top: Callable[[str], dict[str, float]], prompt_tokens: int = 30):
        self.top = top
        self.prompt_tokens = prompt_tokens
        self.calls: list[list[GenerationRequest]] = []

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.calls.append(list(requests))
        results = []
        for request in requests:
            ranked = sorted(self.top(request.prompt.messages[-1][1]).items(), key=lambda kv: -kv[1])
            k = request.params.logprobs
            top = (dict(ranked[:k]),) if k is not None else None
            completion = Completion(text=ranked[0][0], token_count=1, finish_reason="length", top_logprobs=top)
            results.append(GenerationResult((completion,) * request.n, self.prompt_tokens))
        return results


class ContinuingGenerator(Generator):
    """Continues a reply word by word, for unit tests of budget forcing: ``script(question, so_far)``
    is the rest of the reply after the continuation ``so_far``. Words count as tokens; stop strings
    and max_tokens cut it as an engine would (the stop string kept, as vLLM is asked to)."""

    name = "scripted-continuation"
    parameter_count = 1000

    def __init__(self, script: Callable[[str, str], str], thinks_in_tags: bool = False):
        self.script, self.thinks_in_tags = script, thinks_in_tags
        self.calls: list[list[GenerationRequest]] = []

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.calls.append(list(requests))
        results = []
        for request in requests:
            words = self.script(first_user_turn(request), request.prompt.continuation).split()
            finish, stop_reason = "stop", None
            for k, word in enumerate(words):
                if word in request.params.stop:
                    words, stop_reason = words[: k + 1], word
                    break
            if len(words) > request.params.max_tokens:
                words, finish, stop_reason = words[: request.params.max_tokens], "length", None
            text = (" " if request.prompt.continuation else "") + " ".join(words)
            completion = Completion(text=text, token_count=len(words), finish_reason=finish, stop_reason=stop_reason)
            prompt_tokens = 10 + len(request.prompt.continuation.split())
            results.append(GenerationResult((completion,) * request.n, prompt_tokens, cached_prompt_tokens=10))
        return results


class ConfidentGenerator(Generator):
    """Traces written word by word with top log-probabilities, for unit tests of confidence-based
    strategies. ``script(question, k)`` is a question's k-th trace (k counts fresh traces in request
    order); a word that starts with "~" is written unsure (a flat top-5), one that starts with "?"
    half sure, any other sure (a peaked top-5). A request that continues a trace gets the rest of the
    scripted trace its text begins, cut at max_tokens words as an engine would."""

    name = "scripted-confidence"
    parameter_count = 1000
    TOPS = {"~": (-1.5, -1.7), "?": (-0.5, -4.0), "": (-0.01, -8.0)}  # (the word's, each other's)

    def __init__(self, script: Callable[[str, int], str]):
        self.script = script
        self.calls: list[list[GenerationRequest]] = []
        self.traces: dict[str, list[str]] = {}

    def top(self, word: str, k: int) -> dict[str, float]:
        mine, other = self.TOPS[word[0]] if word[0] in "~?" else self.TOPS[""]
        return dict([(word, mine)] + [(f"other{j}", other) for j in range(1, k)])

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.calls.append(list(requests))
        results = []
        for request in requests:
            question, so_far = first_user_turn(request), request.prompt.continuation
            known = self.traces.setdefault(question, [])
            completions = []
            for _ in range(request.n):
                if so_far:
                    text = next(t for t in known if t.startswith(so_far))
                else:
                    known.append(text := self.script(question, len(known)))
                done, rest = len(so_far.split()), text.split()[len(so_far.split()):]
                words = rest[: request.params.max_tokens]
                finish = "length" if len(rest) > len(words) else "stop"
                k = request.params.logprobs
                completions.append(Completion(
                    text=(" " if done else "") + " ".join(words), token_count=len(words), finish_reason=finish,
                    top_logprobs=tuple(self.top(w, k) for w in words) if k is not None else None))
            results.append(GenerationResult(tuple(completions), 10 + len(so_far.split()), cached_prompt_tokens=10))
        return results
