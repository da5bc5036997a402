"""What every command shares: the console, the one error style, opening an engine quietly, tables."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Iterator, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from testtime.analysis.paired import Difference
from testtime.generators import DTYPES, REPRODUCIBLE_DTYPE, Generator, GeneratorSpec
from testtime.models import ModelNotFoundError
from testtime.store import RunStore
from testtime.workflows import analyse

# vLLM logs every engine detail at INFO; warnings still reach the engine log (or the terminal with --verbose).
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

console = Console(stderr=True)

DTYPE_HELP = (f"the in-process engine's dtype: {', '.join(DTYPES)}; {REPRODUCIBLE_DTYPE} makes resumed, retried, "
              "chunked and Ray-sharded runs bit-identical on the CPU engine; auto: bfloat16 where the CPU or GPU "
              "computes it natively (faster, equal only in distribution), else float32")


def dtype_option() -> str:
    return typer.Option("auto", "--dtype", help=DTYPE_HELP)


def verbose_option() -> bool:
    return typer.Option(False, "--verbose", help="show the engine's and libraries' own logs and progress bars "
                                                 "(by default they go to OUT/engine.log)")


def json_option() -> bool:
    return typer.Option(False, "--json", help="print the results as one JSON object on standard output, "
                                              "for scripts (no tables; messages stay on standard error)")


def print_json(value) -> None:
    """One JSON object on standard output, alone there: messages and tables go elsewhere."""
    from testtime.report.figures import finite  # plotly's import, only when asked

    # NaN (an undefined R^2) is no JSON: null instead, so any JSON reader takes the output
    sys.stdout.write(json.dumps(finite(value), indent=1, allow_nan=False, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str) -> NoReturn:
    """The one way a command stops on bad input or a failure: a red message, exit code 2."""
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code=2)


@contextlib.contextmanager
def stop_cleanly_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C (exit code 143), so the engine is shut down and no process is left."""
    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def open_generator(spec: GeneratorSpec) -> Generator:
    """Open the generator behind a spinner; a missing model or a bad setting is a clean failure."""
    try:
        with console.status(f"starting {spec.backend} generator for {spec.model} ..."):
            return spec.open()
    except (ValueError, ModelNotFoundError) as exc:
        fail(str(exc))


@contextlib.contextmanager
def engine_log(log_file: Path | None) -> Iterator[None]:
    """Send everything written to file descriptors 1 and 2 (the engine processes' logs, which vLLM
    writes to standard output, library warnings, progress bars) to ``log_file``, while testtime's own
    console keeps the terminal. None: no change."""
    if log_file is None:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    own = _writes_to_fd2(sys.stderr)  # else (captured, as under a test runner) the console stays where it is
    if own:
        console.file = os.fdopen(os.dup(saved[2]), "w", buffering=1)
    with open(log_file, "ab", buffering=0) as log:
        for fd in saved:
            os.dup2(log.fileno(), fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        if own:
            console.file.close()
            console.file = None  # back to following sys.stderr


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def progress_bar(description: str) -> Progress:
    columns = (TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[stats]}"))
    return Progress(*columns, console=console, transient=False)


def wide_console() -> Console:
    """Standard output, wide enough for every column when it is a file or a pipe (CI logs, `| tee`)."""
    return Console(width=None if sys.stdout.isatty() else 160)


def print_results(rows: list[dict]) -> None:
    table = Table(title="testtime results")
    for col in ("strategy", "budget", "seed", "accuracy", "95% CI", "completion tok", "prompt tok", "cached",
                "TFLOPs", "wall s"):
        table.add_column(col, justify="left" if col == "strategy" else "right", overflow="fold")
    for r in rows:
        table.add_row(
            r["strategy"], str(r.get("budget")), str(r.get("seed", "")), f"{r['accuracy']:.1%}",
            f"{r['ci95'][0]:.0%}-{r['ci95'][1]:.0%}", f"{r['completion_tokens']:,}",
            f"{r['prompt_tokens']:,}", f"{r['cached_prompt_tokens']:,}", f"{r['flops'] / 1e12:.2f}",
            f"{r['wall_seconds']:.1f}",
        )
    wide_console().print(table)


def print_points(scaling: dict) -> None:
    """Every curve point of a sweep's analysis, and the headline figures."""
    table = Table(title=f"scaling over {scaling['questions']} questions (pool estimates: mean of "
                        f"{scaling['orders']} random orders; 95% bootstrap CI over questions)")
    for col in ("strategy", "budget", "from", "accuracy", "95% CI", "tokens/q", "TFLOPs/q", "wall s/q"):
        table.add_column(col, justify="left" if col in ("strategy", "from") else "right", overflow="fold")
    for p in scaling["points"]:
        table.add_row(escape(p["strategy"]), str(p["budget"]), p["source"], f"{p['accuracy']:.1%}",  # revisions[chains=2]
                      f"{p['ci95'][0]:.0%}-{p['ci95'][1]:.0%}", f"{p['tokens']:,.0f}",
                      f"{p['flops'] / 1e12:.3f}", f"{p['wall_seconds']:.2f}")
    wide_console().print(table)
    for gain in scaling.get("gains_over_one_sample", []):
        console.print(escape("  " + Difference.from_dict(gain).describe(f"{gain['strategy']}@{gain['budget']}",
                                                                        "single@1")))
    for name, fit in scaling["fits"].items():
        t = fit.get("tokens")
        if t:
            r2 = f"R^2 {t['r2']:.2f}" if t["r2"] is not None else "R^2 undefined: accuracy is the same at every budget"
            console.print(f"  {escape(name)}: accuracy = {t['a']:.3f} + {t['b']:.4f} ln(tokens), {r2}")
    for unit in scaling.get("unfinished", []):
        console.print(f"  {escape(unit['unit'])}: left out, {unit['questions']} of {unit['of']} questions done "
                      "(--resume the run to finish it)")
    for what, why in (scaling.get("missing") or {}).items():
        console.print(f"  {what.replace('_', '-')}: not computed ({why}); no {what}.png")
    optimal = scaling.get("compute_optimal")
    for row in (optimal or {}).get("curve", []):
        console.print(escape(f"  compute-optimal within the cost of {optimal['baseline']}@{row['budget']}: "
                             f"{row['accuracy']:.1%} with {row['tokens']:,.0f} tokens/q (baseline "
                             f"{row['baseline_accuracy']:.1%}); {efficiency_claim(optimal['baseline'], row)}"))
        if fixed := row.get("versus_best_fixed"):
            console.print(escape("    against the best single strategy within that cost: "
                                 + Difference.from_dict(fixed).describe("the policy", fixed["strategy"])))


def efficiency_claim(baseline: str, row: dict) -> str:
    """What a compute-optimal curve point supports saying: a ratio only when the paired
    difference from the baseline excludes zero."""
    if row["efficiency"] is not None:
        return f"{baseline} needs {row['efficiency']:.2f}x the compute to match"
    if row["efficiency_at_least"] is not None:
        return f"{baseline} never matches it (>= {row['efficiency_at_least']:.2f}x)"
    same, best = Difference.from_dict(row["versus_baseline"]), row["versus_best_baseline"]
    if not same.separated or same.difference < 0:
        return "no ratio: " + same.describe("the policy", f"{baseline}@{row['budget']}")
    if row["accuracy"] > row["baseline_accuracy"] and row["baseline_tokens_to_match"] is None:
        return "no ratio: " + Difference.from_dict(best).describe("the policy", f"{baseline}@{best['budget']}")
    return f"no ratio: {baseline}'s cheapest point already matches it"


def print_analysis(store: RunStore, as_json: bool = False) -> None:
    """Analyse a stored sweep, write its files and report, and print the curve points (or, ``as_json``,
    the whole analysis as scaling.json holds it)."""
    with console.status("analysing the sweep and writing the report ..."):
        scaling, written = analyse(store)
    if as_json:
        print_json(scaling)
    else:
        print_points(scaling)
    others = ", ".join(p.name for p in written if p.suffix != ".html")
    console.print(f"report: {store.run_dir / 'report.html'} (and {others})")
