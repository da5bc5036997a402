"""`testtime train-prm` (label a training set by rollouts, then fit the PRM and ORM heads) and `eval-verifier`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from testtime.cli.app import app
from testtime.cli.console import (console, dtype_option, engine_log, fail, open_generator, progress_bar,
                                  stop_cleanly_on_sigterm, verbose_option, wide_console)
from testtime.generators import DEFAULT_MAX_TOKENS, EngineDied, GeneratorSpec, PromptTooLongError, SamplingParams
from testtime.learn.labels import LABEL_UNIT, LabelParams, label_dataset
from testtime.models import DEFAULT_MODEL
from testtime.retry import UpstreamError
from testtime.specs import make_verifier
from testtime.store import RunStore
from testtime.strategies import Context
from testtime.tasks import load_dataset


@app.command("train-prm")
def train_prm(
    out: Path = typer.Option(Path("runs/prm"), help="run directory: run.db holds the labels, artifact/ the heads"),
    dataset: str = typer.Option("gsm8k-train", help="training questions with gold answers"),
    data_root: Optional[Path] = typer.Option(None, help="folder holding gsm8k/ and math500/"),
    limit: Optional[int] = typer.Option(160, help="use only the first N questions (0: all)"),
    samples: int = typer.Option(6, help="solutions sampled per question"),
    rollouts: int = typer.Option(2, help="fresh continuations from each intermediate step prefix"),
    rollout_unsolved: bool = typer.Option(False, help="also roll out questions none of whose samples is right "
                                                      "(else their steps are labelled by their own endings alone)"),
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: float = 0.8,
    chunk_size: int = typer.Option(16, help="questions per batched engine call; each chunk is committed when done"),
    backend: str = typer.Option("vllm"),
    model: str = typer.Option(DEFAULT_MODEL, help="the policy whose rollouts make the labels"),
    base_url: Optional[str] = None,
    dtype: str = dtype_option(),
    feature_model: Optional[str] = typer.Option(None, help="the frozen model whose hidden states feed the heads "
                                                           "(default: the policy, --model)"),
    layer: Optional[int] = typer.Option(None, help="decoder layers of the feature model to run (its state after "
                                                   "them is the feature; default: two thirds of its layers)"),
    feature_dtype: str = typer.Option("auto", help="float32, bfloat16, or auto: bfloat16 where the CPU computes "
                                                   "it natively (about twice as fast), else float32"),
    heldout: float = typer.Option(0.25, help="share of questions held out from training, for the metrics"),
    seed: int = 0,
    resume: bool = typer.Option(False, help="continue the labelling in --out (settings must match)"),
    overwrite: bool = typer.Option(False, help="start again in an --out that already holds labels"),
    label_only: bool = typer.Option(False, help="stop after labelling"),
    verbose: bool = verbose_option(),
):
    """Train a PRM (and the ORM baseline) for a policy model from its own Monte Carlo rollouts."""
    from testtime.generators.vllm_engine import resolve_dtype
    from testtime.heads.features import FeatureSpec, HiddenStates, default_layer
    from testtime.learn.train import train_heads

    try:
        params = LabelParams(samples=samples, rollouts=rollouts, max_tokens=max_tokens, temperature=temperature,
                             rollout_unsolved=rollout_unsolved, chunk=chunk_size)
        if not 0 <= heldout < 1:
            raise ValueError(f"--heldout must be in [0, 1), got {heldout}")
        tasks = load_dataset(dataset, limit=limit or None, data_root=data_root)
        spec = GeneratorSpec(backend, model, base_url=base_url, seed=seed, dtype=dtype)
        # How labels are made must match on --resume; how many questions may grow (a longer --limit).
        config = {"dataset": dataset, "generator": spec.identity(), "labels": params.to_dict(),
                  "seed": seed}
        store = RunStore.start(out, config, resume=resume, overwrite=overwrite)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    _label(store, tasks, spec, params, log_file=None if verbose else out / "engine.log")
    label_seconds = store.get_meta("label_seconds")  # None: labelled by a testtime that did not time it
    records = store.lines(LABEL_UNIT)
    store.write_derived("labels.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    if label_only:
        return
    feature_model = feature_model or model
    try:
        layer = default_layer(feature_model) if layer is None else layer  # 0 gets the range error
        with console.status(f"computing hidden states of {feature_model} (layer {layer}) ..."):
            dtype = "float32" if resolve_dtype(feature_dtype) == "float16" else resolve_dtype(feature_dtype)
            features = HiddenStates(FeatureSpec(feature_model, layer, params.step_delimiter, dtype=dtype))
        artifact = train_heads(records, features, heldout_fraction=heldout, seed=seed,
                               log=lambda m: console.print(m), cache=out / f"features-layer{layer}-{dtype}.npz")
    except ValueError as exc:
        fail(f"train-prm: {exc}")
    artifact.meta["labels"] = {**config, "label_seconds": None if label_seconds is None else round(label_seconds, 1),
                               "generated_tokens": sum(r["tokens"] for r in records)}
    path = artifact.save(out / "artifact")
    _print_training(artifact.meta)
    console.print(f"wrote {path}; use it with --verifier prm --verifier-model {path}")


def _label(store: RunStore, tasks, spec: GeneratorSpec, params: LabelParams, log_file: Optional[Path]) -> None:
    done = store.finished(LABEL_UNIT)
    left = [t for t in tasks if t.id not in done]
    console.print(f"labelling {len(tasks)} questions: {len(tasks) - len(left)} already labelled, {len(left)} to go")
    if not left:
        return
    counts = {"solved": 0, "steps": 0, "tokens": 0}
    # Labels stored without their time (an older testtime) leave the total unknown, not a part of it.
    started, before = time.perf_counter(), store.get_meta("label_seconds", None if done else 0.0)
    try:
        with stop_cleanly_on_sigterm(), engine_log(log_file), open_generator(spec) as gen, \
                progress_bar("questions") as progress:
            bar = progress.add_task("", total=len(left), stats="")

            def committed(records: list[dict]) -> None:
                counts["solved"] += sum(r["correct"] for r in records)
                counts["steps"] += sum(len(s.get("steps", ())) for r in records for s in r["solutions"])
                counts["tokens"] += sum(r["tokens"] for r in records)
                # With each chunk, so that a labelling stopped and resumed still adds up its time.
                if before is not None:
                    store.set_meta("label_seconds", before + time.perf_counter() - started)
                rate = counts["tokens"] / (time.perf_counter() - started)
                stats = f"{counts['solved']} solved (rolled out), {counts['steps']} steps, {rate:.0f} tok/s"
                progress.update(bar, advance=len(records), stats=stats)
                if not console.is_terminal:  # a log file gets a line per committed chunk
                    console.print(f"{progress.tasks[0].completed:.0f} of {len(left)} questions: {stats}")

            ctx = Context(generator=gen, sampling=SamplingParams(max_tokens=params.max_tokens), seed=spec.seed)
            label_dataset(tasks, ctx, params, store, on_commit=committed)
    except (UpstreamError, EngineDied, PromptTooLongError, ValueError, OSError) as exc:
        fail(f"{exc}\nlabels of {store.count()} questions are kept in {store.path}; rerun with --resume")


def _print_training(meta: dict) -> None:
    sizes, metrics = meta["sizes"], meta["metrics"]
    console.print(f"trained on {sizes['train_questions']} questions ({sizes['train_solutions']} solutions, "
                  f"{sizes['train_steps']} steps); held out {sizes['heldout_questions']} questions "
                  f"({sizes['heldout_steps']} steps)")
    for name, value in metrics.items():
        console.print(f"  {name}: {'n/a (one class only)' if value is None else f'{value:.3f}'}")


@app.command("eval-verifier")
def eval_verifier(
    pool_run: Path = typer.Argument(..., help="a sweep run holding a pool (testtime sweep --n 64 ...)"),
    artifact: Optional[Path] = typer.Option(None, help="trained verifier folder (default: the one shipped for "
                                                       "the model that sampled the pool)"),
    max_n: int = typer.Option(64, help="largest N of best-of-N (at most the pool's size)"),
    limit: Optional[int] = typer.Option(None, help="use only the pool's first N questions"),
    judge: Optional[str] = typer.Option(None, help="also score the pool with this model as an LLM judge "
                                                   "(an embedded model or a folder; a second engine)"),
    seed: int = 0,
):
    """Step-level AUROC on held-out labelled steps, and best-of-N by N for PRM, ORM, arithmetic and majority."""

    from testtime.analysis.paired import Difference
    from testtime.analysis.verifier_eval import (aggregation_comparisons, best_of_n_table, budgets_up_to, comparisons,
                                                 heldout_step_auroc, outcome_auroc_intervals, pool_questions, score_pool)
    from testtime.heads.artifact import HeadArtifact, resolve_artifact, shipped_artifact
    from testtime.verifiers import Verifier

    try:
        if not (pool_run / "run.db").exists():
            raise ValueError(f"{pool_run} holds no run (no run.db)")
        store = RunStore(pool_run)
        # By default the PRM shipped for the model that sampled the pool.
        folder = resolve_artifact(artifact or shipped_artifact(store.get_meta("run", {}).get("model", "")))
        trained = HeadArtifact.load(folder, with_records=True)
        lines = next((ls for d, ls in store.lines_by_unit() if d.get("strategy") == "pool"), None)
        if not lines:
            raise ValueError(f"{pool_run} holds no pool: make one with `testtime sweep --n {max_n} ...`")
        lines = lines[:limit] if limit else lines
        size = min(len(line["candidates"]) for line in lines)
        if max_n > size:
            raise ValueError(f"--max-n {max_n} is larger than the pool's {size} samples per question")
        judged = make_verifier("llm_judge", model=judge) if judge else None
    except (ValueError, OSError) as exc:
        fail(f"eval-verifier: {exc}")
    with console.status("loading the verifiers ..."):
        prm = Verifier.create("prm", artifact=folder)
        orm = Verifier.create("orm", artifact=folder)
        arithmetic = Verifier.create("arithmetic")
    heldout = set(trained.meta.get("heldout_ids", ()))
    held_records = [r for r in trained.records if r["id"] in heldout]
    step_auroc = {name: heldout_step_auroc(held_records, v, trained.feature.step_delimiter)
                  for name, v in (("prm", prm), ("arithmetic", arithmetic))}
    held_steps = sum(len(s["steps"]) for r in held_records for s in r["solutions"])
    console.print(f"step-level AUROC on {held_steps} held-out steps of {len(held_records)} questions "
                  f"(positive: some rollout from the step reached the gold answer):")
    for name, value in step_auroc.items():
        console.print(f"  {name}: {'n/a' if value is None else f'{value:.3f}'}")
    questions = pool_questions(lines)
    columns = (TextColumn("scoring the pool"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    started = time.perf_counter()
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("", total=len(lines))
        with engine_log(pool_run / "engine.log" if judged else None):
            score_pool(lines, questions, prm, orm, arithmetic, judge=judged, on_question=lambda: progress.advance(bar))
    scoring_seconds = time.perf_counter() - started
    if judged:
        judged.close()
    rows, values_by_n = best_of_n_table(questions, budgets_up_to(max_n), seed=seed)
    _print_best_of_n(rows, len(lines), size)
    default = f"prm ({prm.aggregation.value})"  # `--verifier prm` as a user gets it, against the others
    outcome = outcome_auroc_intervals(questions, base=default, seed=seed)
    console.print(f"outcome AUROC (a candidate's score against its correctness, all {len(lines) * size} candidates; "
                  f"95% CI by a bootstrap over questions, and each score against {default}, paired):")
    for name, row in outcome.items():
        console.print(f"  {name}: {_auroc_line(row, default)}")
    paired = {name: comparisons(values_by_n, name, seed=seed) for name in sorted(questions[0].scores)}
    console.print("paired differences on the same questions (95% bootstrap CI):")
    aggregations = aggregation_comparisons(values_by_n, base=default, seed=seed)
    for row in paired.get(default, []) + paired.get("orm", [])[:2] + aggregations:
        console.print(f"  {Difference.from_dict(row).describe(row['a'], row['b'])}")
    result = {"artifact": str(folder), "pool_run": str(pool_run), "questions": len(lines), "pool_size": size,
              "heldout_steps": held_steps, "heldout_questions": len(held_records), "step_auroc": step_auroc,
              "outcome_auroc": outcome, "comparisons": paired, "aggregations": aggregations, "judge": judge,
              "scoring_seconds": round(scoring_seconds, 1), "best_of_n": rows,
              "scores": [{"id": q.id, **q.scores} for q in questions]}
    path = store.write_derived("verifier_eval.json", json.dumps(result, indent=1) + "\n")
    console.print(f"wrote {path}")
    store.close()


def _auroc_line(row: dict, base: str) -> str:
    """'0.770 (0.741 to 0.797); - prm (last): +0.021 (+0.004 to +0.039), separated'."""
    from testtime.analysis.paired import Difference

    if row["auroc"] is None:
        return "n/a (one class only)"
    text = f"{row['auroc']:.3f}" + (f" ({row['ci95'][0]:.3f} to {row['ci95'][1]:.3f})" if row["ci95"] else "")
    if row["minus_base"]:
        d = Difference.from_dict(row["minus_base"])
        text += (f"; - {base}: {d.difference:+.3f} ({d.low:+.3f} to {d.high:+.3f}), "
                 f"{'separated' if d.separated else 'not separated'}")
    return text


def _print_best_of_n(rows: list[dict], questions: int, size: int) -> None:
    from rich.table import Table

    budgets = sorted({r["n"] for r in rows})
    table = Table(title=f"best-of-N accuracy on {questions} questions (one pool of {size}; 95% CI)")
    table.add_column("selector")
    for n in budgets:
        table.add_column(f"N={n}", justify="right")
    for selector in dict.fromkeys(r["selector"] for r in rows):
        cells = {r["n"]: r for r in rows if r["selector"] == selector}
        table.add_row(selector, *(f"{cells[n]['accuracy']:.1%} ({cells[n]['ci95'][0]:.0%}-{cells[n]['ci95'][1]:.0%})"
                                  for n in budgets))
    wide_console().print(table)


@app.command("revision-data")
def revision_data(
    pool_run: Path = typer.Argument(..., help="a run holding a pool of samples (testtime sweep --n 16 ...)"),
    out: Path = typer.Option(..., help="the chat JSONL file to write (TRL's SFTTrainer reads it)"),
    max_wrong: int = typer.Option(4, help="wrong attempts before the right one, at most"),
    per_question: int = typer.Option(4, help="examples per question, at most (one right attempt each)"),
    seed: int = 0,
):
    """Training examples for a revision model from a pool: 0-4 wrong attempts of a question, the one
    closest to a right answer last, then a right attempt (Snell et al. 2024), in the `revisions` prompt's form."""
    from testtime.learn.revision_data import RevisionDataParams, revision_examples
    from testtime.store import write_atomic

    try:
        params = RevisionDataParams(max_wrong=max_wrong, per_question=per_question, seed=seed)
        if not (pool_run / "run.db").exists():
            raise ValueError(f"{pool_run} holds no run (no run.db)")
        store = RunStore(pool_run)
        lines = next((ls for d, ls in store.lines_by_unit() if d.get("strategy") == "pool"), None)
        store.close()
        if not lines:
            raise ValueError(f"{pool_run} holds no pool: make one with `testtime sweep --n 16 ...`")
    except (ValueError, OSError) as exc:
        fail(f"revision-data: {exc}")
    examples = revision_examples(lines, params)
    if not examples:
        fail(f"revision-data: no question of {pool_run} has a right sample to revise towards")
    try:
        write_atomic(out, "".join(json.dumps(e) + "\n" for e in examples))
    except OSError as exc:
        fail(f"revision-data: cannot write {out}: {exc}")
    shown = [e["wrong_attempts"] for e in examples]
    console.print(f"wrote {len(examples)} examples from {len({e['id'] for e in examples})} of {len(lines)} questions "
                  f"to {out} (wrong attempts shown: {', '.join(f'{k}: {shown.count(k)}' for k in sorted(set(shown)))})")
