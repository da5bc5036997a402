"""Strategies register themselves by name when their module is imported."""

from testtime.strategies import (  # noqa: F401  (imported to register)
    adaptive_consistency,
    beam_search,
    best_of_n,
    compute_optimal,
    dvts,
    lookahead,
    majority,
    mcts,
    particle_filtering,
    rebase,
    sample_pool,
    single,
    weighted_best_of_n,
)
from testtime.strategies.base import Context, QuestionResult, Strategy
from testtime.strategies.parallel import ParallelStrategy, Pool, PoolSource
from testtime.strategies.search import SearchStrategy

__all__ = ["Context", "ParallelStrategy", "Pool", "PoolSource", "QuestionResult", "SearchStrategy", "Strategy"]
