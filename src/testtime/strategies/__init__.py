"""Strategies register themselves by name when their module is imported."""

from testtime.strategies import (  # noqa: F401  (imported to register)
    adaptive_consistency,
    best_of_n,
    majority,
    single,
    weighted_best_of_n,
)
from testtime.strategies.base import Context, QuestionResult, Strategy
from testtime.strategies.parallel import ParallelStrategy, Pool, PoolSource

__all__ = ["Context", "ParallelStrategy", "Pool", "PoolSource", "QuestionResult", "Strategy"]
