"""Verifiers register themselves by name when their module is imported; every module here is."""

from testtime.registry import import_all
from testtime.verifiers.base import Aggregation, OutcomeVerifier, ProcessVerifier, Solution, Verifier, aggregate

import_all(__name__, __path__)

__all__ = ["Aggregation", "OutcomeVerifier", "ProcessVerifier", "Solution", "Verifier", "aggregate"]
