"""The ``testtime`` command: ``run`` one strategy, or the ``demo`` sweep."""

from __future__ import annotations

import codecs
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from testtime.analysis import coverage
from testtime.answers import answers_match
from testtime.generators import BACKENDS, GeneratorSpec, PromptTooLongError, RetryPolicy, SamplingParams
from testtime.models import DEFAULT_MODEL, ModelNotFoundError
from testtime.retry import UpstreamError
from testtime.runner import Plan, Unit, execute, run_strategy, store_results
from testtime.store import RunStore
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
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code=2)


def _open(spec: GeneratorSpec):
    try:
        with console.status(f"starting {spec.backend} generator for {spec.model} ..."):
            gen = spec.open()
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
    for col in ("strategy", "budget", "seed", "accuracy", "95% CI", "completion tok", "prompt tok", "cached", "TFLOPs", "wall s"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for r in rows:
        table.add_row(
            r["strategy"], str(r.get("budget")), str(r.get("seed", "")), f"{r['accuracy']:.1%}",
            f"{r['ci95'][0]:.0%}-{r['ci95'][1]:.0%}", f"{r['completion_tokens']:,}",
            f"{r['prompt_tokens']:,}", f"{r['cached_prompt_tokens']:,}", f"{r['flops'] / 1e12:.2f}",
            f"{r['wall_seconds']:.1f}",
        )
    # Wide enough for every column when stdout is a file or a pipe (CI logs, `| tee`).
    Console(width=None if sys.stdout.isatty() else 140).print(table)


@app.command("sweep", help="Strategies x budgets x seeds on a dataset (the same command as `run`).")
@app.command()
def run(
    dataset: str = typer.Option("gsm8k", help="gsm8k, math500, sample, a .jsonl path, or hf:NAME"),
    strategy: list[str] = typer.Option(["majority"], help="strategy name (see `testtime strategies`); repeat for several"),
    n: list[int] = typer.Option([8], "--n", "--budget", help="budget: complete solutions' worth of generation; repeat for several"),
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
    request_timeout: float = typer.Option(600.0, help="--backend openai: seconds one request may take"),
    retries: int = typer.Option(5, help="--backend openai: tries per request on faults (backoff with jitter)"),
    temperature: float = 0.8,
    top_p: float = 1.0,
    max_tokens: int = 512,
    max_model_len: int = 2048,
    seed: list[int] = typer.Option([0], help="sampling seed; repeat for several"),
    chunk_size: int = typer.Option(32, help="questions per batch; each batch is committed to the run store when done"),
    out: Path = typer.Option(Path("runs/latest"), help="run directory (its run.db holds every result)"),
    resume: bool = typer.Option(False, help="continue the run in --out: skip finished questions; settings must match"),
    overwrite: bool = typer.Option(False, help="start again in an --out that already holds a run"),
    ray: Optional[str] = typer.Option(None, help="shard questions over Ray workers: 'local' or a cluster address"),
    workers: int = typer.Option(2, help="--ray: number of workers (each opens its own generator)"),
):
    """Run strategies at budgets and seeds on a dataset; results go to a resumable run store."""
    try:
        fields = None
        if question_field or answer_field:
            fields = FieldMap(question=question_field or "question", answer=answer_field or "answer")
        tasks = load_dataset(dataset, limit=limit, data_root=data_root, fields=fields)
        params = _search_params(width=width, max_depth=depth, c=c, lookahead=lookahead,
                                temperature=softmax_temperature, rollout=rollout, selector=selector,
                                step_tokens=step_tokens, delimiter=delimiter)
        ver = _make_verifier(verifier, aggregation)
        plan = Plan(_units(strategy, n, seed, params, ver), tasks, chunk_size)
        sampling = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens)
        spec = GeneratorSpec(backend, model, base_url=base_url, seed=seed[0], max_model_len=max_model_len,
                             parameter_count=parameters,
                             retry=RetryPolicy(timeout=request_timeout, attempts=retries))
        config = {"dataset": dataset, "generator": spec.identity(), "verifier": verifier,
                  "aggregation": aggregation, "sampling": asdict(sampling), **plan.config()}
        store = RunStore.start(out, config, resume=resume, overwrite=overwrite)
    except (ValueError, TypeError, OSError) as exc:
        _fail(str(exc))
    meta = {**_meta(dataset, model, verifier, sampling), **({"ray": ray, "workers": workers} if ray else {})}
    _execute_plan(plan, spec, ver, sampling, store, meta, ray=ray, workers=workers)
    print_table(store.export()["results"])
    console.print(f"wrote {out / 'results.jsonl'} and {out / 'summary.json'} (from {store.path})")
    store.close()


def _execute_plan(plan: Plan, spec: GeneratorSpec, verifier: Optional[Verifier], sampling: SamplingParams,
                  store: RunStore, meta: dict, *, ray: Optional[str], workers: int) -> None:
    """Solve what the store lacks, in this process or on Ray; a failure keeps every committed chunk."""
    left = sum(len(chunk) for _, chunk in plan.pending(store))
    total = len(plan.units) * len(plan.tasks)
    console.print(f"{len(plan.units)} strategy runs on {len(plan.tasks)} questions of {meta['dataset']}: "
                  f"{total - left} of {total} results already stored, {left} to go")

    def committed(unit: Unit, count: int) -> None:
        console.print(f"  stored {count} results of {unit.strategy.name} (budget "
                      f"{getattr(unit.strategy, 'budget', '-')}, seed {unit.seed}); {store.count()} of {total}")

    if not left:
        return
    try:
        if ray:
            from testtime.distributed import execute_on_ray

            info = execute_on_ray(plan, spec, verifier, sampling, store, address=ray, workers=workers,
                                  on_commit=committed)
            store.set_meta("run", {**meta, **info})
            return
        with _open(spec) as gen:
            store.set_meta("run", {**meta, "generator": gen.name, "parameters": gen.parameter_count})
            ctx = Context(generator=gen, verifier=verifier, sampling=sampling, seed=spec.seed)
            execute(plan, ctx, store, on_commit=committed)
    except (UpstreamError, PromptTooLongError, ValueError, OSError) as exc:  # OSError: Ray unreachable, disk
        kept = store.count()
        if kept or isinstance(exc, UpstreamError):
            _fail(f"{exc}\n{kept} finished results are kept in {store.path}; rerun with --resume to continue")
        _fail(str(exc))


def _units(names: list[str], budgets: list[int], seeds: list[int], params: dict,
           verifier: Optional[Verifier]) -> list[Unit]:
    """Every strategy at every budget and seed; a search option no chosen strategy takes is an error."""
    classes = {name: Strategy.lookup(name) for name in dict.fromkeys(names)}
    for option in params:
        if not any(option in cls.parameters() for cls in classes.values()):
            takers = sorted(n for n, c in Strategy.registry.items() if option in c.parameters())
            chosen = ", ".join(repr(n) for n in classes)
            verb = "strategy {} does" if len(classes) == 1 else "strategies {} do"
            raise ValueError(f"{verb.format(chosen)} not take {option}; strategies that do: {', '.join(takers)}")
    units = []
    for name, cls in classes.items():
        own = {k: v for k, v in params.items() if k in cls.parameters()}
        for budget in sorted({cls.fixed_budget} if cls.fixed_budget else set(budgets)):
            chosen = Strategy.create(name, budget=budget, **own)
            chosen.check(verifier)
            units += [Unit(chosen, s) for s in seeds]
    return units


def _meta(dataset: str, model: str, verifier: Optional[str], sampling: SamplingParams) -> dict:
    return {"dataset": dataset, "model": model, "verifier": verifier, "sampling": asdict(sampling)}


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
                    for b in sorted({Strategy.lookup(name).fixed_budget} - {None} or set(budgets))]
        searches = [_demo_strategy(name, max(budgets)) for name in strategy if _is_search(name)]
    except ValueError as exc:
        _fail(str(exc))
    started = time.perf_counter()
    sampling = SamplingParams(max_tokens=max_tokens)
    store = RunStore.start(out, {"dataset": "sample", "demo": True}, overwrite=True)
    with _open(GeneratorSpec(backend, model, base_url=base_url, seed=seed)) as gen:
        ctx = Context(generator=gen, verifier=verifier, sampling=sampling, seed=seed)
        meta = {**_meta("sample", model, "arithmetic", sampling), "generator": gen.name,
                "parameters": gen.parameter_count, "seed": seed}
        if parallel:
            console.print(f"drawing {max(budgets)} samples for each of {len(tasks)} questions ...")
            pool = Pool.draw(tasks, ctx, max(budgets))
            hits = [[answers_match(c.answer, t.answer) for c in cands] for t, cands in zip(tasks, pool.candidates)]
            meta["pool"] = {"samples_per_question": max(budgets), **coverage(hits)}
            for s in parallel:
                store_results(store, Unit(s, seed), s.solve_from(PoolSource(pool), tasks, ctx))
        for search in searches:
            console.print(f"{search.name} (budget {search.budget}) on {len(tasks)} questions ...")
            store_results(store, Unit(search, seed), run_strategy(search, tasks, ctx).results)
    store.set_meta("run", meta)
    print_table(store.export()["results"])
    store.close()
    if "pool" in meta:
        pool_stats = meta["pool"]
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
    gen = _open(GeneratorSpec(backend, model, base_url=base_url, seed=seed, max_model_len=max_model_len))
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
