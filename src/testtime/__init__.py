"""testtime: test-time compute scaling for LLM reasoning.

The public API is at the top (``tt.Solver``, ``tt.SamplingParams``, ``tt.Task``, ``tt.Strategy``,
``tt.Verifier``, ``tt.load_dataset``, ``tt.GeneratorSpec``); it is imported on first use, so that
importing one module of the package stays light.
"""

import importlib

from testtime.version import __version__

_PUBLIC = {
    "Solver": "testtime.api",
    "SolverClosedError": "testtime.api",
    "SamplingParams": "testtime.generators",
    "GeneratorSpec": "testtime.generators",
    "Task": "testtime.tasks",
    "load_dataset": "testtime.tasks",
    "Strategy": "testtime.strategies",
    "Verifier": "testtime.verifiers",
    "ParameterError": "testtime.params",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'testtime' has no attribute {name!r}")


def __dir__():
    return __all__
