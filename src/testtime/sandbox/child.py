"""The sandbox's child: runs in a fresh interpreter (``python -s -P child.py``), never imported.

It reads one job (JSON) from stdin, confines itself, runs the program, and writes one verdict
line to the pipe it was given as stdout; the program's own stdout and stderr go to capped files
in its working directory. The order matters: namespaces while still privileged, then the user
switch, then the limits, and only then the program. It imports nothing from testtime.
"""

import ctypes
import json
import os
import resource
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 1 << 18
EFBIG = 27


def isolate(job: dict) -> dict:
    """No network and a private, empty /tmp where the kernel allows it; what held is reported."""
    held = {"network": False, "private_tmp": False, "user": False}
    switch = os.geteuid() == 0 and job.get("uid") is not None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        libc = None
    flags = CLONE_NEWNET | CLONE_NEWNS
    if os.geteuid() != 0:
        flags |= CLONE_NEWUSER  # an unprivileged user may make namespaces inside a user namespace of its own
    if libc is not None and libc.unshare(flags) == 0:
        held["network"] = True  # a new network namespace holds only a loopback device, down
        if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0:
            held["private_tmp"] = all(
                libc.mount(b"tmpfs", path.encode(), b"tmpfs", 0, f"size={job['tmp_bytes']}".encode()) == 0
                for path in ("/tmp", "/var/tmp", "/dev/shm") if os.path.isdir(path))
            if switch:
                expose(libc, [p for p in sys.path if os.path.isdir(p)])
    if switch:  # also where namespaces were refused: never run the program as root
        os.setgroups([])
        os.setgid(job["uid"])
        os.setuid(job["uid"])  # a user of its own: nothing of root's to write, delete, read or signal
        held["user"] = True
    return held


def expose(libc, paths: list) -> None:
    """The interpreter's own folders stay readable to the program's user where a private ancestor
    (root's home, mode 700) hides them: that ancestor is covered by an empty tmpfs (hiding whatever
    else it holds), and each folder is bound back in at its own path."""
    def hidden_by(path: str):
        parts = os.path.abspath(path).split(os.sep)
        for k in range(2, len(parts) + 1):
            ancestor = os.sep.join(parts[:k])
            if not os.stat(ancestor).st_mode & 0o001:
                return ancestor
        return None

    wanted = [(path, hidden_by(path)) for path in paths]
    wanted = [(path, os.open(path, os.O_PATH), ancestor) for path, ancestor in wanted if ancestor]
    for ancestor in dict.fromkeys(a for _, _, a in wanted):
        libc.mount(b"tmpfs", ancestor.encode(), b"tmpfs", 0, b"size=1m,mode=755")
    for path, fd, _ in wanted:
        os.makedirs(path, exist_ok=True)
        libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, MS_BIND | MS_REC, None)
        os.close(fd)


def limit(job: dict) -> None:
    cpu = job["cpu_seconds"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU, then SIGKILL
    resource.setrlimit(resource.RLIMIT_AS, (job["memory_bytes"], job["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (job["file_bytes"], job["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_NPROC, (job["processes"], job["processes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def run(job: dict, namespace: dict) -> dict:
    """The program, then each call (an expression) in its namespace: their outputs as repr()."""
    verdict = {"status": "passed", "error": None, "outputs": []}
    try:
        exec(compile(job["program"], "<program>", "exec"), namespace)
    except MemoryError:
        return {**verdict, "status": "memory", "error": "MemoryError"}
    except SystemExit as exc:
        return {**verdict, "status": "error", "error": f"the program exited (SystemExit {exc.code!r})"}
    except OSError as exc:
        if exc.errno == EFBIG:
            return {**verdict, "status": "error", "error": f"output or a file over {job['file_bytes']} bytes"}
        return {**verdict, "status": "failed", "error": describe(exc)}
    except SyntaxError as exc:
        return {**verdict, "status": "error", "error": describe(exc)}
    except BaseException as exc:  # an assertion of a test, or any other failure of the program
        return {**verdict, "status": "failed", "error": describe(exc)}
    for call in job.get("calls", ()):
        try:
            value = eval(compile(call, "<call>", "eval"), namespace)
            verdict["outputs"].append({"value": repr(value)[: job["output_chars"]]})
        except MemoryError:
            verdict["outputs"].append({"raised": "MemoryError"})
        except BaseException as exc:  # a call that raises is an output too (behaviour, not a verdict)
            verdict["outputs"].append({"raised": type(exc).__name__, "message": str(exc)[:300]})
    return verdict


def main() -> None:
    job = json.loads(sys.stdin.read())
    verdict_fd = os.dup(1)  # the parent's pipe; the program's prints go to a capped file instead
    os.set_inheritable(verdict_fd, False)
    for fd, name in ((1, "stdout.txt"), (2, "stderr.txt")):
        os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    os.close(0)
    held = isolate(job)
    limit(job)
    nonce = job.pop("nonce")
    verdict = run(job, {"__name__": "__main__", "__builtins__": __builtins__})
    try:
        sys.stdout.flush()
    except OSError:  # its prints ran past the file-size limit: the verdict still goes out
        pass
    line = json.dumps({"nonce": nonce, "isolation": held, **verdict}) + "\n"
    os.write(verdict_fd, line.encode())
    os._exit(0)  # no atexit handler or finalizer of the program runs after its verdict


if __name__ == "__main__":
    main()
