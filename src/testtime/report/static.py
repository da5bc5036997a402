"""Static PNGs of the main plots, for papers and for readers without a browser.

Figures are made with ``matplotlib.figure.Figure`` rather than pyplot: it draws with
Agg and leaves the process's global backend and figure list alone.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, LogFormatter

from testtime.report.figures import AXES, PASS_AT_K, colors, coverage_curve, curves, errors, fit_curve


class _LogTicks(LogFormatter):
    """Log-axis labels as 20, 300, 4k, 1.2M (not 2×10¹): LogFormatter picks the ticks, EngFormatter writes them."""

    _eng = EngFormatter(sep="")

    def _num_to_string(self, x, vmin, vmax):
        return self._eng.format_eng(x)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=130, bbox_inches="tight")
    return buffer.getvalue()


def _axes(x_label: str, title: str):
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    ax.set(xscale="log", xlabel=x_label, ylabel="accuracy", title=title)
    ax.xaxis.set_major_formatter(_LogTicks())
    ax.xaxis.set_minor_formatter(_LogTicks(labelOnlyBase=False, minor_thresholds=(1, 0.5)))
    ax.grid(True, which="major", alpha=0.3)
    return fig, ax


def accuracy_png(scaling: dict, axis: str) -> bytes | None:
    by_strategy = curves(scaling)
    if not by_strategy:
        return None
    palette, fits = colors(by_strategy), scaling.get("fits") or {}
    fig, ax = _axes(AXES[axis], f"Accuracy vs {'tokens' if axis == 'tokens' else 'FLOPs'}")
    for name, points in by_strategy.items():
        usable = [p for p in points if p.get(axis) and p[axis] > 0]
        if not usable:
            continue
        plus, minus = errors(usable)
        ax.errorbar([p[axis] for p in usable], [p["accuracy"] for p in usable], yerr=[minus, plus],
                    fmt="D" if name == PASS_AT_K else "o", color=palette[name], capsize=3, label=name)
        line = fit_curve((fits.get(name) or {}).get(axis), [p[axis] for p in usable])
        if line is not None:
            ax.plot(*line, "--", color=palette[name], linewidth=1)
    ax.legend(fontsize=8)
    return _png(fig)


def coverage_png(scaling: dict) -> bytes | None:
    points = curves(scaling).get(PASS_AT_K)
    coverage = scaling.get("coverage")
    if coverage is None or not points:
        return None
    fig, ax = _axes("samples k", "Coverage: pass@k")
    ax.set_ylabel("pass@k")
    plus, minus = errors(points)
    ax.errorbar([p["budget"] for p in points], [p["accuracy"] for p in points], yerr=[minus, plus], fmt="o",
                color="#555555", capsize=3, label="pass@k (pool)")
    far = coverage.get("extrapolated") or []
    line = coverage_curve(coverage, max([p["budget"] for p in points] + [e["k"] for e in far]))
    if line is not None:
        ax.plot(*line, "--", color="#1f77b4", label=f"exp(a k^b), a={coverage['a']:.3f}, b={coverage['b']:.3f}")
    if far:
        plus, minus = errors([{"accuracy": e["pass@k"], "ci95": e.get("ci95")} for e in far])
        ax.errorbar([e["k"] for e in far], [e["pass@k"] for e in far], yerr=[minus, plus], fmt="o", mfc="none",
                    color="#1f77b4", capsize=3, label="extrapolated")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    return _png(fig)


def compute_optimal_png(scaling: dict) -> bytes | None:
    optimal = scaling.get("compute_optimal")
    if not optimal or not optimal.get("curve"):
        return None
    curve = optimal["curve"]
    fig, ax = _axes(AXES["tokens"], "Compute-optimal policy vs baseline")
    ax.plot([c["limit_tokens"] for c in curve], [c["baseline_accuracy"] for c in curve], "o-", color="#7f7f7f",
            label=f"{optimal['baseline']} (baseline)")
    plus, minus = errors(curve)
    ax.errorbar([c["tokens"] for c in curve], [c["accuracy"] for c in curve], yerr=[minus, plus], fmt="o-",
                color="#d62728", capsize=3, label="compute-optimal (cross-validated)")
    ax.legend(fontsize=8)
    return _png(fig)


def static_pngs(scaling: dict) -> dict[str, bytes]:
    """File name -> PNG bytes, for each plot that has data."""
    pngs = {"accuracy_vs_tokens.png": accuracy_png(scaling, "tokens"),
            "accuracy_vs_flops.png": accuracy_png(scaling, "flops"),
            "coverage.png": coverage_png(scaling),
            "compute_optimal.png": compute_optimal_png(scaling)}
    return {name: data for name, data in pngs.items() if data is not None}
