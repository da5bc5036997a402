"""The ``testtime`` command: ``run`` one strategy, or the ``demo`` sweep."""

from __future__ import annotations

import codecs
import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from testtime.analysis import coverage
from testtime.answers import answers_match
from testtime.generators import BACKENDS, SamplingParams, open_generator
from testtime.models import DEFAULT_MODEL, ModelNotFoundError
from testtime.runner import RunRecord, StrategyRun, run_meta, run_strategy, write_run
from testtime.strategies import Context, Pool, PoolSource, SearchStrategy, Strategy
from testtime.tasks import FieldMap, load_dataset
from testtime.verifiers import Aggregation, Verifier

# vLLM logs every engine detail at INFO; a user of the CLI wants the progress and the table.
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Test-time compute scaling for LLM reasoning.")
console = Console(stderr=True)

DEMO_STRATEGIES = ("single", "majority", "best_of_n", "weighted_best_of_n", "adaptive_consistency")
DEMO_BUDGETS = (1, 2, 4, 8, 16)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


def _open(backend: str, model: str, base_url: Optional[str], seed: int, max_model_len: int, parameters: int = 0):
    try:
        with console.status(f"starting {backend} generator for {model} ..."):
            gen = open_generator(backend, model, base_url=base_url, seed=seed, max_model_len=max_model_len,
                                 parameter_count=parameters)
    except (ValueError, ModelNotFoundError) as exc:
        _fail(str(exc))
    gen.show_progress = True
    return gen


def _make_verifier(name: Optional[str], aggregation: Optional[str]) -> Optional[Verifier]:
    if name is None or name == "none":
        if aggregation:
            raise ValueError("--aggregation applies to a verifier's step scores: pass --verifier too")
        return None
    options = {"aggregation": Aggregation(aggregation)} if aggregation else {}
    return Verifier.from_name(name, **options)


def _unescape(text: str) -> str:
    """'\\n' typed on a command line means a newline."""
    return codecs.decode(text, "unicode_escape")


def _search_params(**given) -> dict:
    """The search options a user set, by the strategy's own parameter names."""
    if given.get("delimiter") is not None:
        given["delimiter"] = _unescape(given["delimiter"])
    return {name: value for name, value in given.items() if value is not None}


def print_table(rows: list[dict]) -> None:
    table = Table(title="testtime results")
    for col in ("strategy", "budget", "accuracy", "95% CI", "completion tok", "prompt tok", "cached", "TFLOPs", "wall s"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for r in rows:
        table.add_row(
            r["strategy"], str(r.get("budget")), f"{r['accuracy']:.1%}",
            f"{r['ci95'][0]:.0%}-{r['ci95'][1]:.0%}", f"{r['completion_tokens']:,}",
            f"{r['prompt_tokens']:,}", f"{r['cached_prompt_tokens']:,}", f"{r['flops'] / 1e12:.2f}",
            f"{r['wall_seconds']:.1f}",
        )
    # Wide enough for every column when stdout is a file or a pipe (CI logs, `| tee`).
    Console(width=None if sys.stdout.isatty() else 140).print(table)


@app.command()
def run(
    dataset: str = typer.Option("gsm8k", help="gsm8k, math500, sample, a .jsonl path, or hf:NAME"),
    strategy: str = typer.Option("majority", help="strategy name (see `testtime strategies`)"),
    n: int = typer.Option(8, "--n", "--budget", help="budget: complete solutions' worth of generation"),
    verifier: Optional[str] = typer.Option(None, help="verifier name, e.g. arithmetic; scores every candidate"),
    aggregation: Optional[str] = typer.Option(None, help="step-score aggregation: product (default), min, last, mean"),
    width: Optional[int] = typer.Option(None, help="search: children per expanded node (M)"),
    depth: Optional[int] = typer.Option(None, help="search: steps after which a path ends"),
    c: Optional[float] = typer.Option(None, "--c", help="mcts: exploration constant in UCB"),
    lookahead: Optional[int] = typer.Option(None, help="lookahead: greedy steps rolled out before ranking a step"),
    softmax_temperature: Optional[float] = typer.Option(
        None, help="particle_filtering, rebase: temperature of the softmax over process scores"),
    rollout: Optional[bool] = typer.Option(None, "--rollout/--no-rollout", help="mcts: evaluate steps by rollouts"),
    selector: Optional[str] = typer.Option(
        None, help="search: final choice among solutions: best, majority, weighted (mcts also visits, value)"),
    step_tokens: Optional[int] = typer.Option(None, help="search: cap on one step's tokens"),
    delimiter: Optional[str] = typer.Option(None, help="search: text that ends a step (default a blank line, '\\n\\n')"),
    limit: Optional[int] = typer.Option(None, help="use only the first N questions"),
    data_root: Optional[Path] = typer.Option(None, help="folder holding gsm8k/ and math500/"),
    question_field: Optional[str] = typer.Option(None, help="custom JSONL: field with the question"),
    answer_field: Optional[str] = typer.Option(None, help="custom JSONL: field with the gold answer"),
    backend: str = typer.Option("vllm", help=f"one of {', '.join(BACKENDS)}"),
    model: str = typer.Option(DEFAULT_MODEL, help="embedded model name, model folder, or served model name"),
    base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible server, for --backend openai"),
    parameters: int = typer.Option(0, help="model parameter count for FLOPs (default: read from the model folder)"),
    temperature: float = 0.8,
    top_p: float = 1.0,
    max_tokens: int = 512,
    max_model_len: int = 2048,
    seed: int = 0,
    out: Path = typer.Option(Path("runs/latest"), help="run directory to write"),
):
    """Run one strategy at one budget on a dataset."""
    try:
        fields = None
        if question_field or answer_field:
            fields = FieldMap(question=question_field or "question", answer=answer_field or "answer")
        tasks = load_dataset(dataset, limit=limit, data_root=data_root, fields=fields)
        params = _search_params(width=width, max_depth=depth, c=c, lookahead=lookahead,
                                temperature=softmax_temperature, rollout=rollout, selector=selector,
                                step_tokens=step_tokens, delimiter=delimiter)
        chosen = Strategy.create(strategy, budget=n, **params)
        ver = _make_verifier(verifier, aggregation)
        sampling = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens)
        chosen.check(ver)
    except (ValueError, TypeError) as exc:
        _fail(str(exc))
    with _open(backend, model, base_url, seed, max_model_len, parameters) as gen:
        ctx = Context(generator=gen, verifier=ver, sampling=sampling, seed=seed)
        console.print(f"{chosen.name} (budget {n}) on {len(tasks)} questions of {dataset}")
        try:
            result = run_strategy(chosen, tasks, ctx)
        except ValueError as exc:
            _fail(str(exc))
        record = RunRecord([result], run_meta(ctx, dataset, model, verifier))
    write_run(out, record)
    print_table([result.summary])
    console.print(f"wrote {out / 'results.jsonl'} and {out / 'summary.json'}")


@app.command()
def demo(
    limit: int = typer.Option(20, help="questions from the shipped GSM8K sample (30 ship)"),
    max_budget: int = typer.Option(16, help="largest budget (budgets are powers of two up to it)"),
    strategy: list[str] = typer.Option(list(DEMO_STRATEGIES), "--strategy",
                                       help="a strategy to include; repeat for several (searches run at the largest budget)"),
    backend: str = typer.Option("vllm"),
    model: str = typer.Option(DEFAULT_MODEL),
    base_url: Optional[str] = None,
    max_tokens: int = 256,
    seed: int = 0,
    out: Path = typer.Option(Path("runs/demo"), help="run directory to write"),
):
    """Strategies over budgets 1..16 on the embedded model and the shipped sample.

    The parallel strategies are evaluated at every budget on one shared pool of
    samples per question (drawn once, in one batched call); each is charged only
    for the samples it used. Step-level searches run for real at the largest budget.
    """
    try:
        tasks = load_dataset("sample", limit=limit)
        budgets = [b for b in DEMO_BUDGETS if b <= max_budget] or [1]
        verifier = _make_verifier("arithmetic", "product")
        parallel = [_demo_strategy(name, b) for name in strategy if not _is_search(name)
                    for b in ([1] if name == "single" else budgets)]
        searches = [_demo_strategy(name, max(budgets)) for name in strategy if _is_search(name)]
    except ValueError as exc:
        _fail(str(exc))
    started = time.perf_counter()
    with _open(backend, model, base_url, seed, 2048) as gen:
        ctx = Context(generator=gen, verifier=verifier, sampling=SamplingParams(max_tokens=max_tokens), seed=seed)
        record = RunRecord(meta=run_meta(ctx, "sample", model, "arithmetic"))
        if parallel:
            console.print(f"drawing {max(budgets)} samples for each of {len(tasks)} questions ...")
            pool = Pool.draw(tasks, ctx, max(budgets))
            hits = [[answers_match(c.answer, t.answer) for c in cands] for t, cands in zip(tasks, pool.candidates)]
            record.meta["pool"] = {"samples_per_question": max(budgets), **coverage(hits)}
            record.runs += [StrategyRun(s.describe(), s.solve_from(PoolSource(pool), tasks, ctx)) for s in parallel]
        for search in searches:
            console.print(f"{search.name} (budget {search.budget}) on {len(tasks)} questions ...")
            record.runs.append(run_strategy(search, tasks, ctx))
    write_run(out, record)
    print_table([r.summary for r in record.runs])
    if "pool" in record.meta:
        pool_stats = record.meta["pool"]
        console.print(f"sample pool: mean pass@1 {pool_stats['pass@1']:.1%}, "
                      f"pass@{max(budgets)} (any sample right) {pool_stats['pass@all']:.1%}")
    console.print(f"demo took {time.perf_counter() - started:.0f} s; wrote {out}/results.jsonl and summary.json")


def _is_search(name: str) -> bool:
    cls = Strategy.registry.get(name)
    return cls is not None and issubclass(cls, SearchStrategy)


def _demo_strategy(name: str, budget: int) -> Strategy:
    if "width" in getattr(Strategy.registry.get(name), "parameters", tuple)():
        return Strategy.create(name, budget=budget, width=min(4, budget))
    return Strategy.create(name, budget=budget)


@app.command()
def serve(
    config: Optional[Path] = typer.Option(None, help="TOML file of server settings (defaults and caps)"),
    host: Optional[str] = typer.Option(None, help="bind address (default 127.0.0.1: loopback only)"),
    port: Optional[int] = None,
    backend: str = typer.Option("vllm"),
    model: str = typer.Option(DEFAULT_MODEL),
    base_url: Optional[str] = typer.Option(None, help="upstream OpenAI-compatible server, for --backend openai"),
    api_key: list[str] = typer.Option([], help="accepted API key (repeat for several); none: no authentication"),
    max_model_len: int = 2048,
    seed: int = 0,
):
    """Serve an OpenAI-compatible API that adds test-time compute to the model."""
    import uvicorn

    from testtime.server.app import create_app
    from testtime.server.config import ServerConfig

    try:
        settings = ServerConfig.from_file(config) if config else ServerConfig()
    except (OSError, ValueError, TypeError) as exc:
        _fail(str(exc))
    if host:
        settings.host = host
    if port:
        settings.port = port
    if api_key:
        settings.api_keys = tuple(api_key)
    gen = _open(backend, model, base_url, seed, max_model_len)
    gen.show_progress = False
    console.print(f"serving {settings.served_model} on http://{settings.host}:{settings.port}/v1")
    try:
        uvicorn.run(create_app(settings, gen), host=settings.host, port=settings.port, log_level="warning")
    finally:
        gen.close()


@app.command()
def strategies():
    """List the strategies (with their parameters) and verifiers."""
    for name, cls in sorted(Strategy.registry.items()):
        print(f"{name:24s} {(cls.__doc__ or '').strip().splitlines()[0]}")
        print(f"{'':24s}   parameters: {', '.join(cls.parameters())}")
    print()
    for name, cls in sorted(Verifier.registry.items()):
        print(f"verifier {name:15s} {(cls.__doc__ or '').strip().splitlines()[0] if cls.__doc__ else ''}")


def main() -> None:  # pragma: no cover
    sys.exit(app())
