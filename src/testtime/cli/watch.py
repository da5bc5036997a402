"""`testtime watch`, and `--watch` on run/sweep/demo: the live view of a run store in a browser."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import typer

from testtime.cli.app import app
from testtime.cli.console import console, fail, stop_cleanly_on_sigterm

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8765


def watch_host_option() -> str:
    return typer.Option(LOOPBACK, "--watch-host", help="--watch: bind address (loopback only unless you name another)")


def watch_port_option() -> int:
    return typer.Option(DEFAULT_PORT, "--watch-port", min=0, max=65535,
                        help="--watch: port of the live view (0: any free one)")


def warn_if_open(host: str) -> None:
    if host not in (LOOPBACK, "localhost", "::1"):
        console.print(f"[yellow]warning:[/] the live view on {host} has no key: anyone who reaches it reads the run")


@contextlib.contextmanager
def watching(run_dir: Path, enabled: bool, host: str = LOOPBACK, port: int = DEFAULT_PORT) -> Iterator[None]:
    """Serve the live view of ``run_dir`` while the block runs (``--watch``); nothing when not enabled."""
    if not enabled:
        yield
        return
    from testtime.report.watch import Background, watch_app

    warn_if_open(host)
    try:
        served = Background(watch_app(run_dir), host, port)
    except OSError as exc:
        fail(f"--watch: the live view {exc}")
    console.print(f"live view: {served.url} (follows {run_dir}; `testtime watch {run_dir}` serves it again later)")
    try:
        yield
    finally:
        served.close()


@app.command()
def watch(
    run_dir: Path = typer.Argument(..., help="a run directory: one being written, finished, or not started yet"),
    host: str = typer.Option(LOOPBACK, help="bind address (default loopback only)"),
    port: int = typer.Option(DEFAULT_PORT, min=0, max=65535, help="port (0: any free one)"),
    poll: float = typer.Option(0.5, help="seconds between looks at the store"),
):
    """Serve a live view of a run in the browser: progress, the curves so far, the ledger, finished questions.

    The store is only read, so the view may follow a run from another process, before it starts,
    after it ends or crashes, and across a --resume. Ctrl-C stops it."""
    from testtime.report.watch import Background, watch_app

    if poll <= 0:
        fail(f"--poll must be positive, got {poll}")
    if run_dir.exists() and not run_dir.is_dir():
        fail(f"{run_dir} is a file, not a run directory")
    warn_if_open(host)
    try:
        served = Background(watch_app(run_dir, poll_seconds=poll), host, port)
    except OSError as exc:
        fail(str(exc))
    console.print(f"live view of {run_dir}: {served.url} (Ctrl-C stops it)")
    try:
        with stop_cleanly_on_sigterm():  # SIGTERM, like Ctrl-C, closes the open event streams first
            served.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        served.close()
