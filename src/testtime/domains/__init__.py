"""Domains: what kind of answer a task wants, and how it is read, voted on and graded.

A domain is one module: its prompt, how a reply becomes a candidate (the answer and the key that
votes count), and how candidates are graded against the task. ``math`` (a final number or
expression) and ``code`` (a Python function, graded by hidden tests in the sandbox) are the two.
A task names its domain (``Task.domain``); everything else asks ``domain_of(task)``.
"""

from testtime.domains.base import Domain, Reply, domain_of, grade_results, make_candidates
from testtime.registry import import_all

import_all(__name__, __path__)

__all__ = ["Domain", "Reply", "domain_of", "grade_results", "make_candidates"]
