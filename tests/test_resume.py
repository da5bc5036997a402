"""Runs that survive a kill, and sweeps sharded over a local Ray cluster, on the embedded model
through the real CLI. Both are compared with one uninterrupted single-process run.

The exact-equality tests run the engine in float32, the reproducible setting: there a seeded
sample is the same whatever it is batched with. In the default dtype (bfloat16 where the CPU
computes it natively) batch shapes and prefix-cache hits change the last bits of the logits, so
a resumed run equals the uninterrupted one only in distribution; the last test pins what still
holds there: every question stored exactly once, nothing lost, the same prompts and seeds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TEST_MODEL, free_port, kill_tree, outlived

from testtime.generators import REPRODUCIBLE_DTYPE

pytestmark = pytest.mark.engine

SWEEP = ["--dataset", "sample", "--limit", "8", "--strategy", "majority", "--strategy", "single", "--n", "2",
         "--max-tokens", "48", "--chunk-size", "2", "--seed", "5", "--no-pool", "--dtype", REPRODUCIBLE_DTYPE,
         "--model", TEST_MODEL]
# What two runs of the same plan must share. Wall time differs between any two runs, and a resumed
# process starts with an empty prefix cache, so its cached-token count (and FLOPs) honestly differ.
VARIES = {"wall_seconds", "cached_prompt_tokens", "flops", "policy_flops"}


def sweep(out: Path, *extra: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "testtime", "sweep", *SWEEP, "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def finish(proc: subprocess.Popen, timeout: float = 900) -> str:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return err


def stored(out: Path) -> list[tuple]:
    db = sqlite3.connect(out / "run.db")
    try:
        return db.execute("SELECT unit, question, worker FROM results ORDER BY unit, position").fetchall()
    finally:
        db.close()


def stored_so_far(out: Path) -> list[tuple]:
    """``stored`` while the run may still be creating its store: the file can exist before its tables."""
    if not (out / "run.db").exists():
        return []
    try:
        return stored(out)
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


def comparable_summary(out: Path) -> list[dict]:
    rows = json.loads((out / "summary.json").read_text())["results"]
    return [{k: v for k, v in row.items() if k not in VARIES} for row in rows]


def comparable_lines(out: Path) -> list[dict]:
    lines = [json.loads(l) for l in (out / "results.jsonl").read_text().splitlines()]
    for line in lines:
        line["ledger"] = {k: v for k, v in line["ledger"].items() if k not in VARIES}
    return lines


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    finish(sweep(out))
    return out


def test_a_sweep_stopped_by_sigterm_leaves_no_process_and_resumes_to_the_uninterrupted_result(uninterrupted, tmp_path):
    import psutil

    out = tmp_path / "killed"
    proc = sweep(out)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            if len(stored_so_far(out)) >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the sweep ended before it could be stopped"
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM
        assert not outlived(children), "the engine outlived the sweep"
    finally:
        kill_tree(proc.pid)
    at_kill = stored(out)
    assert 2 <= len(at_kill) < 16 and len(at_kill) % 2 == 0  # whole chunks only

    err = finish(sweep(out, "--resume"))
    assert f"{len(at_kill)} of 16 results already stored, {16 - len(at_kill)} to go" in " ".join(err.split())
    after = stored(out)
    # Every question of every unit exactly once; the killed process's rows untouched, the rest new.
    assert len(after) == len({(unit, q) for unit, q, _ in after}) == 16
    killed_worker = {w for *_, w in at_kill}
    assert len(killed_worker) == 1
    assert [r for r in after if r[2] in killed_worker] == at_kill
    assert len({w for *_, w in after} - killed_worker) == 1
    assert comparable_summary(out) == comparable_summary(uninterrupted)
    assert comparable_lines(out) == comparable_lines(uninterrupted)


def test_a_sweep_whose_engine_process_dies_stops_with_the_reason_and_keeps_its_chunks(tmp_path):
    import psutil

    out = tmp_path / "engine-killed"
    proc = sweep(out)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None and not stored_so_far(out):
            time.sleep(0.2)
        engine = [p for p in psutil.Process(proc.pid).children(recursive=True) if "EngineCor" in p.name()]
        assert len(engine) == 1 and proc.poll() is None
        engine[0].kill()  # as the kernel's out-of-memory killer would: vLLM's own client then waits forever
        _, err = proc.communicate(timeout=120)
    finally:
        kill_tree(proc.pid)
    err = " ".join(err.split())
    assert proc.returncode == 2, err[-3000:]
    # testtime's watcher names the process; vLLM's own monitor may report the death first (a race)
    assert (f"the vLLM engine core process (pid {engine[0].pid}) exited" in err
            or "the engine loop stopped" in err)
    kept = stored(out)
    assert f"{len(kept)} finished results are kept in" in err and "rerun with --resume" in err
    assert kept and len(kept) % 2 == 0  # whole chunks only


@pytest.fixture(scope="module")
def ray_cluster():
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent))
    port = free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    started = subprocess.run([ray_cli, "start", "--head", "--port", str(port), "--num-cpus", "2",
                              "--include-dashboard", "false", "--disable-usage-stats"],
                             capture_output=True, text=True, env=env, timeout=180)
    assert started.returncode == 0, started.stderr[-3000:]
    yield "auto"  # Ray's name for the cluster started on this machine (it binds the host's address, not loopback)
    subprocess.run([ray_cli, "stop", "--force"], capture_output=True, env=env, timeout=120)


def test_a_sweep_on_a_local_ray_cluster_equals_the_single_process_run(uninterrupted, ray_cluster, tmp_path):
    out = tmp_path / "ray"
    finish(sweep(out, "--ray", ray_cluster, "--workers", "2"))
    rows = stored(out)
    assert len(rows) == len({(unit, q) for unit, q, _ in rows}) == 16
    workers = {w for *_, w in rows}
    assert len(workers) == 2 and all(w.startswith("ray:") for w in workers)
    assert comparable_summary(out) == comparable_summary(uninterrupted)
    assert comparable_lines(out) == comparable_lines(uninterrupted)
    assert json.loads((out / "summary.json").read_text())["ray"] == ray_cluster


def test_a_sweep_whose_ray_worker_dies_stops_with_the_reason_and_keeps_its_chunks(ray_cluster, tmp_path):
    import psutil

    out = tmp_path / "ray-worker-killed"
    proc = sweep(out, "--ray", ray_cluster, "--workers", "2")
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None and not stored_so_far(out):
            time.sleep(0.2)
        workers = [p for p in psutil.process_iter(["cmdline"]) if "ShardWorker" in " ".join(p.info["cmdline"] or ())]
        assert workers and proc.poll() is None
        workers[0].kill()  # as the out-of-memory killer would take the process that holds a model
        _, err = proc.communicate(timeout=300)
    finally:
        kill_tree(proc.pid)
    err = " ".join(err.split())
    assert proc.returncode == 2, err[-3000:]  # the reason, not a traceback
    assert "a Ray worker's process died" in err and "Traceback" not in err
    kept = stored(out)
    assert f"{len(kept)} finished results are kept in" in err and "rerun with --resume" in err
    assert kept and len(kept) % 2 == 0  # whole chunks only


class _Recorder:
    """Delegates to the real engine, keeping each request's prompt, n and seed (an observer, not a fake)."""

    def __init__(self, engine):
        self.engine, self.sent = engine, []

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def generate(self, requests, ledgers=None, stop=None, watch=None):
        self.sent += [(self.engine.render(r.prompt), r.n, r.params.seed) for r in requests]
        return self.engine.generate(requests, ledgers, stop, watch)


class _Crash(Exception):
    pass


def test_in_the_default_dtype_an_interrupted_run_resumes_exactly_once(engine, tmp_path):
    from testtime.generators import SamplingParams
    from testtime.runner import Plan, Unit, execute
    from testtime.store import RunStore
    from testtime.strategies import Context, Strategy
    from testtime.tasks import load_dataset

    units = [Unit(Strategy.create("majority", budget=2), 5), Unit(Strategy.create("single"), 5)]
    plan = Plan(units, load_dataset("sample", limit=8), chunk_size=2)

    def run(out, on_commit=None) -> tuple[RunStore, list]:
        recorder = _Recorder(engine)
        ctx = Context(generator=recorder, sampling=SamplingParams(max_tokens=48), seed=5)
        store = RunStore.start(out, plan.config(), resume=(out / "run.db").exists())
        try:
            execute(plan, ctx, store, on_commit=on_commit)
        except _Crash:
            pass
        return store, recorder.sent

    whole, whole_sent = run(tmp_path / "whole")
    commits = []

    def crash_after_two(unit, count):
        commits.append(count)
        if len(commits) == 2:
            raise _Crash  # the process dies right after its second committed chunk

    interrupted, first_sent = run(tmp_path / "interrupted", crash_after_two)
    at_crash = stored(tmp_path / "interrupted")
    assert len(at_crash) == 4
    interrupted.close()
    resumed, second_sent = run(tmp_path / "interrupted")
    after = stored(tmp_path / "interrupted")
    assert len(after) == len({(unit, q) for unit, q, _ in after}) == 16  # each question of each unit once
    assert set(at_crash) <= set(after)  # the committed chunks untouched
    # The resumed process asked for exactly what the uninterrupted one did, no request twice.
    assert sorted(first_sent + second_sent) == sorted(whole_sent)
    for a, b in zip(whole.export()["results"], resumed.export()["results"]):
        assert (a["strategy"], a["questions"]) == (b["strategy"], b["questions"])
        assert a["ci95"][0] <= b["accuracy"] <= a["ci95"][1]
    whole_lines = [line for _, lines in whole.lines_by_unit() for line in lines]
    resumed_lines = [line for _, lines in resumed.lines_by_unit() for line in lines]
    assert [(l["id"], l["question"], len(l["candidates"])) for l in resumed_lines] == \
        [(l["id"], l["question"], len(l["candidates"])) for l in whole_lines]
    whole.close()
    resumed.close()
