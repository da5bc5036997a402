"""Self-certainty (Kang et al. 2025, arXiv 2502.18581): best-of-N with the model as its own verifier.

Each of ``budget`` samples is scored by its self-certainty, the mean KL divergence of its tokens'
distributions from the uniform one (testtime.confidence, over the top ``top_k`` log-probabilities the
engine reports), and the answer is chosen by Borda voting over those scores (``selector``). No
verifier runs and no sample is dropped. The samples are DeepConf offline's for the same seed, so the
two compare on the same draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from testtime.selection import Selector, checked_selector
from testtime.strategies.base import Context, QuestionResult, Strategy
from testtime.strategies.deepconf import DeepConf, check_top_k
from testtime.tasks import Task


@dataclass
class SelfCertainty(Strategy):
    """The answer whose samples the model was most certain of, by rank (Borda) or by sum."""

    name = "self_certainty"
    budget: int = field(default=16, metadata={"help": "samples per question"})
    selector: str = field(default=Selector.BORDA.value, metadata={
        "help": "borda (rank-weighted vote), weighted (sum of self-certainties), best (the most certain sample) "
                "or majority"})
    top_k: int = field(default=5, metadata={"help": "top log-probabilities per token (vLLM allows 20)"})

    def __post_init__(self):
        self.require_integers(1, "budget", "top_k")
        check_top_k(self.name, self.top_k)
        self._deepconf = DeepConf(budget=self.budget, measure="self_certainty", keep=1.0, top_k=self.top_k,
                                  selector=checked_selector(self.name, self.selector))
        self.selector = self._deepconf.selector

    def check(self, verifier) -> None:
        """No verifier: the scores are the samples' own self-certainties."""

    def solve(self, tasks: Sequence[Task], ctx: Context) -> list[QuestionResult]:
        results = self._deepconf.solve(tasks, ctx)
        for result in results:
            result.details = {"rounds": result.details["rounds"], "self_certainties": result.details["confidences"]}
        return results
