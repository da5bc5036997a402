"""The ``testtime`` command: one small module per group of commands, each parse -> spec -> workflow -> print.

``console`` holds what they share (the error style, the engine log, tables); the work itself is in
``testtime.specs`` (names to objects) and ``testtime.workflows`` (what a command does).
"""

from testtime.cli import run, analysis, grade, learn, serve, listing, watch  # noqa: F401, I001  (each adds its commands, in this order)
from testtime.cli.app import app

__all__ = ["app"]
