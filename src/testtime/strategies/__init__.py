"""Strategies register themselves by name when their module is imported; every module here is.

A new strategy is one new file in this folder: a dataclass subclass of a family base
(``ParallelStrategy``, ``SearchStrategy``) with a ``name``; nothing else changes.
"""

from testtime.registry import import_all
from testtime.strategies.base import Context, QuestionResult, Strategy
from testtime.strategies.parallel import ParallelStrategy, Pool, PoolSource
from testtime.strategies.search import SearchStrategy

import_all(__name__, __path__)

__all__ = ["Context", "ParallelStrategy", "Pool", "PoolSource", "QuestionResult", "SearchStrategy", "Strategy"]
