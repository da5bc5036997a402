"""A run store followed while it fills: what the live view (``testtime watch``) shows.

The store is opened read-only on every refresh and only rows not seen before are read, so
following a run costs the run nothing and a long run's view stays cheap. A store that does
not exist yet, or whose tables are not made yet, reads as empty; a store started again
(``--overwrite``) is read from the start; a resumed run's new rows simply arrive.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from testtime.analysis.sweep import points_so_far, run_labels
from testtime.ledger import Ledger
from testtime.report import figures
from testtime.report.explorer import explorer_data
from testtime.store import STORE_FILE


class LiveRun:
    """One run directory's store, read incrementally; ``state()`` is the page's data."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / STORE_FILE
        self.problem: str | None = None  # why the store cannot be read, when it cannot
        self._forget()

    def _forget(self) -> None:
        self.created = None
        self.meta: dict = {}
        self.units: list[tuple[str, dict]] = []
        self.rows: dict[str, dict[str, dict]] = {}  # unit -> question id -> line
        self.commits: list[tuple[float, str, int]] = []  # (commit time, unit, completion tokens)
        self.damaged: list[str] = []  # result rows that are not result lines (skipped)
        self.last_rowid = 0
        self.version = 0  # grows whenever something new was read
        self._state: dict | None = None

    # -- reading ------------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Read what the store gained since the last call; whether anything changed."""
        if not self.path.exists():
            changed = self.created is not None or self.problem is not None
            self._forget()
            self.problem = None
            return changed
        try:
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error as exc:
            return self._fail(f"{self.path} cannot be opened: {exc}")
        try:
            return self._read(db)
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # made, not yet filled: the store writes its tables next
                return False
            return self._fail(f"{self.path} cannot be read: {exc}")
        except (sqlite3.DatabaseError, ValueError) as exc:  # ValueError: a meta or unit row that is no JSON
            return self._fail(f"{self.path} is not a testtime run store: {exc}")
        finally:
            db.close()

    def _fail(self, problem: str) -> bool:
        changed = problem != self.problem
        self.problem = problem
        if changed:
            self.version += 1
            self._state = None
        return changed

    def _read(self, db: sqlite3.Connection) -> bool:
        problem_before, self.problem = self.problem, None  # it read: an earlier failure is over
        meta = {key: json.loads(value) for key, value in db.execute("SELECT key, value FROM meta")}
        if meta.get("created") != self.created:  # a new store (or the first read): start over
            self._forget()
            self.created = meta.get("created")
        changed = meta != self.meta
        self.meta = meta
        units = [(key, json.loads(d)) for key, d in db.execute("SELECT unit, description FROM units ORDER BY position")]
        if units != self.units:
            self.units, changed = units, True
        new = db.execute("SELECT rowid, unit, line, finished_at FROM results WHERE rowid > ? ORDER BY rowid",
                         (self.last_rowid,)).fetchall()
        for rowid, unit, text, finished_at in new:
            try:
                line = json.loads(text)
                tokens = int(line["ledger"]["completion_tokens"])
                qid = str(line["id"])
            except (ValueError, TypeError, KeyError) as exc:  # a damaged row: skipped and said, never a crash
                self.damaged.append(f"row {rowid} of {unit}: {exc!r}")
            else:
                self.rows.setdefault(unit, {})[qid] = line
                self.commits.append((finished_at, unit, tokens))
            self.last_rowid = rowid
        if changed or new or problem_before is not None:
            self.version += 1
            self._state = None
        return bool(changed or new)

    # -- what the page shows ------------------------------------------------------------------------
    @property
    def question_ids(self) -> list[str]:
        return [str(q) for q in (self.meta.get("config") or {}).get("questions", [])]

    def lines_by_unit(self) -> list[tuple[dict, list[dict]]]:
        order = {qid: i for i, qid in enumerate(self.question_ids)}
        return [(d, sorted(self.rows.get(key, {}).values(), key=lambda line: order.get(str(line["id"]), 0)))
                for key, d in self.units]

    def state(self, now: float | None = None) -> dict:
        """Progress, the curves so far, the ledger and the finished questions (the explorer's index)."""
        if self._state is None:
            self._state = self._compute()
        return {**self._state, "now": time.time() if now is None else now}

    def _compute(self) -> dict:
        config, run = self.meta.get("config") or {}, self.meta.get("run") or {}
        lines_by_unit = self.lines_by_unit()
        total = len(self.question_ids)
        points = points_so_far(lines_by_unit, strategies=config.get("pool_strategies", ()),
                               seed=int(run.get("seed", 0) or 0)) if self.rows else []
        figs, why = {}, {}
        for axis in ("tokens", "flops"):
            figs[axis], why[axis] = figures.accuracy_figure({"points": points}, axis) if points else (None, "no results yet")
        ledger = Ledger.total([Ledger.from_dict(line["ledger"]) for _, lines in lines_by_unit for line in lines])
        return {
            "run_dir": str(self.run_dir),
            "problem": self.problem or (f"{len(self.damaged)} damaged result rows skipped, the first: "
                                        f"{self.damaged[0]}" if self.damaged else None),
            "exists": self.created is not None,
            "version": self.version,
            "dataset": config.get("dataset") or run.get("dataset"),
            "model": run.get("model") or (config.get("generator") or {}).get("model"),
            "created": self.created,
            "started": self.meta.get("started"),
            "questions": total,
            "progress": self._progress(lines_by_unit, total),
            "points": points,
            "figures": figs,
            "why": why,
            "ledger": ledger.to_dict() | {"flops": ledger.flops},
            "finished_questions": self._finished_questions(lines_by_unit),
        }

    def _progress(self, lines_by_unit: list[tuple[dict, list[dict]]], total: int) -> dict:
        """Per unit and for the run: done of total, tokens/s and the expected finish at this session's pace."""
        labels = run_labels([d for d, _ in lines_by_unit])
        started = self.meta.get("started") or self.created or 0.0
        session = sorted(c for c in self.commits if c[0] >= started)
        units = []
        for (key, d), label, (_, lines) in zip(self.units, labels, lines_by_unit):
            pace = _pace([c for c in session if c[1] == key], _before(session, key, started))
            units.append({"unit": f"{label}@{d.get('budget')} seed {d.get('seed')}", "done": len(lines), "of": total,
                          "accuracy": sum(bool(line["correct"]) for line in lines) / len(lines) if lines else None,
                          **pace, "eta_seconds": _eta(total - len(lines), pace)})
        done = sum(u["done"] for u in units)
        whole = _pace(session, started)
        last = max((c[0] for c in self.commits), default=None)
        return {"units": units, "done": done, "of": total * len(units), "last_commit": last,
                **whole, "eta_seconds": _eta(total * len(units) - done, whole)}

    def _finished_questions(self, lines_by_unit: list[tuple[dict, list[dict]]]) -> list[dict]:
        """The questions with at least one unit's answer, in the run's order: the explorer's menu."""
        seen: dict[str, dict] = {}
        for _, lines in lines_by_unit:
            for line in lines:
                entry = seen.setdefault(str(line["id"]), {"id": str(line["id"]), "question": line["question"][:200],
                                                          "answers": 0})
                entry["answers"] += 1
        order = {qid: i for i, qid in enumerate(self.question_ids)}
        return sorted(seen.values(), key=lambda q: order.get(q["id"], 0))

    def question(self, qid: str) -> dict | None:
        """One question's explorer entry: every unit's answer to it (tree, samples, programs)."""
        picked = [(d, [lines[qid]] if qid in lines else []) for (key, d) in self.units
                  for lines in [self.rows.get(key, {})]]
        entries = explorer_data(picked)
        return entries[0] if entries else None


def _before(session: list[tuple], unit: str, started: float) -> float:
    """When a unit's work began: the last commit of another unit before its first, or the session's start."""
    first = next((c[0] for c in session if c[1] == unit), None)
    if first is None:
        return started
    return max([started] + [c[0] for c in session if c[1] != unit and c[0] < first])


def _pace(commits: list[tuple], since: float) -> dict:
    """Questions and completion tokens per second from ``since`` to the last of ``commits``."""
    if not commits:
        return {"tokens_per_second": None, "questions_per_second": None}
    span = max(c[0] for c in commits) - since
    if span <= 0:
        return {"tokens_per_second": None, "questions_per_second": None}
    return {"tokens_per_second": sum(c[2] for c in commits) / span, "questions_per_second": len(commits) / span}


def _eta(left: int, pace: dict) -> float | None:
    if left <= 0:
        return 0.0
    rate = pace.get("questions_per_second")
    return left / rate if rate else None
