"""The ``testtime`` command: ``run`` one strategy, or the ``demo`` sweep."""

from __future__ import annotations

import codecs
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from testtime.generators import BACKENDS, DTYPES, REPRODUCIBLE_DTYPE, GeneratorSpec, PromptTooLongError, RetryPolicy, SamplingParams
from testtime.models import DEFAULT_MODEL, ModelNotFoundError
from testtime.retry import UpstreamError
from testtime.runner import Plan, Unit, execute
from testtime.store import RunStore
from testtime.strategies import Context, ParallelStrategy, SearchStrategy, Strategy
from testtime.tasks import FieldMap, load_dataset
from testtime.verifiers import Aggregation, ProcessVerifier, Verifier

# vLLM logs every engine detail at INFO; a user of the CLI wants the progress and the table.
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Test-time compute scaling for LLM reasoning.")
console = Console(stderr=True)

DTYPE_HELP = (f"the in-process engine's dtype: {', '.join(DTYPES)}; {REPRODUCIBLE_DTYPE} makes resumed, retried, "
              "chunked and Ray-sharded runs bit-identical on the CPU engine; auto: bfloat16 where the CPU or GPU "
              "computes it natively (faster, equal only in distribution), else float32")


def dtype_option() -> str:
    return typer.Option("auto", "--dtype", help=DTYPE_HELP)


DEMO_STRATEGIES = ("single", "majority", "best_of_n", "weighted_best_of_n", "adaptive_consistency", "beam_search")


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


def _make_verifier(name: Optional[str], aggregation: Optional[str], model: Optional[str] = None,
                   settings: Sequence[str] = ()) -> Optional[Verifier]:
    if name is None or name == "none":
        if aggregation:
            raise ValueError("--aggregation applies to a verifier's step scores: pass --verifier too")
        if model or settings:
            raise ValueError("--verifier-model and --verifier-option apply to a verifier: pass --verifier too")
        return None
    cls = Verifier.lookup(name)
    options: dict = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            raise ValueError(f"--verifier-option {setting!r}: expected NAME=VALUE, e.g. format=qwen25_math_prm")
        key = key.strip().replace("-", "_")
        options[key] = _verifier_setting(cls, key, value)
    if aggregation:
        if not issubclass(cls, ProcessVerifier):
            raise ValueError(f"verifier {name!r} scores whole solutions: --aggregation does not apply")
        options["aggregation"] = Aggregation(aggregation)
    if model:
        if not cls.model_parameter:
            raise ValueError(f"verifier {name!r} takes no --verifier-model")
        options[cls.model_parameter] = model
    try:
        return Verifier.create(name, **options)
    except TypeError as exc:  # an option the verifier does not take
        raise ValueError(f"verifier {name!r}: {exc}") from None


def _verifier_setting(cls: type, key: str, value: str):
    """A --verifier-option value as the type of the constructor parameter's default."""
    import inspect

    params = {k: p for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"}
    if key not in params:
        raise ValueError(f"verifier {cls.name!r} takes no option {key!r}; it takes: {', '.join(params)}")
    default = params[key].default
    try:
        if isinstance(default, bool):
            return value.lower() in ("1", "true", "yes", "on")
        if isinstance(default, (int, float)):
            return type(default)(value)
    except ValueError:
        raise ValueError(f"--verifier-option {key}={value}: expected a {type(default).__name__}") from None
    return value


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


@app.command("sweep", context_settings={"default_map": {"pool": True}},
             help="Strategies x budgets x seeds on a dataset, with the scaling analysis and report "
                  "(`run` with --pool on by default).")
@app.command()
def run(
    dataset: str = typer.Option("gsm8k", help="gsm8k, math500, sample, a .jsonl path, or hf:NAME"),
    strategy: list[str] = typer.Option(["majority"], help="strategy name (see `testtime strategies`), or NAME@B1,B2 "
                                                         "for its own budgets; repeat for several"),
    n: list[int] = typer.Option([8], "--n", "--budget", help="budget: complete solutions' worth of generation; repeat for several"),
    verifier: Optional[str] = typer.Option(None, help="verifier name, e.g. arithmetic or prm; scores every candidate"),
    verifier_model: Optional[str] = typer.Option(
        None, help="the verifier's model: a PRM checkpoint folder (hf_prm), an artifact folder (prm, orm), a URL (served)"),
    verifier_option: list[str] = typer.Option(
        [], help="a verifier setting NAME=VALUE, e.g. format=qwen25_math_prm (hf_prm), protocol=vllm_pooling (served)"),
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
    policy: Optional[str] = typer.Option(None, help="compute_optimal: the policy.json a sweep wrote"),
    pool: bool = typer.Option(False, "--pool/--no-pool",
                              help="draw one shared pool per seed at the largest budget and estimate every parallel "
                                   "strategy at every budget from it (the default of `sweep`)"),
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
    dtype: str = dtype_option(),
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
                                step_tokens=step_tokens, delimiter=delimiter, policy=policy)
        ver = _make_verifier(verifier, aggregation, verifier_model, verifier_option)
        units = _units(strategy, n, seed, params, ver)  # checks every strategy and option
        specs = dict(_budget_spec(spec) for spec in strategy)
        pooled = [name for name in specs if _is_parallel(name)] if pool else []
        if pooled:
            size = max([*n, *(b for name in pooled for b in specs[name])])
            units = [Unit(Strategy.create("pool", budget=size), s) for s in seed] + [
                u for u in units if u.strategy.name not in pooled]
        plan = Plan(units, tasks, chunk_size)
        sampling = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens)
        spec = GeneratorSpec(backend, model, base_url=base_url, seed=seed[0], max_model_len=max_model_len,
                             dtype=dtype, parameter_count=parameters,
                             retry=RetryPolicy(timeout=request_timeout, attempts=retries))
        config = {"dataset": dataset, "generator": spec.identity(), "verifier": verifier,
                  **({"verifier_model": verifier_model} if verifier_model else {}),
                  **({"verifier_options": verifier_option} if verifier_option else {}),
                  "aggregation": aggregation, "sampling": asdict(sampling), **plan.config(),
                  **({"pool_strategies": pooled} if pooled else {})}
        store = RunStore.start(out, config, resume=resume, overwrite=overwrite)
    except (ValueError, TypeError, OSError) as exc:
        _fail(str(exc))
    meta = {**_meta(dataset, model, verifier, sampling), **({"ray": ray, "workers": workers} if ray else {})}
    _execute_plan(plan, spec, ver, sampling, store, meta, ray=ray, workers=workers)
    summary = store.export()
    if pooled:
        write_analysis(store)
    else:
        print_table(summary["results"])
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
    own_budgets = dict(_budget_spec(spec) for spec in names)
    classes = {name: Strategy.lookup(name) for name in own_budgets}
    for option in params:
        if not any(option in cls.parameters() for cls in classes.values()):
            takers = sorted(n for n, c in Strategy.registry.items() if option in c.parameters())
            chosen = ", ".join(repr(n) for n in classes)
            verb = "strategy {} does" if len(classes) == 1 else "strategies {} do"
            raise ValueError(f"{verb.format(chosen)} not take {option}; strategies that do: {', '.join(takers)}")
    units: list[Unit] = []
    for name, cls in classes.items():
        own = {k: v for k, v in params.items() if k in cls.parameters()}
        for budget in sorted({cls.fixed_budget} if cls.fixed_budget else set(own_budgets[name] or budgets)):
            chosen = Strategy.create(name, budget=budget, **own)
            chosen.check(verifier)
            units += [Unit(chosen, s) for s in seeds]
    return units


def _budget_spec(spec: str) -> tuple[str, list[int]]:
    """'beam_search@4,16' -> ('beam_search', [4, 16]); a plain name takes the --n budgets."""
    name, _, budgets = spec.partition("@")
    try:
        return name, [int(b) for b in budgets.split(",")] if budgets else []
    except ValueError:
        raise ValueError(f"--strategy {spec!r}: budgets after '@' must be integers, e.g. beam_search@4,16") from None


def _meta(dataset: str, model: str, verifier: Optional[str], sampling: SamplingParams) -> dict:
    return {"dataset": dataset, "model": model, "verifier": verifier, "sampling": asdict(sampling)}


@app.command()
def demo(
    limit: int = typer.Option(20, help="questions from the shipped GSM8K sample (30 ship)"),
    max_budget: int = typer.Option(16, help="pool size: parallel strategies are estimated at budgets 1, 2, 4, ... up to it"),
    strategy: list[str] = typer.Option(list(DEMO_STRATEGIES), "--strategy",
                                       help="a strategy to include; repeat for several"),
    search_budget: int = typer.Option(2, help="budget of the step-level searches (they run for real)"),
    backend: str = typer.Option("vllm"),
    model: str = typer.Option(DEFAULT_MODEL),
    base_url: Optional[str] = None,
    max_tokens: int = 256,
    seed: int = 0,
    dtype: str = dtype_option(),
    out: Path = typer.Option(Path("runs/demo"), help="run directory to write"),
):
    """A small scaling sweep on the embedded model and the shipped sample, ending in the report.

    One pool of samples per question (drawn once, in one batched call) gives every
    parallel strategy at every budget; each is charged only for the samples it uses.
    Step-level searches run for real. The analysis, policy.json and report.html
    are written to the run directory.
    """
    try:
        tasks = load_dataset("sample", limit=limit)
        verifier = _make_verifier("arithmetic", "product")
        pooled = [name for name in dict.fromkeys(strategy) if _is_parallel(name)]
        units = [Unit(_demo_strategy(name, search_budget), seed) for name in dict.fromkeys(strategy)
                 if name not in pooled]
        if pooled:
            units.insert(0, Unit(Strategy.create("pool", budget=max_budget), seed))
        plan = Plan(units, tasks, chunk_size=len(tasks))
        spec = GeneratorSpec(backend, model, base_url=base_url, seed=seed, dtype=dtype)
    except ValueError as exc:
        _fail(str(exc))
    started = time.perf_counter()
    sampling = SamplingParams(max_tokens=max_tokens)
    store = RunStore.start(out, {"dataset": "sample", "demo": True, "pool_strategies": pooled, **plan.config()},
                           overwrite=True)
    _execute_plan(plan, spec, verifier, sampling, store, {**_meta("sample", model, "arithmetic", sampling), "seed": seed},
                  ray=None, workers=0)
    store.export()
    write_analysis(store)
    store.close()
    console.print(f"demo took {time.perf_counter() - started:.0f} s; open {out / 'report.html'} in a browser")


def _is_parallel(name: str) -> bool:
    cls = Strategy.registry.get(name)
    return cls is not None and issubclass(cls, ParallelStrategy) and name != "pool"


def write_analysis(store: RunStore) -> list[Path]:
    """The scaling analysis, the policy for `compute_optimal`, and the report, from the store."""
    from testtime.analysis.sweep import SweepAnalysis
    from testtime.report import explorer_data, write_report

    lines_by_unit = store.lines_by_unit()
    config, meta = store.config, store.get_meta("run", {})
    with console.status("analysing the sweep ..."):
        analysis = SweepAnalysis(lines_by_unit, strategies=config.get("pool_strategies", ()),
                                 seed=int(meta.get("seed", 0) or 0))
        scaling = analysis.to_dict()
        train_vs_test = store.get_meta("train_vs_test")
        if train_vs_test:
            scaling["train_vs_test"] = train_vs_test
    written = [store.write_derived("scaling.json", json.dumps(scaling, indent=1) + "\n")]
    policy = analysis.deployable_policy()
    if policy:
        written.append(store.write_derived("policy.json", json.dumps(policy, indent=1) + "\n"))
    with console.status("writing the report ..."):
        written += write_report(store.run_dir, scaling, explorer_data(lines_by_unit),
                                title=f"testtime sweep: {meta.get('dataset', config.get('dataset', ''))}",
                                meta={**meta, "created": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                       time.gmtime(store.get_meta("created") or 0))})
    print_points(scaling)
    console.print(f"report: {store.run_dir / 'report.html'} (and {', '.join(p.name for p in written if p.suffix != '.html')})")
    return written


def print_points(scaling: dict) -> None:
    """Every curve point of the analysis, and the headline figures."""
    table = Table(title=f"scaling over {scaling['questions']} questions (pool estimates: mean of "
                        f"{scaling['orders']} random orders; 95% bootstrap CI over questions)")
    for col in ("strategy", "budget", "from", "accuracy", "95% CI", "tokens/q", "TFLOPs/q", "wall s/q"):
        table.add_column(col, justify="left" if col in ("strategy", "from") else "right")
    for p in scaling["points"]:
        table.add_row(p["strategy"], str(p["budget"]), p["source"], f"{p['accuracy']:.1%}",
                      f"{p['ci95'][0]:.0%}-{p['ci95'][1]:.0%}", f"{p['tokens']:,.0f}",
                      f"{p['flops'] / 1e12:.3f}", f"{p['wall_seconds']:.2f}")
    Console(width=None if sys.stdout.isatty() else 140).print(table)
    for name, fit in scaling["fits"].items():
        t = fit.get("tokens")
        if t:
            console.print(f"  {name}: accuracy = {t['a']:.3f} + {t['b']:.4f} ln(tokens), R^2 {t['r2']:.2f}")
    optimal = scaling.get("compute_optimal")
    for row in (optimal or {}).get("curve", []):
        if row["efficiency"] is not None:
            ratio = f"{optimal['baseline']} needs {row['efficiency']:.2f}x the compute to match"
        elif row["efficiency_at_least"] is not None:
            ratio = f"{optimal['baseline']} never matches it (>= {row['efficiency_at_least']:.2f}x)"
        else:
            ratio = f"{optimal['baseline']}'s cheapest point already matches it (no ratio)"
        console.print(f"  compute-optimal within the cost of {optimal['baseline']}@{row['budget']}: "
                      f"{row['accuracy']:.1%} with {row['tokens']:,.0f} tokens/q (baseline "
                      f"{row['baseline_accuracy']:.1%}); {ratio}")


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a run directory (holding run.db)")):
    """(Re)write the scaling analysis, policy.json and report.html of a stored run."""
    if not (run_dir / "run.db").exists():
        _fail(f"{run_dir} holds no run (no run.db); run `testtime sweep --out {run_dir}` first")
    try:
        store = RunStore(run_dir)
        write_analysis(store)
    except ValueError as exc:
        _fail(f"{run_dir}: {exc}")
    store.close()


@app.command("train-vs-test")
def train_vs_test(
    sweep_dir: Path = typer.Argument(..., help="the small model's sweep (run directory)"),
    large_run: Path = typer.Argument(..., help="a larger model's greedy run on the same questions (`run --strategy single --temperature 0`)"),
    small_pretrain_tokens: float = typer.Option(2e12, help="the small model's pretraining tokens (SmolLM2-135M: 2T)"),
    large_pretrain_tokens: float = typer.Option(6e12, help="the larger model's pretraining tokens (Gemma 3 270M: 6T)"),
    ratio: list[float] = typer.Option([0.1, 1.0, 10.0], help="R = inference tokens / pretraining tokens; repeat"),
):
    """FLOPs-matched: the small model with test-time compute against a larger model answering greedily."""
    from testtime.analysis.sweep import SweepAnalysis
    from testtime.analysis.train_vs_test import ModelCost, compare

    for d in (sweep_dir, large_run):
        if not (d / "run.db").exists():
            _fail(f"{d} holds no run (no run.db)")
    small_store, large_store = RunStore(sweep_dir), RunStore(large_run)
    try:
        large_units = [(d, lines) for d, lines in large_store.lines_by_unit() if lines]
        if not large_units:
            raise ValueError(f"{large_run} holds no results")
        description, lines = large_units[0]
        small_lines = small_store.lines_by_unit()
        small_ids = {line["id"] for _, ls in small_lines for line in ls}
        if {line["id"] for line in lines} != small_ids:
            raise ValueError(f"{large_run} and {sweep_dir} were run on different questions")
        small_meta, large_meta = small_store.get_meta("run", {}), large_store.get_meta("run", {})
        large = ModelCost(large_meta.get("model", "large"), int(large_meta["parameters"]), large_pretrain_tokens)
        small = ModelCost(small_meta.get("model", "small"), int(small_meta["parameters"]), small_pretrain_tokens)
        [row] = large_store.summary([(description, lines)])["results"]
        # Only the points are needed here; write_analysis below does the whole analysis once.
        analysis = SweepAnalysis(small_lines, strategies=small_store.config.get("pool_strategies", ()))
        points = [p.to_dict(analysis.seed) for p in analysis.points]
        result = compare(small, large, row["accuracy"], row["ci95"], row["policy_flops"] / len(lines) / (2 * large.parameters),
                         points, ratio)
    except (ValueError, KeyError) as exc:
        _fail(f"train-vs-test: {exc}")
    small_store.set_meta("train_vs_test", {**result, "large_run": str(large_run), "large_strategy": description})
    for r in result["rows"]:
        small_side = f"{r['small_best']} {r['small_accuracy']:.1%}" if r["small_best"] else "no swept point fits"
        console.print(f"  R={r['R']:g}: X={r['X']:.1f}; small model {small_side} against the larger model's "
                      f"greedy {r['large_accuracy']:.1%}: {r['winner']}")
    write_analysis(small_store)
    small_store.close()
    large_store.close()


def _is_search(name: str) -> bool:
    cls = Strategy.registry.get(name)
    return cls is not None and issubclass(cls, SearchStrategy)


def _demo_strategy(name: str, budget: int) -> Strategy:
    if "width" in getattr(Strategy.registry.get(name), "parameters", tuple)():
        return Strategy.create(name, budget=budget, width=min(2, budget))
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
    dtype: str = dtype_option(),
    seed: int = 0,
):
    """Serve an OpenAI-compatible API that adds test-time compute to the model."""
    import uvicorn

    from testtime.server.app import create_app
    from testtime.server.config import ServerConfig

    try:
        settings = ServerConfig.from_file(config) if config else ServerConfig()
        spec = GeneratorSpec(backend, model, base_url=base_url, seed=seed, max_model_len=max_model_len, dtype=dtype)
    except (OSError, ValueError, TypeError) as exc:
        _fail(str(exc))
    if host:
        settings.host = host
    if port:
        settings.port = port
    if api_key:
        settings.api_keys = tuple(api_key)
    gen = _open(spec)
    gen.show_progress = False
    console.print(f"serving {settings.served_model} on http://{settings.host}:{settings.port}/v1")
    try:
        uvicorn.run(create_app(settings, gen), host=settings.host, port=settings.port, log_level="warning")
    finally:
        gen.close()


@app.command("serve-verifier")
def serve_verifier(
    verifier: str = typer.Option("prm", help="verifier name (see `testtime strategies`)"),
    verifier_model: Optional[str] = typer.Option(None, help="its checkpoint, artifact folder or URL"),
    verifier_option: list[str] = typer.Option([], help="a verifier setting NAME=VALUE"),
    aggregation: Optional[str] = None,
    host: str = typer.Option("127.0.0.1", help="bind address (default loopback only)"),
    port: int = 8001,
    api_key: Optional[str] = typer.Option(None, help="required Bearer key; none: no authentication"),
):
    """Serve a verifier over HTTP (testtime's scorer protocol) for `--verifier served --verifier-model URL`."""
    import uvicorn

    from testtime.verifiers.scorer_server import scorer_app

    try:
        served = _make_verifier(verifier, aggregation, verifier_model, verifier_option)
        if served is None:
            raise ValueError("--verifier none: there is nothing to serve")
    except ValueError as exc:
        _fail(str(exc))
    console.print(f"serving verifier {verifier} on http://{host}:{port}/score")
    uvicorn.run(scorer_app(served, api_key=api_key), host=host, port=port, log_level="warning")


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


# Commands of the verifier-training half live in testtime.learn; imported last, as they use the helpers above.
from testtime.learn.commands import eval_verifier, train_prm  # noqa: E402

app.command("train-prm")(train_prm)
app.command("eval-verifier")(eval_verifier)
