"""Long bench runs span sessions on fresh machines: a run store is snapshotted (compressed) into
bench/data/ to be committed, and restored from there when its run directory is missing."""

from __future__ import annotations

import argparse
import gzip
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAPSHOTS = REPO / "bench" / "data"


def restore(run_dir: Path, name: str) -> None:
    """Start from the committed snapshot, not from nothing, where the run directory holds no store."""
    snapshot = SNAPSHOTS / f"{name}.db.gz"
    if (run_dir / "run.db").exists() or not snapshot.exists():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    with gzip.open(snapshot, "rb") as src, open(run_dir / "run.db", "wb") as dst:
        shutil.copyfileobj(src, dst)
    print(f"restored {run_dir / 'run.db'} from {snapshot.relative_to(REPO)}", flush=True)


def snapshot(run_dir: Path, name: str) -> Path:
    """A consistent copy of the store (sqlite's backup API, write-ahead log included), compressed.

    The same store gives the same bytes (no time or file name in the gzip header), so an unchanged
    run leaves git nothing to commit; the committed snapshot is replaced only once the new one is whole."""
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    target, copy = SNAPSHOTS / f"{name}.db.gz", run_dir / "snapshot.db"
    partial = target.with_name(target.name + ".partial")
    copy.unlink(missing_ok=True)
    with sqlite3.connect(run_dir / "run.db") as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with open(copy, "rb") as src, open(partial, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as dst:
            shutil.copyfileobj(src, dst)
    partial.replace(target)
    copy.unlink()
    print(f"wrote {target.relative_to(REPO)} ({target.stat().st_size:,} bytes)", flush=True)
    return target


def run_options(parser: argparse.ArgumentParser, out: str) -> None:
    """--data-root, --out and --snapshot: what every resumable bench run takes."""
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--snapshot", action="store_true", help="write the run store to bench/data/ and stop")


def run_resumable(args: list[str], out: Path, name: str, snapshot_only: bool = False) -> bool:
    """`testtime ARGS --out OUT`: started from the snapshot ``name`` where OUT holds no run yet, and
    resumed where it holds one. With ``snapshot_only`` (--snapshot) it writes the snapshot instead and
    returns False: nothing ran."""
    if snapshot_only:
        snapshot(out, name)
        return False
    restore(out, name)
    args = [*args, "--out", str(out), *(["--resume"] if (out / "run.db").exists() else [])]
    print("$ testtime", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "testtime", *args], check=True)
    return True
