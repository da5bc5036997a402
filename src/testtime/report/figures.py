"""The report's plots as plotly figures, and the curve data they share with the PNGs.

Each builder returns ``(figure as a JSON-ready dict, None)`` or ``(None, why not)``,
so the page can show a short note in place of a plot that has no data.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

PASS_AT_K = "pass@k"
AXES = {"tokens": "computed tokens per question", "flops": "FLOPs per question"}
NO_POOL = "the run has no sample pool (strategy 'pool')"


# -- shared data -------------------------------------------------------------------------------------
def finite(value):
    """JSON has no NaN or infinity (JSON.parse rejects them): make them null, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, np.generic):
        return finite(value.item())
    if isinstance(value, np.ndarray):
        return finite(value.tolist())
    return value


def curves(scaling: dict) -> dict[str, list[dict]]:
    """Points per strategy (in order of first appearance), sorted by budget."""
    out: dict[str, list[dict]] = {}
    for p in scaling.get("points") or []:
        out.setdefault(p["strategy"], []).append(p)
    return {s: sorted(ps, key=lambda p: p["budget"]) for s, ps in out.items()}


def colors(strategies) -> dict[str, str]:
    """One colour per strategy for every panel and PNG; pass@k, an upper bound, in grey."""
    palette = iter(qualitative.Plotly * 3)
    return {s: "#555555" if s == PASS_AT_K else next(palette) for s in strategies}


def fit_curve(fit: dict | None, xs: list[float]) -> tuple[np.ndarray, np.ndarray] | None:
    """The fitted a + b ln(x) over the range of xs, or None when there is no usable fit."""
    xs = [x for x in xs if x and x > 0]
    if not fit or fit.get("a") is None or fit.get("b") is None or len(xs) < 2:
        return None
    grid = np.geomspace(min(xs), max(xs), 40)
    return grid, fit["a"] + fit["b"] * np.log(grid)


def coverage_curve(coverage: dict | None, kmax: float) -> tuple[np.ndarray, np.ndarray] | None:
    """pass@k = exp(a k^b) from k = 1 to kmax."""
    if not coverage or "error" in coverage or coverage.get("a") is None:
        return None
    grid = np.geomspace(1, max(kmax, 2), 60)
    return grid, np.exp(coverage["a"] * grid ** coverage["b"])


def errors(points: list[dict], key: str = "accuracy") -> tuple[list, list]:
    """Plus and minus error bar lengths from each point's ci95 (0 where unknown)."""
    plus, minus = [], []
    for p in points:
        lo, hi = (p.get("ci95") or [None, None])[:2]
        plus.append(hi - p[key] if hi is not None else 0)
        minus.append(p[key] - lo if lo is not None else 0)
    return plus, minus


def level_labels(levels: list[dict]) -> list[str]:
    """strategy@budget to compare per level: each strategy at the largest budget it has."""
    largest: dict[str, int] = {}
    for row in levels:
        for label in row.get("points") or {}:
            name, _, budget = label.rpartition("@")
            largest[name] = max(largest.get(name, 0), int(budget))
    return [f"{name}@{budget}" for name, budget in largest.items()]


def log_ticks(values) -> list[float]:
    """Round tick values for a log axis: decades, or 1-2-5 per decade, or finer for a short range.

    Plotly's own log ticks label every 20k across a short range, which crowds and tilts the labels.
    """
    xs = [v for v in values if v and v > 0]
    if not xs:
        return []
    lo, hi = min(xs), max(xs)
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
    ladders = ((1,), (1, 2, 5), (1, 2, 3, 5), (1, 1.5, 2, 3, 4, 5, 6, 8),
               (1, 1.2, 1.4, 1.6, 1.8, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 9))
    for mantissas in ladders:
        ticks = [m * 10**e for e in decades for m in mantissas]
        if sum(lo <= t <= hi for t in ticks) >= 4:
            break
    # Keep one tick either side of the data: plotly pads the axis, and shows what falls inside.
    return [t for t in ticks if lo / 1.6 <= t <= hi * 1.6]


def _ticks_of(fig: dict) -> list[float]:
    return [x for trace in fig["data"] for x in (trace.get("x") or []) if isinstance(x, (int, float))]


# -- plotly figures ------------------------------------------------------------------------------------
def _layout(fig: go.Figure, x_title: str, y_title: str = "accuracy", log_x: bool = True) -> dict:
    fig.update_layout(template="plotly_white", height=430, margin=dict(l=60, r=20, t=30, b=40),
                      legend=dict(orientation="h", y=-0.2, x=0), hovermode="closest",
                      font=dict(family="system-ui, -apple-system, Segoe UI, sans-serif", size=12))
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    out = finite(fig.to_plotly_json())
    if log_x:  # round ticks with SI labels (40k, 1.2M) instead of plotly's small-digit log ticks
        out["layout"]["xaxis"].update(type="log", tickformat="~s", tickvals=log_ticks(_ticks_of(out)))
    return out


def accuracy_figure(scaling: dict, axis: str) -> tuple[dict | None, str | None]:
    by_strategy = curves(scaling)
    if not by_strategy:
        return None, "the run holds no points"
    palette, fits = colors(by_strategy), scaling.get("fits") or {}
    fig = go.Figure()
    for name, points in by_strategy.items():
        xs = [p.get(axis) for p in points]
        if not any(x and x > 0 for x in xs):
            continue
        plus, minus = errors(points)
        fig.add_trace(go.Scatter(
            x=xs, y=[p["accuracy"] for p in points], mode="markers", name=name, legendgroup=name,
            marker=dict(color=palette[name], size=9, symbol="diamond" if name == PASS_AT_K else "circle"),
            error_y=dict(type="data", array=plus, arrayminus=minus, symmetric=False, thickness=1.2, width=4),
            text=[f"{p['strategy']}@{p['budget']} ({p['source']})" for p in points],
            hovertemplate="%{text}<br>accuracy %{y:.3f}<br>" + axis + " %{x:,.4g}<extra></extra>"))
        fit = (fits.get(name) or {}).get(axis)
        line = fit_curve(fit, xs)
        if line is not None:
            r2 = f"{fit['r2']:.2f}" if fit.get("r2") is not None and math.isfinite(fit["r2"]) else "n/a"
            fig.add_trace(go.Scatter(
                x=line[0], y=line[1], mode="lines", name=f"{name} fit", legendgroup=name, showlegend=False,
                line=dict(color=palette[name], dash="dash", width=1.5),
                hovertemplate=f"{name}: {fit['a']:.3f} + {fit['b']:.3f} ln(x), r² {r2}<extra></extra>"))
    return _layout(fig, AXES[axis]), None


def coverage_figure(scaling: dict) -> tuple[dict | None, str | None]:
    coverage = scaling.get("coverage")
    points = curves(scaling).get(PASS_AT_K)
    if coverage is None or not points:
        return None, NO_POOL + ", so there is no pass@k"
    fig = go.Figure()
    plus, minus = errors(points)
    fig.add_trace(go.Scatter(
        x=[p["budget"] for p in points], y=[p["accuracy"] for p in points], mode="markers", name="pass@k (pool)",
        marker=dict(color="#555555", size=9),
        error_y=dict(type="data", array=plus, arrayminus=minus, symmetric=False, thickness=1.2, width=4),
        hovertemplate="k=%{x}<br>pass@k %{y:.3f}<extra></extra>"))
    far = coverage.get("extrapolated") or []
    line = coverage_curve(coverage, max([p["budget"] for p in points] + [e["k"] for e in far]))
    if line is not None:
        fig.add_trace(go.Scatter(
            x=line[0], y=line[1], mode="lines", name=f"exp(a k^b): a={coverage['a']:.3f}, b={coverage['b']:.3f}",
            line=dict(color="#1f77b4", dash="dash"), hoverinfo="skip"))
    if far:
        plus, minus = errors([{"accuracy": e["pass@k"], "ci95": e.get("ci95")} for e in far])
        fig.add_trace(go.Scatter(
            x=[e["k"] for e in far], y=[e["pass@k"] for e in far], mode="markers", name="extrapolated",
            marker=dict(color="#1f77b4", size=10, symbol="circle-open", line=dict(width=2)),
            error_y=dict(type="data", array=plus, arrayminus=minus, symmetric=False, thickness=1.2, width=4),
            hovertemplate="k=%{x}<br>predicted pass@k %{y:.3f}<extra></extra>"))
    out = _layout(fig, "samples k")
    out["layout"]["yaxis"]["range"] = [0, 1.02]
    ks = sorted({p["budget"] for p in points} | {e["k"] for e in far})
    out["layout"]["xaxis"].update(tickvals=ks, ticktext=[str(k) for k in ks])  # the k actually measured
    return out, None


def difficulty_figure(scaling: dict) -> tuple[dict | None, str | None]:
    difficulty = scaling.get("difficulty")
    if not difficulty:
        return None, NO_POOL + ": questions are binned by the pool's pass@1 and probe"
    kinds = [("oracle", "oracle bins: 1 − pass@1 (uses gold)"), ("predicted", "predicted bins: agreement + verifier score (no gold)")]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.05,
                        subplot_titles=[title for _, title in kinds])
    labels = level_labels(difficulty.get("oracle") or [])
    palette = colors([label.rpartition("@")[0] for label in labels])
    for col, (kind, _) in enumerate(kinds, start=1):
        levels = difficulty.get(kind) or []
        for label in labels:
            fig.add_trace(go.Bar(
                x=[f"L{row['level']} ({row['questions']} q)" for row in levels],
                y=[(row.get("points") or {}).get(label) for row in levels],
                name=label, legendgroup=label, showlegend=col == 1,
                marker_color=palette[label.rpartition("@")[0]],
                hovertemplate=label + "<br>%{x}: accuracy %{y:.3f}<extra></extra>"), row=1, col=col)
    out = _layout(fig, "difficulty level (1 easiest … 5 hardest)", log_x=False)
    out["layout"].update(barmode="group", margin=dict(l=60, r=20, t=60, b=40))  # room for subplot titles
    return out, None


def ratio_points(scaling: dict) -> tuple[int, dict[int, str]] | None:
    """The sequential/parallel sweep at its largest budget B: {chains: point label}, chains = B being
    parallel sampling (majority@B) where the pool has it; None without revisions in several chains."""
    revisions = [p for p in scaling.get("points") or []
                 if p.get("name") == "revisions" and (p.get("params") or {}).get("chains")]
    if not revisions:
        return None
    budget = max(p["budget"] for p in revisions)
    at = {p["params"]["chains"]: f"{p['strategy']}@{budget}" for p in revisions if p["budget"] == budget}
    if any(p["strategy"] == "majority" and p["budget"] == budget for p in scaling["points"]):
        at.setdefault(budget, f"majority@{budget}")
    return (budget, dict(sorted(at.items()))) if len(at) > 1 else None


def ratio_figure(scaling: dict) -> tuple[dict | None, str | None]:
    sweep, levels = ratio_points(scaling), (scaling.get("difficulty") or {}).get("oracle")
    if sweep is None or not levels:
        return None, ("no sequential/parallel sweep in this run: revisions at one budget in several chains "
                      "(revisions[chains=C]@B for a few C, with a pool; bench/revisions.py)")
    budget, at = sweep
    fig = go.Figure()
    for row in levels:
        if not row.get("questions"):
            continue
        fig.add_trace(go.Scatter(
            x=list(at), y=[(row.get("points") or {}).get(label) for label in at.values()], mode="lines+markers",
            name=f"L{row['level']} ({row['questions']} q)", customdata=list(at.values()),
            hovertemplate="%{customdata}: accuracy %{y:.3f}<extra></extra>"))
    return _layout(fig, f"parallel chains at budget {budget} (1: all sequential, {budget}: all parallel)"), None


def compute_optimal_figure(scaling: dict) -> tuple[dict | None, str | None]:
    optimal = scaling.get("compute_optimal")
    if not optimal or not optimal.get("curve"):
        why = (scaling.get("missing") or {}).get("compute_optimal")
        return None, why or "no baseline budget reaches the probe's cost"
    curve, base = optimal["curve"], optimal["baseline"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[c["limit_tokens"] for c in curve], y=[c["baseline_accuracy"] for c in curve], mode="lines+markers",
        name=f"{base} (baseline)", line=dict(color="#7f7f7f"), text=[f"{base}@{c['budget']}" for c in curve],
        hovertemplate="%{text}<br>accuracy %{y:.3f}<br>tokens %{x:,.4g}<extra></extra>"))
    plus, minus = errors(curve)
    fig.add_trace(go.Scatter(
        x=[c["tokens"] for c in curve], y=[c["accuracy"] for c in curve], mode="lines+markers",
        name="compute-optimal policy (cross-validated)", line=dict(color="#d62728"),
        error_y=dict(type="data", array=plus, arrayminus=minus, symmetric=False, thickness=1.2, width=4),
        text=[f"limit of {base}@{c['budget']}" for c in curve],
        hovertemplate="%{text}<br>accuracy %{y:.3f}<br>tokens %{x:,.4g}<extra></extra>"))
    return _layout(fig, AXES["tokens"]), None
