"""The run store: one SQLite database (WAL mode) per run directory.

Each finished batch of questions is committed in one transaction the moment it
is done, so a crash or a kill loses only work in flight. A result's key is
(unit, question): a unit is one strategy with its parameters and seed, and the
primary key makes computing a question twice an error, not a silent duplicate.
``results.jsonl`` and ``summary.json`` are derived from the store.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Sequence

from testtime.version import __version__
from testtime.analysis import summary_row
from testtime.ledger import Ledger

STORE_FILE = "run.db"
DERIVED_FILES = ("results.jsonl", "summary.json", "scaling.json", "policy.json", "report.html",
                 "accuracy_vs_tokens.png", "accuracy_vs_flops.png", "coverage.png", "compute_optimal.png")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS units (
    unit TEXT PRIMARY KEY, position INTEGER NOT NULL, description TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    unit TEXT NOT NULL REFERENCES units(unit),
    question TEXT NOT NULL,
    position INTEGER NOT NULL,
    correct INTEGER NOT NULL,
    line TEXT NOT NULL,
    worker TEXT NOT NULL,
    finished_at REAL NOT NULL,
    PRIMARY KEY (unit, question));
"""


class RunConfigMismatch(ValueError):
    """``--resume`` on a run whose recorded settings differ from the ones given now."""


def config_differences(stored: dict, given: dict, prefix: str = "") -> list[str]:
    """Each setting that differs, as 'name: stored X, now Y' (nested settings by dotted name)."""
    out = []
    for key in sorted(set(stored) | set(given)):
        a, b = stored.get(key), given.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: stored {json.dumps(a)}, now {json.dumps(b)}")
    return out


class RunStore:
    """Results of one run, committed as they finish."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / STORE_FILE
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")  # a committed batch survives even a power cut
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise ValueError(f"{self.path} is not a testtime run store: {exc}") from exc

    @classmethod
    def start(cls, run_dir: str | Path, config: dict, *, resume: bool = False, overwrite: bool = False) -> RunStore:
        """A store for a new run, or the stored run to continue when ``resume``.

        A new run refuses a directory that already holds results unless ``overwrite``;
        a resumed run refuses settings that differ from the stored ones, naming each.
        """
        path = Path(run_dir) / STORE_FILE
        if resume and not path.exists():
            raise FileNotFoundError(f"--resume: {run_dir} holds no run to resume (no {STORE_FILE})")
        if not resume:
            derived = [Path(run_dir) / name for name in DERIVED_FILES]
            held = (path.exists() and _holds_results(path)) or any(p.exists() for p in derived)
            if held and not overwrite:
                raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it "
                                      f"or --overwrite to start it again")
            for old in [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm")] + derived:
                old.unlink(missing_ok=True)
        store = cls(run_dir)
        config = json.loads(json.dumps(config))  # as stored: tuples become lists
        if resume:
            differences = config_differences(store.config, config)
            if differences:
                raise RunConfigMismatch(f"--resume: the settings differ from those of the run in {run_dir}: "
                                        + "; ".join(differences))
        else:
            store.set_meta("config", config)
            store.set_meta("testtime_version", __version__)
            store.set_meta("created", time.time())
        return store

    # -- metadata ---------------------------------------------------------------------------
    def set_meta(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    @property
    def config(self) -> dict:
        return self.get_meta("config", {})

    # -- units and results ------------------------------------------------------------------
    def add_units(self, units: Sequence[tuple[str, dict]]) -> None:
        """Register (key, description) of every unit in plan order; known ones are kept."""
        with self._transaction():
            for position, (key, description) in enumerate(units):
                self.db.execute("INSERT OR IGNORE INTO units VALUES (?, ?, ?)",
                                (key, position, json.dumps(description)))

    def finished(self, unit: str) -> set[str]:
        rows = self.db.execute("SELECT question FROM results WHERE unit = ?", (unit,))
        return {q for (q,) in rows}

    def add(self, unit: str, lines: Sequence[tuple[int, dict]], worker: str = "") -> None:
        """Commit (question position, result line) pairs of one unit in one transaction."""
        now = time.time()
        with self._transaction():
            for position, line in lines:
                self.db.execute(
                    "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (unit, str(line["id"]), position, int(bool(line["correct"])),
                     json.dumps(line, ensure_ascii=False), worker or f"pid{os.getpid()}", now),
                )

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def units(self) -> list[tuple[str, dict]]:
        rows = self.db.execute("SELECT unit, description FROM units ORDER BY position")
        return [(key, json.loads(description)) for key, description in rows]

    def lines(self, unit: str) -> list[dict]:
        rows = self.db.execute("SELECT line FROM results WHERE unit = ? ORDER BY position", (unit,))
        return [json.loads(line) for (line,) in rows]

    # -- derived files ----------------------------------------------------------------------
    def summary(self, lines_by_unit: list[tuple[dict, list[dict]]] | None = None) -> dict:
        rows = [summary_row(description, [line["correct"] for line in lines],
                            [Ledger.from_dict(line["ledger"]) for line in lines])
                for description, lines in lines_by_unit or self.lines_by_unit() if lines]
        return {"testtime_version": self.get_meta("testtime_version"), **self.get_meta("run", {}),
                "config": self.config, "results": rows}

    def export(self) -> dict:
        """Write results.jsonl and summary.json from the store, each replaced atomically; the summary."""
        lines_by_unit = self.lines_by_unit()  # read once for both files
        summary = self.summary(lines_by_unit)
        write_atomic(self.run_dir / "results.jsonl", "".join(
            json.dumps(line, ensure_ascii=False) + "\n" for _, lines in lines_by_unit for line in lines))
        write_atomic(self.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary

    def lines_by_unit(self) -> list[tuple[dict, list[dict]]]:
        """Every unit's description with its result lines, in plan order."""
        return [(description, self.lines(key)) for key, description in self.units()]

    def write_derived(self, name: str, text: str) -> Path:
        """A file derived from the store (the analysis, the report), replaced atomically."""
        path = self.run_dir / name
        write_atomic(path, text)
        return path

    def close(self) -> None:
        self.db.close()

    def _transaction(self):
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *rest):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write beside the target, then rename: a reader never sees half a file.

    Opened normally (not mkstemp), so the file gets the umask's permissions, not 0600."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _holds_results(path: Path) -> bool:
    """Whether a store file holds results; an unreadable one is treated as holding some (never discarded)."""
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT COUNT(*) FROM results").fetchone()[0] > 0
    except sqlite3.OperationalError as exc:  # no results table yet: an empty store
        return "no such table" not in str(exc)
    except sqlite3.DatabaseError:
        return True
    finally:
        db.close()
