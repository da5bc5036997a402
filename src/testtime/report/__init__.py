"""The offline report of a scaling sweep: one self-contained HTML file and static PNGs.

``explorer_data`` turns a run's result lines into what the search explorer shows;
``write_report`` draws the scaling analysis (``SweepAnalysis.to_dict()``) and the
explorer into ``report.html`` beside PNGs of the main plots.
"""

from testtime.report.explorer import explorer_data
from testtime.report.page import write_report

__all__ = ["explorer_data", "write_report"]
