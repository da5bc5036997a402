"""`testtime run`, `sweep` and `demo`: strategies x budgets x seeds on a dataset, into a resumable run store."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from testtime.analysis.sweep import run_labels
from testtime.cli.app import app
from testtime.cli.console import (console, dtype_option, engine_log, fail, json_option, open_generator, print_analysis,
                                  print_json, print_results, progress_bar, stop_cleanly_on_sigterm, verbose_option)
from testtime.cli.watch import watch_host_option, watch_port_option, watching
from testtime.generators import (
    BACKENDS, DEFAULT_MAX_TOKENS, EngineDied, GeneratorSpec, PromptTooLongError, RetryPolicy, SamplingParams,
)
from testtime.heads.artifact import shipped_artifact
from testtime.models import DEFAULT_MODEL, ModelNotFoundError
from testtime.params import parse_assignments
from testtime.retry import UpstreamError
from testtime.runner import Plan, Unit, check_prompts_fit
from testtime.sandbox import shared_sandbox_if_made
from testtime.specs import make_verifier, pool_parallel, split_spec, strategy_units
from testtime.steps import THINKING_SPLITS, check_thinking_split
from testtime.store import RunStore
from testtime.strategies import Strategy
from testtime.tasks import FieldMap, load_dataset
from testtime.verifiers import Verifier
from testtime.workflows import execute_plan

DEMO_STRATEGIES = ("single", "majority", "best_of_n", "weighted_best_of_n", "beam_search")
# On code: votes count behaviour, best-of-N follows the visible examples (all from one pool: self_debug,
# which runs for real, would take the demo past ten minutes here; add it with --strategy self_debug).
CODE_DEMO_STRATEGIES = ("single", "majority", "best_of_n", "weighted_best_of_n")
DEMO_DATASETS = {"humaneval": 40, "sample": 16}  # and how many questions each demo takes by default


@app.command("sweep", context_settings={"default_map": {"pool": True}},
             help="Strategies x budgets x seeds on a dataset, with the scaling analysis and report "
                  "(`run` with --pool on by default).")
@app.command()
def run(
    dataset: str = typer.Option("gsm8k", help="gsm8k, math500, humaneval, sample, a .jsonl path, or hf:NAME"),
    domain: Optional[str] = typer.Option(None, help="how a .jsonl file's rows read: math (default) or code "
                                                     "(HumanEval's fields: task_id, prompt, entry_point, test)"),
    strategy: list[str] = typer.Option(["majority"], help="strategy name (see `testtime strategies`), or NAME@B1,B2 "
                                                         "for its own budgets; repeat for several"),
    budget: list[int] = typer.Option([8], "--budget", "--n", help="budget: complete solutions' worth of generation; "
                                                                 "repeat for several"),
    param: list[str] = typer.Option([], "--param", help="a strategy parameter NAME=VALUE, typed as the strategy "
                                                        "declares it (see `testtime strategies`); repeat for several"),
    verifier: Optional[str] = typer.Option(None, help="verifier name, e.g. arithmetic or prm; scores every candidate"),
    verifier_model: Optional[str] = typer.Option(
        None, help="the verifier's model: a PRM checkpoint folder (hf_prm), an artifact folder (prm, orm), a URL (served)"),
    verifier_option: list[str] = typer.Option(
        [], help="a verifier setting NAME=VALUE, e.g. format=qwen25_math_prm (hf_prm), protocol=vllm_pooling (served)"),
    aggregation: Optional[str] = typer.Option(None, help="step-score aggregation: product, min, last, mean (default: the verifier's own, 'last' for prm, else product)"),
    # Common strategy parameters as flags of their own: each is --param NAME=VALUE under the strategy's name.
    width: Optional[int] = typer.Option(None, help="search: children per expanded node (M)"),
    max_depth: Optional[int] = typer.Option(None, "--max-depth", "--depth", help="search: steps after which a path ends"),
    c: Optional[float] = typer.Option(None, "--c", help="mcts: exploration constant in UCB"),
    lookahead: Optional[int] = typer.Option(None, help="lookahead: greedy steps rolled out before ranking a step"),
    softmax_temperature: Optional[float] = typer.Option(
        None, help="particle_filtering, rebase: temperature of the softmax over process scores"),
    rollout: Optional[bool] = typer.Option(None, "--rollout/--no-rollout", help="mcts: evaluate steps by rollouts"),
    selector: Optional[str] = typer.Option(
        None, help="search: final choice among solutions: best, majority, weighted, borda (mcts also visits, value)"),
    step_tokens: Optional[int] = typer.Option(None, help="search: cap on one step's tokens"),
    delimiter: Optional[str] = typer.Option(None, help="search: text that ends a step (default a blank line, '\\n\\n')"),
    policy: Optional[str] = typer.Option(None, help="compute_optimal: the policy.json a sweep wrote"),
    thinking_split: str = typer.Option("paragraph", help="how a process verifier cuts a thought in <think> tags "
                                                         f"into steps: {', '.join(THINKING_SPLITS)}"),
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
    max_tokens: int = DEFAULT_MAX_TOKENS,
    max_model_len: int = 2048,
    dtype: str = dtype_option(),
    seed: list[int] = typer.Option([0], help="sampling seed; repeat for several"),
    chunk_size: int = typer.Option(32, help="questions per batch; each batch is committed to the run store when done"),
    out: Path = typer.Option(Path("runs/latest"), help="run directory (its run.db holds every result)"),
    resume: bool = typer.Option(False, help="continue the run in --out: skip finished questions; settings must match"),
    overwrite: bool = typer.Option(False, help="start again in an --out that already holds a run"),
    ray: Optional[str] = typer.Option(None, help="shard questions over Ray workers: 'local' or a cluster address"),
    workers: int = typer.Option(2, help="--ray: number of workers (each opens its own generator)"),
    verbose: bool = verbose_option(),
    watch: bool = typer.Option(False, help="serve a live view of the run in the browser while it goes"),
    watch_host: str = watch_host_option(),
    watch_port: int = watch_port_option(),
    as_json: bool = json_option(),
):
    """Run strategies at budgets and seeds on a dataset; results go to a resumable run store."""
    flags = dict(width=width, max_depth=max_depth, c=c, lookahead=lookahead, softmax_temperature=softmax_temperature,
                 rollout=rollout, selector=selector, step_tokens=step_tokens, policy=policy)
    try:
        fields = None
        if question_field or answer_field:
            fields = FieldMap(question=question_field or "question", answer=answer_field or "answer")
        tasks = load_dataset(dataset, limit=limit, data_root=data_root, fields=fields, domain=domain)
        check_thinking_split(thinking_split)
        texts = parse_assignments("--param", param) | ({"delimiter": delimiter} if delimiter is not None else {})
        ver = make_verifier(verifier, aggregation=aggregation, model=verifier_model, text=True, policy=model,
                            options=parse_assignments("--verifier-option", verifier_option))
        units = strategy_units(strategy, budget, seed, ver, params={k: v for k, v in flags.items() if v is not None},
                               texts=texts)
        asked = len(units)
        units, pooled = pool_parallel(units, seed) if pool else (units, [])
        plan = Plan(units, tasks, chunk_size)
        sampling = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens)
        spec = GeneratorSpec(backend, model, base_url=base_url, seed=seed[0], max_model_len=max_model_len,
                             dtype=dtype, parameter_count=parameters,
                             retry=RetryPolicy(timeout=request_timeout, attempts=retries))
        check_prompts_fit(tasks, spec.prompt_counter())
        weights = ver.identity() if ver else None  # so a resume refuses other weights under the same name
        config = {"dataset": dataset, **({"domain": domain} if domain else {}), "generator": spec.identity(), "verifier": verifier,
                  **({"verifier_model": verifier_model} if verifier_model else {}),
                  **({"verifier_options": verifier_option} if verifier_option else {}),
                  **({"verifier_weights": weights} if weights else {}),
                  "aggregation": aggregation, "sampling": asdict(sampling), **plan.config(),
                  **({"thinking_split": thinking_split} if thinking_split != "paragraph" else {}),
                  **({"pool_strategies": pooled} if pooled else {})}
        store = RunStore.start(out, config, resume=resume, overwrite=overwrite)
    except (ValueError, TypeError, OSError, ModelNotFoundError) as exc:
        fail(str(exc))
    meta = {"dataset": dataset, "model": model, "verifier": verifier, "sampling": asdict(sampling)}
    with watching(out, watch, watch_host, watch_port):
        solve(plan, spec, ver, sampling, store, meta, asked=asked, ray=ray, workers=workers, verbose=verbose,
              thinking_split=thinking_split)
    summary = store.export()
    if pooled:
        print_analysis(store, as_json=as_json)
    elif as_json:
        print_json(summary)
    else:
        print_results(summary["results"])
    console.print(f"wrote {out / 'results.jsonl'} and {out / 'summary.json'} (from {store.path})")
    store.close()


def solve(plan: Plan, spec: GeneratorSpec, verifier: Optional[Verifier], sampling: SamplingParams, store: RunStore,
          meta: dict, *, asked: int, ray: Optional[str], workers: int, verbose: bool,
          thinking_split: str = "paragraph") -> None:
    """Solve what the store lacks, with a progress bar; a failure keeps every committed chunk."""
    total = len(plan.units) * len(plan.tasks)
    left = sum(len(chunk) for _, chunk in plan.pending(store))
    runs = "1 strategy run" if asked == 1 else f"{asked} strategy runs"
    pooled = " (the parallel ones estimated from one shared pool per seed)" if len(plan.units) != asked else ""
    console.print(f"{runs}{pooled} on {len(plan.tasks)} questions of {meta['dataset']}: "
                  f"{total - left} of {total} results already stored, {left} to go")
    if not left:
        return
    began = time.perf_counter()
    sandbox = shared_sandbox_if_made()  # this process's use of it so far: a run reports only its own
    ran_before = (sandbox.executions, sandbox.waited_seconds) if sandbox is not None else (0, 0.0)
    started, tokens = [began], [0]
    log_file = None if verbose else store.run_dir / "engine.log"
    # revisions[chains=2]: units of one strategy that differ in a parameter are told apart as they finish
    labels = dict(zip((u.key for u in plan.units), run_labels([u.description() for u in plan.units])))
    try:
        with stop_cleanly_on_sigterm(), engine_log(log_file), progress_bar("results") as progress:
            bar = progress.add_task("", total=left, stats="")

            def committed(unit: Unit, lines: list[dict]) -> None:
                tokens[0] += sum(line["ledger"]["completion_tokens"] for line in lines)
                rate = tokens[0] / (time.perf_counter() - started[0])
                stats = escape(f"{labels[unit.key]}@{unit.strategy.budget} seed {unit.seed}; {rate:.0f} tok/s")
                progress.update(bar, advance=len(lines), stats=stats)
                if not console.is_terminal:  # a log gets a line per committed chunk
                    console.print(f"  stored {len(lines)} results of {stats}; {store.count()} of {total}")

            def opened(spec: GeneratorSpec):
                gen = open_generator(spec)
                started[0] = time.perf_counter()  # tokens/s of generation, not of the engine's start
                return gen

            execute_plan(plan, spec, verifier, sampling, store, run_meta=meta, ray=ray, workers=workers,
                         open_generator=opened, on_commit=committed, thinking_split=thinking_split)
    except (UpstreamError, EngineDied, PromptTooLongError, ValueError, OSError) as exc:  # OSError: Ray, disk
        kept = store.count()
        if kept or isinstance(exc, (UpstreamError, EngineDied)):
            fail(f"{exc}\n{kept} finished results are kept in {store.path}; rerun with --resume to continue")
        fail(str(exc))
    sandbox = shared_sandbox_if_made()
    if sandbox is not None and sandbox.executions > ran_before[0]:
        console.print(sandbox_share(sandbox.executions - ran_before[0], sandbox.waited_seconds - ran_before[1],
                                    time.perf_counter() - began))
    if log_file is not None and log_file.exists():
        console.print(f"engine log: {log_file}")


def sandbox_share(executions: int, waited_seconds: float, wall_seconds: float) -> str:
    """What the sandbox cost this run: its executions and the wall time spent waiting on them."""
    return (f"the sandbox ran {executions:,} programs; waiting on it took {waited_seconds:.0f} s "
            f"of this run's {wall_seconds:.0f} s ({waited_seconds / max(wall_seconds, 1e-9):.1%}, "
            "the engine's start included)")


@app.command()
def demo(
    dataset: str = typer.Option("humaneval", help="humaneval (the first problems of the 164, graded by their hidden "
                                                 "tests) or sample (the shipped GSM8K sample, 30 questions)"),
    limit: Optional[int] = typer.Option(None, help="questions (default 40 of humaneval, 16 of sample)"),
    max_budget: int = typer.Option(8, help="pool size: parallel strategies are estimated at budgets 1, 2, 4, ... up to it"),
    strategy: list[str] = typer.Option([], "--strategy",
                                       help="a strategy to include; repeat for several (default: "
                                            f"{', '.join(CODE_DEMO_STRATEGIES)} on humaneval; "
                                            f"{', '.join(DEMO_STRATEGIES)} on sample)"),
    search_budget: Optional[int] = typer.Option(None, help="budget of the strategies that run for real (searches, "
                                                           "self_debug; default 4 on humaneval, 2 on sample)"),
    param: list[str] = typer.Option(["width=2"], "--param",
                                    help="a strategy parameter NAME=VALUE for the strategies that take it"),
    backend: str = typer.Option("vllm"),
    model: str = typer.Option(DEFAULT_MODEL),
    base_url: Optional[str] = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    seed: int = 0,
    dtype: str = dtype_option(),
    out: Path = typer.Option(Path("runs/demo"), help="run directory to write"),
    verbose: bool = verbose_option(),
    watch: bool = typer.Option(False, help="serve a live view of the demo in the browser while it goes"),
    watch_host: str = watch_host_option(),
    watch_port: int = watch_port_option(),
):
    """A small scaling sweep on the embedded model, ending in the report and the gains over one sample.

    One pool of samples per question (drawn once, in one batched call) gives every
    parallel strategy at every budget; each is charged only for the samples it uses.
    Other strategies run for real. On humaneval the verifier is public_tests (the share of the
    prompt's visible examples a program passes, in the sandbox) and the hidden tests grade; on
    the sample it is the PRM shipped for the model (the arithmetic checker for a model without
    one). The analysis, policy.json and report.html are written to the run directory.
    """
    try:
        if dataset not in DEMO_DATASETS:
            raise ValueError(f"demo dataset must be one of {', '.join(DEMO_DATASETS)}, got {dataset!r}")
        code = dataset == "humaneval"
        strategy = strategy or list(CODE_DEMO_STRATEGIES if code else DEMO_STRATEGIES)
        search_budget = search_budget or (4 if code else 2)
        tasks = load_dataset(dataset, limit=limit or DEMO_DATASETS[dataset])
        for name in strategy:  # a misspelt strategy fails before the PRM's feature model loads
            Strategy.lookup(split_spec(name)[0])
        verifier_name = "public_tests" if code else "prm" if shipped_artifact(model) else "arithmetic"
        verifier = make_verifier(verifier_name, policy=model)
        units = strategy_units(list(dict.fromkeys(strategy)), [search_budget], [seed], verifier,
                               texts=parse_assignments("--param", param), unused="ignore")
        asked = len(units)
        units, pooled = pool_parallel(units, [seed], size=max_budget)
        plan = Plan(units, tasks, chunk_size=len(tasks))
        spec = GeneratorSpec(backend, model, base_url=base_url, seed=seed, dtype=dtype)
        check_prompts_fit(tasks, spec.prompt_counter())
    except (ValueError, OSError, ModelNotFoundError) as exc:
        fail(str(exc))
    started = time.perf_counter()
    sampling = SamplingParams(max_tokens=max_tokens)
    store = RunStore.start(out, {"dataset": dataset, "demo": True, "pool_strategies": pooled, **plan.config()},
                           overwrite=True)
    meta = {"dataset": dataset, "model": model, "verifier": verifier_name, "sampling": asdict(sampling), "seed": seed}
    with watching(out, watch, watch_host, watch_port):
        solve(plan, spec, verifier, sampling, store, meta, asked=asked, ray=None, workers=0, verbose=verbose)
    store.export()
    print_analysis(store)
    store.close()
    console.print(f"demo took {time.perf_counter() - started:.0f} s; open {out / 'report.html'} in a browser")
