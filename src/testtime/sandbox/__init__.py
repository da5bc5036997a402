"""The sandbox: model-written code runs here, one fresh process per execution, never in ours.

Threat model. It is built for programs that are wrong, greedy or careless (the normal output of a
small model), not for an adversary who studies it; it is not a container.

What it stops, on Linux (each case is a test in ``tests/test_sandbox.py``):
- running long: a wall-clock deadline kills the whole process group, and a CPU-time limit (RLIMIT_CPU)
  kills a busy loop even where the wall clock is generous;
- memory: an address-space limit (RLIMIT_AS) turns a memory bomb into ``MemoryError``;
- a fork bomb: a process-count limit (RLIMIT_NPROC) for a user id of the execution's own (below), and
  every process left with that user id is killed at the end, also one that left the process group;
- files: a fresh temporary working directory, removed afterwards; a file-size limit (RLIMIT_FSIZE)
  caps the program's files and its stdout and stderr, which go to files there (100 MB of prints end
  as an ``error``, not in our memory); when run as root the program runs as a user id of its own
  (``SANDBOX_UID_BASE`` + slot), so it cannot write, delete or read root's files, nor signal our
  process; /tmp, /var/tmp and /dev/shm are private empty tmpfs mounts that vanish with it;
- secrets: the environment is replaced by a minimal one (no API keys, no ``TESTTIME_*``, HOME is the
  working directory), and the interpreter starts with ``-s -P`` (no user site, no script folder);
- the network: a network namespace of its own (``unshare(CLONE_NEWNET)``) has only a loopback that
  is down, so no socket reaches anything;
- lying about its result: the verdict comes over a pipe the harness owns, tagged with a nonce;
  ``sys.exit(0)`` or ``os._exit(0)`` before a test's asserts is no pass, and neither is exit code 0.

What it does not stop:
- a program that reads the harness's memory (the nonce) on purpose, or returns an object whose
  ``__eq__`` is always true to a test that compares inside the sandbox;
- where the kernel refuses namespaces (some containers), the network stays open and /tmp shared:
  ``Execution.isolation`` says what held, and ``Sandbox.check()`` reports it before a run;
- not run as root: the program runs as our own user, so it can read and delete what we can by
  absolute path, RLIMIT_NPROC counts all of our processes, and a process that leaves the group
  survives the end; in a user namespace the network is still cut where the kernel allows it;
- side channels, kernel exploits, and CPU or disk bandwidth taken from other work on the machine.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

CHILD = Path(__file__).with_name("child.py")
# Root only: each slot runs as a user id of its own from this range, which nothing else on the machine
# uses; a slot leases its id (below) so that two sandboxes, in one process or two, never share one.
SANDBOX_UID_BASE, SANDBOX_UIDS = 61000, 1000
STATUSES = ("passed", "failed", "timeout", "memory", "error")
_TAIL_CHARS = 2000
_VERDICT_BYTES = 4 << 20  # what the verdict pipe may carry before the execution is cut


@dataclass(frozen=True)
class Limits:
    """What one execution may take."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_bytes: int = 1 << 30  # address space, not resident memory: an interpreter alone maps ~30 MB
    processes: int = 16
    file_bytes: int = 4 << 20  # each file it writes, its stdout and stderr included
    tmp_bytes: int = 16 << 20  # its private /tmp
    output_chars: int = 2000  # of each call's repr

    def __post_init__(self):
        for name in ("wall_seconds", "cpu_seconds", "memory_bytes", "processes", "file_bytes", "tmp_bytes",
                     "output_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"sandbox limit {name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class Job:
    """A program to run, then expressions to evaluate in its namespace (their repr() comes back)."""

    program: str
    calls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Output:
    value: str | None = None  # repr() of what the call returned
    raised: str | None = None  # else the name of the exception it raised
    message: str = ""  # and its message


@dataclass(frozen=True)
class Execution:
    status: str  # one of STATUSES
    error: str | None = None  # what went wrong, in a line
    stderr: str = ""  # the tail of the program's stderr
    stdout: str = ""  # the tail of its stdout
    outputs: tuple[Output, ...] = ()
    seconds: float = 0.0
    isolation: dict = field(default_factory=dict)  # which of network, private_tmp, user held

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return {"status": self.status, "error": self.error, "stderr": self.stderr[-500:]}


class Sandbox:
    """Runs jobs in parallel over ``workers`` processes at a time, each under ``limits``.

    A job already run returns its first execution again (a verifier and a vote over the same
    candidates run it once); ``memo`` bounds how many are kept."""

    def __init__(self, limits: Limits = Limits(), workers: int | None = None, memo: int = 10_000):
        self.limits = limits
        self.workers = workers or os.cpu_count() or 1
        self._slots: queue.Queue[int | None] = queue.Queue()
        self._leases = [_lease_uid() for _ in range(self.workers)] if os.geteuid() == 0 else []
        for k in range(self.workers):
            self._slots.put(self._leases[k][0] if self._leases else None)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="sandbox")
        self._memo: dict[Job, Execution] = {}
        self.memo = memo
        self.executions = 0
        self.seconds = 0.0  # summed over executions (not wall time when they run in parallel)
        self.waited_seconds = 0.0  # wall time spent in run_many on new jobs, summed over callers (threads overlap)

    def run(self, job: Job | str) -> Execution:
        return self.run_many([job])[0]

    def run_many(self, jobs: Sequence[Job | str | None]) -> list[Execution | None]:
        """Every job, in parallel, in order; a None (a reply with no program) gives None."""
        jobs = [Job(j) if isinstance(j, str) else j for j in jobs]
        known = {j: self._memo[j] for j in jobs if j in self._memo}
        new = list(dict.fromkeys(j for j in jobs if j is not None and j not in known))
        started = time.perf_counter()
        for job, result in zip(new, self._pool.map(self._run_in_slot, new)):
            self.executions += 1
            self.seconds += result.seconds
            known[job] = result
            if len(self._memo) >= self.memo:
                self._memo.clear()
            self._memo[job] = result
        if new:
            self.waited_seconds += time.perf_counter() - started
        return [known[j] if j is not None else None for j in jobs]

    @property
    def uids(self) -> list[int]:
        """The user ids its slots run as (none where it does not run as root)."""
        return [uid for uid, _ in self._leases]

    def check(self) -> dict:
        """What isolation holds on this machine (an empty program's ``isolation``)."""
        return self.run(Job("pass")).isolation

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for _, lease in self._leases:
            lease.close()
        self._leases = []

    def _run_in_slot(self, job: Job) -> Execution:
        uid = self._slots.get()
        try:
            return execute(job, self.limits, uid=uid)
        finally:
            self._slots.put(uid)


def _lease_uid() -> tuple[int, socket.socket]:
    """A user id of the range that no other sandbox holds: held by binding an abstract Unix socket named
    after it, which the kernel frees when its holder closes it or dies (no file is left behind)."""
    for uid in range(SANDBOX_UID_BASE, SANDBOX_UID_BASE + SANDBOX_UIDS):
        lease = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            lease.bind(f"\0testtime-sandbox-uid-{uid}")
            return uid, lease
        except OSError:
            lease.close()
    raise RuntimeError(f"every sandbox user id from {SANDBOX_UID_BASE} is in use")


_SHARED: list[Sandbox] = []
_SHARED_LOCK = threading.Lock()


def shared_sandbox_if_made() -> Sandbox | None:
    """The process's shared sandbox where something has used it (for reporting what it cost)."""
    with _SHARED_LOCK:
        return _SHARED[0] if _SHARED else None


def shared_sandbox() -> Sandbox:
    """The process's one sandbox with the default limits, made on first use."""
    with _SHARED_LOCK:
        if not _SHARED:
            _SHARED.append(Sandbox())
        return _SHARED[0]


def execute(job: Job, limits: Limits, uid: int | None = None) -> Execution:
    """One job in a fresh interpreter and working directory; the directory and every process go after."""
    workdir = tempfile.mkdtemp(prefix=f"testtime-sandbox-{os.getpid()}-")
    nonce = secrets.token_hex(16)
    start = time.perf_counter()
    try:
        if uid is not None:
            os.chown(workdir, uid, uid)
        proc = subprocess.Popen(
            [sys.executable, "-s", "-P", str(CHILD)], cwd=workdir, env=_environment(workdir),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.stdin.write(json.dumps(_job_settings(job, limits, uid, nonce)).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        verdict_bytes, timed_out = _read_verdict(proc, start + limits.wall_seconds, nonce)
        returncode = _kill_everything(proc, uid)
        return _judge(verdict_bytes, nonce, timed_out, returncode, Path(workdir), time.perf_counter() - start)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _environment(workdir: str) -> dict:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _job_settings(job: Job, limits: Limits, uid: int | None, nonce: str) -> dict:
    return {"program": job.program, "calls": list(job.calls), "nonce": nonce, "uid": uid,
            "cpu_seconds": int(limits.cpu_seconds), "memory_bytes": int(limits.memory_bytes),
            "processes": int(limits.processes), "file_bytes": int(limits.file_bytes),
            "tmp_bytes": int(limits.tmp_bytes), "output_chars": int(limits.output_chars)}


def _read_verdict(proc: subprocess.Popen, deadline: float, nonce: str) -> tuple[bytes, bool]:
    """What the child writes to its verdict pipe, until it closes or the deadline; (bytes, timed out)."""
    fd, received, tag = proc.stdout.fileno(), bytearray(), nonce.encode()
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return bytes(received), True
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        data = os.read(fd, 65536)
        if not data:  # closed: the child (and everything it started) has let go of the pipe
            return bytes(received), False
        received += data
        if len(received) > _VERDICT_BYTES or (b"\n" in data and tag in received):
            return bytes(received), False  # the verdict is in (a process it forked may still hold the pipe)


def _kill_everything(proc: subprocess.Popen, uid: int | None) -> int:
    """The process group, then (as root) every process still running under the execution's user id;
    the child's exit code."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.stdout.close()
    returncode = proc.wait()
    if uid is not None:
        # A fork loop can make new ones while we kill: repeat until none is alive, then give init a moment
        # to reap the dead, which still count against the next execution's process limit in this slot.
        deadline = time.perf_counter() + 3.0
        while time.perf_counter() < deadline:
            alive = live_processes(uid, zombies=True)
            if not alive:
                break
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.005)
    return returncode


def live_processes(uid: int, zombies: bool = False) -> list[int]:
    """Processes of a user id that are not yet dead (a zombie waits only to be reaped by init), or
    with ``zombies`` those too."""
    alive = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
            if zombies or state not in (b"Z", b"X"):
                alive.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            continue
    return alive


def _judge(verdict_bytes: bytes, nonce: str, timed_out: bool, returncode: int, workdir: Path,
           seconds: float) -> Execution:
    tails = {"stdout": _tail(workdir / "stdout.txt"), "stderr": _tail(workdir / "stderr.txt")}
    verdict = _parse_verdict(verdict_bytes, nonce)
    if verdict is not None:
        outputs = tuple(Output(value=o.get("value"), raised=o.get("raised"), message=o.get("message") or "")
                        for o in verdict.get("outputs", ()))
        status = verdict.get("status") if verdict.get("status") in STATUSES else "error"
        return Execution(status, verdict.get("error"), outputs=outputs, seconds=seconds,
                         isolation=verdict.get("isolation") or {}, **tails)
    if timed_out:
        return Execution("timeout", "ran past its wall-clock limit", seconds=seconds, **tails)
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else str(-returncode)
        status = "timeout" if name == "SIGXCPU" else "error"
        return Execution(status, f"killed by signal {name}", seconds=seconds, **tails)
    return Execution("error", f"exited with code {returncode} before its verdict", seconds=seconds, **tails)


def _parse_verdict(data: bytes, nonce: str) -> dict | None:
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            verdict = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(verdict, dict) and verdict.get("nonce") == nonce:
            return verdict
    return None


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - _TAIL_CHARS))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
