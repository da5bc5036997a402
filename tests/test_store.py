"""The run store and resumable plans. The scripted generator (tests/fakes.py) stands in for a
model here because the point is exact bookkeeping; the real engine is killed and resumed in
test_resume.py."""

from __future__ import annotations

import json
import sqlite3

import pytest
from fakes import ScriptedGenerator, SeededGenerator

from testtime.runner import Plan, Unit, execute
from testtime.store import RunConfigMismatch, RunStore
from testtime.strategies import Context, Strategy
from testtime.tasks import Task

TASKS = [Task(f"q{i}", f"What is {i} + {i}?", str(2 * i)) for i in range(7)]


def answer_script(question: str, index: int) -> str:
    i = int(question.split()[2])
    return f"So the answer is {2 * i if index % 2 == 0 else i}."


def plan() -> Plan:
    units = [Unit(Strategy.create("majority", budget=3), seed) for seed in (0, 1)]
    return Plan(units + [Unit(Strategy.create("single"), 0)], TASKS, chunk_size=3)


class FailingAfter(SeededGenerator):
    """Raises on its n-th call: a crash in the middle of a run."""

    def __init__(self, calls_before_failure: int):
        super().__init__(answer_script)
        self.left = calls_before_failure

    def _generate(self, requests):
        if self.left == 0:
            raise RuntimeError("generator died")
        self.left -= 1
        return super()._generate(requests)


def comparable(summary: dict) -> list[dict]:
    """Summary rows without wall-clock time, which no two runs share."""
    return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in summary["results"]]


def test_a_run_commits_every_question_once_and_derives_its_files(tmp_path):
    store = RunStore.start(tmp_path, {"x": 1})
    solved = execute(plan(), Context(generator=ScriptedGenerator(answer_script)), store)
    assert solved == 3 * len(TASKS)
    store.export()
    lines = [json.loads(l) for l in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [(l["strategy"], l["seed"], l["id"]) for l in lines[:8]] == (
        [("majority", 0, t.id) for t in TASKS] + [("majority", 1, "q0")])
    # The first unit draws samples 0, 1, 2 of each question: two right, one wrong.
    assert all(l["correct"] for l in lines[:7])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [(r["strategy"], r["seed"], r["questions"]) for r in summary["results"]] == [
        ("majority", 0, 7), ("majority", 1, 7), ("single", 0, 7)]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("run.db")) == [
        "results.jsonl", "summary.json"]
    db = sqlite3.connect(tmp_path / "run.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_crashed_run_resumes_to_the_uninterrupted_result(tmp_path):
    whole = RunStore.start(tmp_path / "whole", {"x": 1})
    execute(plan(), Context(generator=SeededGenerator(answer_script)), whole)

    broken = RunStore.start(tmp_path / "broken", {"x": 1})
    with pytest.raises(RuntimeError, match="generator died"):
        execute(plan(), Context(generator=FailingAfter(4)), broken)
    # Chunks of 3: the first unit's three chunks and one chunk of the second were committed.
    assert broken.count() == 7 + 3
    resumed = RunStore.start(tmp_path / "broken", {"x": 1}, resume=True)
    assert execute(plan(), Context(generator=SeededGenerator(answer_script)), resumed) == 21 - 10
    assert comparable(resumed.summary()) == comparable(whole.summary())
    assert [r["accuracy"] for r in whole.summary()["results"]] != [1.0] * 3  # answers vary with the seed
    rows = resumed.db.execute("SELECT unit, question, COUNT(*) FROM results GROUP BY unit, question").fetchall()
    assert len(rows) == 21 and {count for *_, count in rows} == {1}


def store_results(store: RunStore, unit: Unit, results) -> None:
    """Results computed outside a plan, committed as one unit."""
    store.add_units([(unit.key, unit.description())])
    store.add(unit.key, [(i, unit.line(r)) for i, r in enumerate(results)])


def test_a_question_cannot_be_stored_twice(tmp_path):
    store = RunStore.start(tmp_path, {})
    unit = Unit(Strategy.create("single"), 0)
    results = Strategy.create("single").solve(TASKS[:2], Context(generator=ScriptedGenerator(answer_script)))
    store_results(store, unit, results)
    with pytest.raises(sqlite3.IntegrityError):
        store_results(store, unit, results)
    assert store.count() == 2  # the failed transaction left nothing behind


def test_resume_refuses_different_settings_and_names_them(tmp_path):
    RunStore.start(tmp_path, {"dataset": "gsm8k", "sampling": {"temperature": 0.8, "stop": ()}, "seed": 0})
    same = RunStore.start(tmp_path, {"dataset": "gsm8k", "sampling": {"temperature": 0.8, "stop": ()}, "seed": 0},
                          resume=True)
    assert same.config["dataset"] == "gsm8k"
    with pytest.raises(RunConfigMismatch) as err:
        RunStore.start(tmp_path, {"dataset": "gsm8k", "sampling": {"temperature": 0.5, "stop": ()}, "seed": 2},
                       resume=True)
    assert "sampling.temperature: stored 0.8, now 0.5" in str(err.value)
    assert "seed: stored 0, now 2" in str(err.value) and "dataset" not in str(err.value)


def test_a_new_run_never_discards_a_stored_one(tmp_path):
    store = RunStore.start(tmp_path, {})
    store_results(store, Unit(Strategy.create("single"), 0),
                  Strategy.create("single").solve(TASKS[:1], Context(generator=ScriptedGenerator(answer_script))))
    store.export()
    with pytest.raises(FileExistsError, match="--resume"):
        RunStore.start(tmp_path, {})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "run.db").write_text("not a database")
    with pytest.raises(FileExistsError):
        RunStore.start(tmp_path / "other", {})
    with pytest.raises(ValueError, match="not a testtime run store"):
        RunStore.start(tmp_path / "other", {}, resume=True)
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "results.jsonl").write_text("{}\n")  # derived files with no store: still a run
    with pytest.raises(FileExistsError):
        RunStore.start(tmp_path / "earlier", {})
    fresh = RunStore.start(tmp_path, {}, overwrite=True)
    assert fresh.count() == 0 and not (tmp_path / "results.jsonl").exists()
    with pytest.raises(FileNotFoundError, match="no run to resume"):
        RunStore.start(tmp_path / "missing", {}, resume=True)


def test_plan_checks():
    with pytest.raises(ValueError, match="chunk size"):
        Plan([], TASKS, chunk_size=0)
    with pytest.raises(ValueError, match="unique"):
        Plan([], TASKS + TASKS[:1])
    assert [len(c) for c in Plan([], TASKS, chunk_size=3).chunks()] == [3, 3, 1]


def test_a_resume_in_another_dtype_is_refused(tmp_path):
    from testtime.generators import GeneratorSpec
    from testtime.generators.vllm_engine import default_dtype

    def config(dtype):
        return {"generator": GeneratorSpec("vllm", "smollm2-135m-instruct", dtype=dtype).identity()}

    assert config("auto") == config(default_dtype())  # "auto" is recorded as what it chose on this machine
    RunStore.start(tmp_path, config("float32")).close()
    RunStore.start(tmp_path, config("float32"), resume=True).close()
    with pytest.raises(RunConfigMismatch, match='generator.dtype: stored "float32", now "bfloat16"'):
        RunStore.start(tmp_path, config("bfloat16"), resume=True)
