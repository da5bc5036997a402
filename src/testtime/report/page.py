"""report.html: one self-contained page (plotly inlined, data embedded) and the PNGs beside it."""

from __future__ import annotations

import html
import json
from pathlib import Path

from plotly.offline import get_plotlyjs

from testtime.report import figures
from testtime.report.assets import CSS, EXPLORER_JS, JS
from testtime.report.static import static_pngs
from testtime.store import write_atomic

PNG_NAMES = ("accuracy_vs_tokens.png", "accuracy_vs_flops.png", "coverage.png", "compute_optimal.png")


def embed_json(value) -> str:
    """JSON that is safe inside <script>: no "<" at all, so neither "</script>" nor "<!--" can occur."""
    text = json.dumps(figures.finite(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c")


# -- HTML pieces -------------------------------------------------------------------------------------
def fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):  # accuracies with three decimals, token counts with one
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.3f}" if abs(value) <= 1 else f"{value:,.1f}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, dict):  # e.g. the run's sampling settings: compact, unset ones left out
        return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={fmt(v)}"
                         for k, v in value.items() if v not in (None, [], (), {}))
    return str(value)


def sci(value) -> str:
    return "—" if value is None else f"{value:.3g}"


def one(value) -> str:
    return "—" if value is None else f"{value:,.1f}"


def table(headers: list[str], rows: list[list], text_columns: int = 1, cls: str = "") -> str:
    """An HTML table; the first ``text_columns`` columns are left-aligned text, the rest numbers."""
    def cell(tag: str, i: int, value) -> str:
        align = ' class="text"' if i < text_columns else ""
        return f"<{tag}{align}>{html.escape(value if isinstance(value, str) else fmt(value))}</{tag}>"
    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def not_available(why: str) -> str:
    return f'<p class="na">Not available: {html.escape(why)}.</p>'


def panel(pid: str, title: str, body: str, hint: str = "", wide: bool = False) -> str:
    hint_html = f'<p class="hint">{html.escape(hint)}</p>' if hint else ""
    return (f'<section id="{pid}" class="panel{" wide" if wide else ""}"><h2>{html.escape(title)}</h2>'
            f"{hint_html}{body}</section>")


def plot_or_note(key: str, result: tuple[dict | None, str | None], figs: dict) -> str:
    fig, why = result
    if fig is None:
        return not_available(why or "no data")
    figs[key] = fig
    return f'<div class="plot" id="plot-{key}" data-figure="{key}"></div>'


def difficulty_table(difficulty: dict) -> str:
    def cells(row: dict) -> list:
        return [row["questions"], best(row), row.get("accuracy"), row.get("tokens")]

    def best(row: dict) -> str:
        versus = row.get("versus_next")
        if "best" not in row:
            return "—"
        if versus and not versus["separated"]:  # only the highest, not a winner
            return f"{row['best']} (not separated from {versus['strategy']})"
        return row["best"]
    rows = [[f"L{o['level']}", *cells(o), *cells(p)]
            for o, p in zip(difficulty.get("oracle") or [], difficulty.get("predicted") or [])]
    headers = ["level", "oracle: questions", "best", "accuracy", "tokens",
               "predicted: questions", "best", "accuracy", "tokens"]
    return "<h3>Best strategy per level</h3>" + table(headers, rows)


def efficiency(row: dict) -> str:
    """A ratio only where the paired difference from the baseline excludes zero (see analysis.paired)."""
    if row.get("efficiency") is not None:
        return f"{row['efficiency']:.2f}×"
    if row.get("efficiency_at_least") is not None:
        return f"≥ {row['efficiency_at_least']:.2f}×"  # the baseline never matches: only a lower bound
    if not row["versus_baseline"]["separated"]:
        return "not separated"
    return "below the baseline" if row["versus_baseline"]["difference"] < 0 else "—"


def difference(d: dict) -> str:
    """A paired difference with its interval, in points."""
    return f"{d['difference'] * 100:+.1f} pp ({d['ci95'][0] * 100:+.1f} to {d['ci95'][1] * 100:+.1f})"


def versus_best_fixed(row: dict) -> str:
    d = row.get("versus_best_fixed")
    if not d:
        return "—"
    verdict = "separated" if d["separated"] else "not separated"
    return f"{d['strategy']}: {difference(d)}, {verdict}"


def efficiency_table(optimal: dict) -> str:
    base = optimal["baseline"]
    # The intervals are in the plot; the table stays narrow enough for its half-width panel.
    rows = [[f"{base}@{c['budget']}", c["limit_tokens"], c["accuracy"], c["tokens"], c["baseline_accuracy"],
             difference(c["versus_baseline"]), c.get("baseline_tokens_to_match"), efficiency(c),
             versus_best_fixed(c)]
            for c in optimal["curve"]]
    headers = ["baseline budget", "token limit", "policy accuracy", "policy tokens", "baseline accuracy",
               "policy − baseline (paired 95% CI)", "baseline tokens to match", "efficiency",
               "policy − best single strategy within the limit"]
    return table(headers, rows)


def train_vs_test_body(tvt) -> str:
    if not tvt or not tvt.get("rows"):
        return not_available("no larger model was compared; run `testtime train-vs-test RUN_DIR LARGE_RUN_DIR`")
    keys = list(dict.fromkeys(k for row in tvt["rows"] for k in row))
    note = f'<p class="hint">{html.escape(str(tvt.get("note") or ""))}</p>'
    note += "".join(f'<p class="hint">{who} model: {html.escape(fmt(tvt[who]))}</p>'
                    for who in ("small", "large") if isinstance(tvt.get(who), dict))
    # Spaces for underscores so the long column names can wrap.
    return note + table([k.replace("_", " ") for k in keys], [[row.get(k) for k in keys] for row in tvt["rows"]],
                        text_columns=0)


def points_table(points: list[dict]) -> str:
    if not points:
        return not_available("the run holds no points")
    headers = ["strategy", "budget", "source", "accuracy", "95% CI", "questions", "tokens", "FLOPs",
               "wall s", "samples"]
    rows = [[p["strategy"], p["budget"], p["source"], p["accuracy"], p.get("ci95"), p.get("questions"),
             p.get("tokens"), sci(p.get("flops")), sci(p.get("wall_seconds")), one(p.get("samples"))]
            for p in points]
    return table(headers, rows, text_columns=1)


def header(title: str, meta: dict, scaling: dict) -> str:
    facts = dict(meta)
    for key in ("pool_size", "seeds", "orders"):
        if scaling.get(key):
            facts.setdefault(key.replace("_", " "), scaling[key])
    if scaling.get("unfinished"):  # an interrupted run: its unfinished units are left out of every figure
        facts["left out, unfinished"] = "; ".join(f"{u['unit']} ({u['questions']} of {u['of']} questions)"
                                                  for u in scaling["unfinished"])
    items = "".join(f"<div><dt>{html.escape(str(k))}</dt><dd>{html.escape(fmt(v))}</dd></div>"
                    for k, v in facts.items() if v not in (None, "", {}, []))
    return f"<header><h1>{html.escape(title)}</h1><dl>{items}</dl></header>"


# -- the page ----------------------------------------------------------------------------------------
def document(title: str, body: str, *, css: str = CSS, scripts: tuple[str, ...] = (), plotly: bool = False) -> str:
    """One whole HTML page: the report, the live view and the server's /ui share this frame."""
    # MathJaxConfig 'local' keeps plotly from ever reaching for MathJax on a CDN.
    head_scripts = (f"<script>window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script>"
                    f"<script>{get_plotlyjs()}</script>") if plotly else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
            f"<title>{html.escape(title)}</title><style>{css}</style>{head_scripts}</head><body>{body}"
            + "".join(f"<script>{js}</script>" for js in scripts) + "</body></html>")


def render(scaling: dict, explorer: list[dict], *, title: str, meta: dict) -> str:
    figs: dict = {}
    sections = [
        panel("panel-tokens", "Accuracy vs tokens",
              plot_or_note("tokens", figures.accuracy_figure(scaling, "tokens"), figs),
              "Mean computed tokens per question (log scale); bars are 95% bootstrap intervals, "
              "dashed lines the fit a + b ln(tokens)."),
        panel("panel-flops", "Accuracy vs FLOPs",
              plot_or_note("flops", figures.accuracy_figure(scaling, "flops"), figs),
              "Policy and verifier FLOPs per question; dashed lines the fit a + b ln(FLOPs)."),
        panel("panel-coverage", "Coverage: pass@k",
              plot_or_note("coverage", figures.coverage_figure(scaling), figs)
              + (not_available(f"coverage law not fitted: {scaling['coverage']['error']}")
                 if (scaling.get("coverage") or {}).get("error") else ""),
              "Share of questions with a right answer among k samples, the fitted law exp(a k^b) "
              "and its extrapolation with prediction intervals."),
    ]
    optimal = scaling.get("compute_optimal")
    sections.append(panel(
        "panel-compute-optimal", "Compute-optimal policy",
        plot_or_note("compute-optimal", figures.compute_optimal_figure(scaling), figs)
        + (efficiency_table(optimal) if optimal and optimal.get("curve") else ""),
        "Per-difficulty choice of strategy under each baseline budget's token limit, scored on held-out "
        "questions; efficiency = baseline tokens to match ÷ policy tokens, given only where the paired "
        "bootstrap interval of policy − baseline on the same questions excludes zero"
        + (f" (probe: {optimal['probe']} samples)." if optimal else ".")))
    difficulty = scaling.get("difficulty")
    sections.append(panel(
        "panel-difficulty", "Accuracy by difficulty",
        plot_or_note("difficulty", figures.difficulty_figure(scaling), figs)
        + (difficulty_table(difficulty) if difficulty else ""),
        "Questions in five levels (1 easiest); each strategy at its largest budget. Both kinds of level "
        "are read from the shared pool, so points replayed from that pool are favoured on easy levels and "
        "disfavoured on hard ones against runs that draw afresh (searches): regression to the mean. "
        "Compare a search with the pool across levels only on levels cut from other draws.", wide=True))
    sections.append(panel(
        "panel-ratio", "Sequential vs parallel", plot_or_note("ratio", figures.ratio_figure(scaling), figs),
        "Accuracy at one budget against how it is split: chains of revisions (each attempt revising the "
        "last ones) from 1 chain to all-parallel sampling, per oracle difficulty level (1 easiest). A level's "
        "best split is a claim only where the difficulty table's paired interval separates it."))
    sections.append(panel("panel-train-test", "Train-time vs test-time compute",
                          train_vs_test_body(scaling.get("train_vs_test")), wide=True))
    sections.append(panel("panel-points", "All points", points_table(scaling.get("points") or []),
                          "'pool' points are estimated from the shared sample pool; 'run' points ran as themselves.",
                          wide=True))
    explorer_body = ('<label>Question <select id="question-select"></select></label><div id="explorer-view"></div>'
                     if explorer else not_available("no result lines were given"))
    sections.append(panel("panel-explorer", "Search explorer", explorer_body,
                          "Each unit's answer to one question: a search's tree (the chosen path highlighted, "
                          "■ marks a finished solution) or a pool's samples.", wide=True))

    nav = "".join(f'<a href="#{pid}">{name}</a>' for pid, name in (
        ("panel-tokens", "tokens"), ("panel-flops", "FLOPs"), ("panel-coverage", "coverage"),
        ("panel-compute-optimal", "compute-optimal"), ("panel-difficulty", "difficulty"),
        ("panel-ratio", "sequential vs parallel"), ("panel-train-test", "train vs test"), ("panel-points", "points"), ("panel-explorer", "explorer")))
    data = embed_json({"title": title, "meta": meta, "scaling": scaling, "explorer": explorer, "figures": figs})
    return document(title, f"{header(title, meta, scaling)}<nav>{nav}</nav><main>{''.join(sections)}</main>"
                           f'<script type="application/json" id="report-data">{data}</script>',
                    scripts=(EXPLORER_JS, JS), plotly=True)


def write_report(run_dir: Path, scaling: dict, explorer: list[dict], *, title: str, meta: dict) -> list[Path]:
    """Write report.html and the PNGs of the plots that have data into run_dir; return their paths."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    page = run_dir / "report.html"
    write_atomic(page, render(scaling, explorer, title=title, meta=meta).encode("utf-8"))
    written = [page]
    pngs = static_pngs(scaling)
    for name in PNG_NAMES:
        path = run_dir / name
        if name in pngs:
            write_atomic(path, pngs[name])
            written.append(path)
        else:
            path.unlink(missing_ok=True)  # a PNG left from an earlier report would no longer match this one
    return written
