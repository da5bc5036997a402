"""Verifiers register themselves by name when their module is imported."""

from testtime.verifiers import arithmetic, hf_prm, judge, served, value_head  # noqa: F401  (imported to register)
from testtime.verifiers.base import Aggregation, OutcomeVerifier, ProcessVerifier, Solution, Verifier, aggregate

__all__ = ["Aggregation", "OutcomeVerifier", "ProcessVerifier", "Solution", "Verifier", "aggregate"]
