"""The execution figures of docs/results/code.md (issue 35): HumanEval on the default model, and program of
thought on GSM8K, each from resumable `testtime` runs whose stores are snapshotted to bench/data/.

    .venv/bin/python bench/code.py humaneval              # a pool of 16 on all 164 problems (public_tests)
    .venv/bin/python bench/code.py self-debug             # self_debug at budgets 4 and 16, run for real
    .venv/bin/python bench/code.py large                  # the 1.5B greedy on the same problems
    .venv/bin/python bench/code.py programs               # GSM8K: a pool of 16 programs on the sweep's 200 questions
    .venv/bin/python bench/code.py sandbox                # executions per second, one worker against one per core
    .venv/bin/python bench/code.py analyse                # every figure from what is stored; nothing runs
    .venv/bin/python bench/code.py snapshot               # write the stores to bench/data/

Every comparison is paired on the same problems (95 % bootstrap interval over problems); a
difference whose interval holds zero is printed as "not separated". On HumanEval, selection by the
visible examples is partly selection on the grader: about 122 of the 182 ``>>>`` example calls
also appear in the hidden tests (shared/notes/code-execution.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from snapshots import REPO, restore, run_resumable, snapshot

from testtime.analysis.paired import paired_difference

OUT = Path("runs/code")
POOLED = ("single", "majority", "best_of_n", "weighted_best_of_n")
STORES = {"humaneval": "code-humaneval", "self-debug": "code-self-debug", "large": "code-large",
          "programs": "code-programs"}


def humaneval(a) -> None:
    run_resumable(["sweep", "--dataset", "humaneval", *(f"--strategy={s}" for s in POOLED),
                   *(f"--n={b}" for b in (1, 2, 4, 8, 16)), "--verifier", "public_tests"],
                  a.out / "humaneval", STORES["humaneval"])


def self_debug(a) -> None:
    run_resumable(["run", "--dataset", "humaneval", "--strategy", "self_debug@4",
                   "--strategy", "self_debug[chains=4]@16", "--verifier", "public_tests", "--chunk-size", "41"],
                  a.out / "self-debug", STORES["self-debug"])


def large(a) -> None:
    run_resumable(["run", "--dataset", "humaneval", "--model", "qwen2.5-coder-1.5b-instruct", "--strategy", "single",
                   "--temperature", "0", "--chunk-size", "82"], a.out / "large", STORES["large"])


def programs(a) -> None:
    run_resumable(["sweep", "--dataset", "gsm8k", "--domain", "program", "--data-root", a.data_root, "--limit", "200",
                   "--strategy=single", "--strategy=majority", *(f"--n={b}" for b in (1, 2, 4, 8, 16)),
                   "--chunk-size", "25"], a.out / "programs", STORES["programs"])


def sandbox(a) -> None:
    """HumanEval's 164 canonical solutions under their hidden tests, on one worker and on one per core:
    executions per second, as a ratio in the same run (this machine's speed drifts)."""
    import os
    import time

    from testtime.domains.code import hidden_test_program
    from testtime.sandbox import Job, Sandbox
    from testtime.tasks import load_dataset

    jobs = [Job(hidden_test_program(t, t.question + t.answer)) for t in load_dataset("humaneval")]
    rates = {}
    for workers in (1, os.cpu_count() or 1):
        box = Sandbox(workers=workers, memo=0)
        start = time.perf_counter()
        results = box.run_many(jobs)
        rates[workers] = len(jobs) / (time.perf_counter() - start)
        box.close()
        passed = sum(r.passed for r in results)
        print(f"  {workers} worker(s): {rates[workers]:.1f} executions/s ({passed} of {len(jobs)} passed), "
              f"mean {np.mean([r.seconds for r in results]) * 1000:.0f} ms each")
    print(f"  parallel speed-up: {rates[max(rates)] / rates[1]:.2f}x on {max(rates)} cores")


def analyse(a) -> None:
    from testtime.analysis.sweep import SweepAnalysis
    from testtime.store import RunStore

    for name in STORES:
        restore(a.out / name, STORES[name])
    run = a.out / "humaneval"
    if (run / "run.db").exists():
        store = RunStore(run)
        analysis = SweepAnalysis(store.lines_by_unit(), strategies=store.config.get("pool_strategies", ()))
        points = {(p.strategy, p.budget): p for p in analysis.points}
        print(f"HumanEval, {len(analysis.ids)} problems, a pool of {analysis.pool_size}:")
        for (strategy, budget), p in sorted(points.items()):
            print(f"  {strategy}@{budget}: {p.accuracy:.1%} ({p.cost.tokens.mean():,.0f} tokens/problem)")
        for k in (1, 2, 4, 8, 16):
            if ("pass@k", k) in points:
                print(f"  pass@{k} (oracle): {points[('pass@k', k)].accuracy:.1%}")
        pairs = [(("best_of_n", 8), ("single", 1)), (("best_of_n", 16), ("single", 1)),
                 (("majority", 8), ("single", 1)), (("best_of_n", 8), ("majority", 8)),
                 (("weighted_best_of_n", 8), ("best_of_n", 8)), (("weighted_best_of_n", 16), ("majority", 16))]
        for x, y in pairs:
            if x in points and y in points:
                d = paired_difference(points[x].correct, points[y].correct)
                print("  " + d.describe(f"{x[0]}@{x[1]}", f"{y[0]}@{y[1]}"))
        beyond_examples(analysis.ids, points)
        store.close()
        self_debug_rows(a.out / "self-debug", analysis.ids, points)
        large_rows(a.out / "large")
    program_rows(a.out / "programs", Path(a.cot))


def beyond_examples(ids: list[str], points) -> None:
    """The honest check: the problems none of whose visible examples' inputs the hidden tests call, so that
    passing the examples is no selection on the grader itself."""
    from testtime.programs import visible_examples
    from testtime.tasks import load_dataset

    tasks = {t.id: t for t in load_dataset("humaneval")}
    shown = [visible_examples(t.question) for t in tasks.values()]
    print(f"  {sum(map(bool, shown))} of {len(tasks)} prompts show at least one visible example "
          f"({sum(map(len, shown))} in all)")

    def shown_in_hidden(task) -> bool:
        hidden = "".join(task.meta["test"].split())
        return any("".join(e.call.split("(", 1)[1].split()) in hidden for e in visible_examples(task.question))

    rows = np.flatnonzero([not shown_in_hidden(tasks[i]) for i in ids])
    print(f"  {len(ids) - rows.size} problems' hidden tests call a visible example's inputs")
    for strategy in ("best_of_n", "majority"):
        if (strategy, 8) in points and rows.size:
            d = paired_difference(points[(strategy, 8)].correct[rows], points[("single", 1)].correct[rows])
            print(f"  on the other {rows.size}: " + d.describe(f"{strategy}@8", "single@1"))


def self_debug_rows(run: Path, ids: list[str], points) -> None:
    """Each self_debug unit, paired with the pool's points on the same problems in the same order."""
    from testtime.store import RunStore

    if not (run / "run.db").exists():
        return
    store = RunStore(run)
    for description, lines in store.lines_by_unit():
        by_id = {line["id"]: line for line in lines}
        if set(by_id) != set(ids):
            print(f"  self_debug@{description['budget']}: {len(by_id)} of {len(ids)} problems so far (--resume)")
            continue
        lines = [by_id[i] for i in ids]
        correct = np.array([float(line["correct"]) for line in lines])
        tokens = np.mean([line["ledger"]["completion_tokens"] for line in lines])
        label = f"self_debug[chains={description.get('chains', 1)}]@{description['budget']}"
        print(f"  {label}: {correct.mean():.1%} on {len(lines)} problems, {tokens:,.0f} completion tokens/problem")
        for other in (("single", 1), ("best_of_n", description["budget"]), ("majority", description["budget"])):
            if other in points and points[other].correct.size == correct.size:
                print("    " + paired_difference(correct, points[other].correct).describe(label, f"{other[0]}@{other[1]}"))
    store.close()


def large_rows(run: Path) -> None:
    if (run / "run.db").exists():
        import subprocess

        subprocess.run([sys.executable, "-m", "testtime", "train-vs-test", str(run.parent / "humaneval"), str(run)])


def program_rows(run: Path, cot: Path) -> None:
    """Program of thought against chain of thought on the same 200 GSM8K questions, and the
    program-checked vote: each chain-of-thought answer of the CoT pool scored by the share of the
    first K programs of the program pool that print it."""
    from testtime.analysis.sweep import PoolQuestion, SweepAnalysis
    from testtime.answers import answers_match
    from testtime.selection import select_majority, select_weighted
    from testtime.store import RunStore

    if not (run / "run.db").exists():
        return
    restore(cot, "scaling-small")
    stores = {"program": RunStore(run), "cot": RunStore(cot)}
    pools = {}
    for name, store in stores.items():
        analysis = SweepAnalysis(store.lines_by_unit(), strategies=store.config.get("pool_strategies", ()))
        pools[name] = ({(p.strategy, p.budget): p for p in analysis.points}, analysis)
    ids = pools["program"][1].ids
    if pools["cot"][1].ids[:len(ids)] != ids:
        raise SystemExit("the program pool and the chain-of-thought pool do not hold the same questions")
    program, cot = pools["program"][0], pools["cot"][0]
    print(f"GSM8K, {len(ids)} questions, a pool of 16 programs (program of thought) against the sweep's pool of 16 "
          "chains of thought:")
    for strategy, budget in (("single", 1), ("majority", 16)):
        a, b = program[(strategy, budget)], cot[(strategy, budget)]
        b_correct = b.correct[:len(ids)]
        print(f"  {strategy}@{budget}: programs {a.accuracy:.1%}, chains of thought {b_correct.mean():.1%}; "
              + paired_difference(a.correct, b_correct).describe("programs", "chains of thought"))
    cot_pool, program_pool = ({line["id"]: PoolQuestion.from_line(line) for line in next(
        lines for description, lines in stores[name].lines_by_unit() if description["strategy"] == "pool")}
        for name in ("cot", "program"))
    for name, pool in (("programs", program_pool), ("chains of thought", cot_pool)):
        drawn = [c for q in ids for c in pool[q].candidates[:16]]
        print(f"  {name}: pass@16 {np.mean([any(pool[q].correct[:16]) for q in ids]):.1%}, "
              f"{np.mean([c.tokens for c in drawn]):.0f} completion tokens a sample, "
              f"{np.mean([c.answer is None for c in drawn]):.1%} with no answer")
    unanswered = [c for q in ids for c in program_pool[q].candidates[:16] if c.answer is None]
    prose = sum("```" not in c.text for c in unanswered) / (16 * len(ids))
    print(f"    of the programs: {prose:.1%} of the replies hold no code block (prose), "
          f"{len(unanswered) / (16 * len(ids)) - prose:.1%} have one that fails or prints nothing")
    for k in (4, 8, 16):
        checked, majority, union = [], [], []
        for q in ids:
            programs = program_pool[q].candidates[:k]
            printed = [c.answer for c in programs if c.answer is not None]
            chains = cot_pool[q].candidates[:16]
            for c in chains:
                c.score = sum(answers_match(p, c.answer) for p in printed) / k if c.answer is not None else 0.0
            for pick, into in ((select_weighted, checked), (select_majority, majority)):
                chosen = pick(chains)
                into.append(float(cot_pool[q].correct[chains.index(chosen)]) if chosen is not None else 0.0)
            # the same 16 + K samples, every answer one vote: the control at equal compute
            both, graded = chains + programs, list(cot_pool[q].correct[:16]) + list(program_pool[q].correct[:k])
            chosen = select_majority(both)
            union.append(float(graded[both.index(chosen)]) if chosen is not None else 0.0)
        d = paired_difference(checked, majority)
        print(f"  the CoT vote weighted by K = {k} programs: {np.mean(checked):.1%} against majority@16 "
              f"{np.mean(majority):.1%}; " + d.describe(f"program-checked@16+{k}", "majority@16"))
        print(f"    against one vote over the same 16 + {k} answers ({np.mean(union):.1%}): "
              + paired_difference(checked, union).describe(f"program-checked@16+{k}", f"majority@16+{k}"))
        print("    that one vote against the chains' majority@16: "
              + paired_difference(union, majority).describe(f"majority@16+{k}", "majority@16"))
        against = program.get(("majority", 16))
        if against is not None:
            print("    against the programs' own majority@16: "
                  + paired_difference(checked, against.correct).describe(f"program-checked@16+{k}", "programs' majority@16"))
    for store in stores.values():
        store.close()


def main() -> None:
    steps = {"humaneval": humaneval, "self-debug": self_debug, "large": large, "programs": programs,
             "sandbox": sandbox, "analyse": analyse}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=[*steps, "snapshot"])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--cot", default="runs/scaling/small", help="the scaling sweep's store (chain of thought)")
    a = parser.parse_args()
    if a.step == "snapshot":
        for name, store in STORES.items():
            if (a.out / name / "run.db").exists():
                snapshot(a.out / name, store)
        return
    steps[a.step](a)


if __name__ == "__main__":
    main()
