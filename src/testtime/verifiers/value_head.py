"""Verifiers trained by `testtime train-prm`: value heads on a frozen small model's
hidden states. ``prm`` scores every step; ``orm`` scores the whole solution.

Without an ``artifact`` folder both load the heads shipped in the package, trained
for the embedded model on GSM8K train. The PRM and ORM of one artifact share the
feature model and its cache, so scoring a pool with both runs each solution once.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

from testtime.heads.artifact import HeadArtifact, artifact_digest, resolve_artifact
from testtime.heads.features import FeatureSpec, HiddenStates
from testtime.verifiers.base import Aggregation, OutcomeVerifier, ProcessVerifier, Solution, StepScores


@lru_cache(maxsize=4)
def _load(folder: str) -> HeadArtifact:
    return HeadArtifact.load(folder)


@lru_cache(maxsize=2)
def _features(spec: FeatureSpec) -> CachedHiddenStates:
    return CachedHiddenStates(spec)


class CachedHiddenStates:
    """Hidden states by (question, steps), computed once."""

    def __init__(self, spec: FeatureSpec, limit: int = 100_000):
        self.states = HiddenStates(spec)
        self.cache: dict[tuple[str, tuple[str, ...]], tuple] = {}
        self.limit = limit

    def __call__(self, items: Sequence[tuple[str, tuple[str, ...]]]) -> list[tuple]:
        missing = list(dict.fromkeys(item for item in items if item not in self.cache))
        if missing:
            if len(self.cache) + len(missing) > self.limit:
                self.cache.clear()
            self.cache.update(zip(missing, self.states.with_tokens(missing)))
        return [self.cache[item] for item in items]


class _HeadVerifier:
    head_name = ""

    def _setup(self, artifact: str | Path | None) -> None:
        self.artifact_path = resolve_artifact(artifact)
        loaded = _load(str(self.artifact_path))
        self.head = loaded.heads[self.head_name]
        self.features = _features(loaded.feature)
        self.parameter_count = self.features.states.parameter_count

    def identity(self) -> str:
        return artifact_digest(self.artifact_path)

    def _states(self, solutions: Sequence[Solution]) -> list[tuple]:
        return self.features([(s.question, tuple(s.steps)) for s in solutions])


class ValueHeadPRM(_HeadVerifier, ProcessVerifier):
    """The trained PRM: P(a continuation reaches the right answer) at each step's end.

    A step's score is already the value of its whole prefix (its Monte Carlo label is the chance that
    the solution so far still ends right), so the last step's score is the solution's, as in Snell et
    al. 2024; a product counts every earlier step again and punishes long solutions (README, "The
    shipped PRMs": on the 0.5B's test pool the product's weighted vote is separated below the last's).
    """

    name = "prm"
    model_parameter = "artifact"
    head_name = "prm"

    def __init__(self, artifact: str | Path | None = None, aggregation: Aggregation | str = Aggregation.LAST):
        super().__init__(aggregation)
        self._setup(artifact)

    def _score(self, solutions: Sequence[Solution]) -> list[StepScores]:
        return [StepScores(tuple(float(p) for p in self.head.predict(array)), tokens)
                for array, tokens in self._states(solutions)]


class ValueHeadORM(_HeadVerifier, OutcomeVerifier):
    """The trained ORM: P(the final answer is right) from the state at the solution's end."""

    name = "orm"
    model_parameter = "artifact"
    head_name = "orm"

    def __init__(self, artifact: str | Path | None = None):
        self._setup(artifact)

    def _score(self, solutions: Sequence[Solution]) -> list[StepScores]:
        return [StepScores((float(self.head.predict(array[-1:])[0]),), tokens)
                for array, tokens in self._states(solutions)]
