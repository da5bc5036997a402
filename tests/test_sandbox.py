"""The sandbox contains what model-written code does wrong, and the caller goes on (issue 35, item 1).

Every case runs a real program in a real child interpreter. After each, nothing of it is left:
no process under its user id, no working directory, no file outside."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from testtime.sandbox import SANDBOX_UID_BASE, SANDBOX_UIDS, Execution, Job, Limits, Sandbox, execute, live_processes

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the sandbox relies on POSIX limits")
TIGHT = Limits(wall_seconds=6, cpu_seconds=3, memory_bytes=512 << 20, processes=8, file_bytes=1 << 20)


@pytest.fixture(scope="module")
def sandbox():
    box = Sandbox(TIGHT, workers=2)
    yield box
    box.close()


def leftovers(sandbox: Sandbox) -> dict:
    """What an execution could leave: processes of the sandbox's user ids, working directories."""
    import tempfile

    processes = [pid for uid in sandbox.uids for pid in live_processes(uid)]

    dirs = sorted(p.name for p in Path(tempfile.gettempdir()).glob(f"testtime-sandbox-{os.getpid()}-*"))
    return {"processes": processes, "dirs": dirs}


def run_clean(sandbox: Sandbox, program: str) -> Execution:
    before = leftovers(sandbox)
    result = sandbox.run(Job(program))
    assert leftovers(sandbox) == before, "an execution left a process or its working directory behind"
    return result


def test_a_program_passes_and_its_calls_come_back_as_values(sandbox):
    result = sandbox.run(Job("def add(a, b):\n    return a + b\n", calls=("add(2, 3)", "add('a', 'b')", "add(1)")))
    assert result.status == "passed" and result.passed
    assert [o.value for o in result.outputs[:2]] == ["5", "'ab'"] and result.outputs[2].raised == "TypeError"


def test_an_assertion_fails_and_the_stderr_tail_comes_back(sandbox):
    result = run_clean(sandbox, "import sys\nprint('looking', file=sys.stderr)\nassert 1 == 2, 'wrong'\n")
    assert result.status == "failed" and "AssertionError: wrong" in result.error and "looking" in result.stderr


def test_an_infinite_loop_times_out(sandbox):
    result = run_clean(sandbox, "while True:\n    pass\n")
    assert result.status == "timeout"


def test_sleeping_past_the_wall_clock_times_out_and_the_group_is_killed(sandbox):
    result = run_clean(sandbox, "import subprocess, time\nsubprocess.Popen(['sleep', '60'])\ntime.sleep(60)\n")
    assert result.status == "timeout" and result.seconds < TIGHT.wall_seconds + 5


def test_a_memory_bomb_is_a_memory_result(sandbox):
    result = run_clean(sandbox, "x = bytearray(4 << 30)\n")
    assert result.status == "memory"
    result = run_clean(sandbox, "x = []\nwhile True:\n    x.append(' ' * (1 << 20))\n")
    assert result.status == "memory"


def test_a_fork_bomb_is_contained(sandbox):
    result = run_clean(sandbox, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n")
    assert result.status in ("timeout", "failed", "error")
    assert sandbox.run(Job("x = 1")).passed  # and the next execution runs as usual


def test_a_forked_process_that_leaves_the_group_is_killed_too(sandbox):
    program = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
    result = run_clean(sandbox, program)  # run_clean: no process of the sandbox's users is left
    assert result.status == "passed"


@pytest.mark.skipif(os.geteuid() != 0, reason="a user id of its own needs root")
def test_writing_and_deleting_outside_its_folder_fail(sandbox):
    import tempfile

    # outside /tmp, which the program sees as a private empty tmpfs: our own files, where it could see them
    runs = Path(__file__).resolve().parents[1] / "runs"  # git ignores it; a fresh clone has none yet
    runs.mkdir(exist_ok=True)
    tmp_path = Path(tempfile.mkdtemp(dir=runs))
    kept = tmp_path / "kept.txt"
    kept.write_text("ours")
    write = run_clean(sandbox, f"open({str(tmp_path / 'new.txt')!r}, 'w').write('x')\n")
    delete = run_clean(sandbox, f"import os\nos.remove({str(kept)!r})\n")
    assert write.status == delete.status == "failed" and "PermissionError" in write.error + delete.error
    assert kept.read_text() == "ours" and not (tmp_path / "new.txt").exists()
    import shutil

    shutil.rmtree(tmp_path)


def test_its_own_folder_and_tmp_are_writable_and_vanish(sandbox):
    import tempfile

    marker = f"sandbox-marker-{os.getpid()}"
    result = run_clean(sandbox, f"open('here.txt', 'w').write('x')\nopen('/tmp/{marker}', 'w').write('x')\n")
    assert result.passed and not (Path(tempfile.gettempdir()) / marker).exists()


def test_an_environment_secret_is_not_there(sandbox, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    monkeypatch.setenv("TESTTIME_API_KEY", "tt-secret-value")
    result = sandbox.run(Job("import os", calls=("sorted(os.environ)", "os.environ.get('OPENAI_API_KEY')")))
    assert "OPENAI_API_KEY" not in result.outputs[0].value and "TESTTIME" not in result.outputs[0].value
    assert result.outputs[1].value == "None"
    reading = sandbox.run(Job("import os", calls=("open(f'/proc/{os.getppid()}/environ').read()",)))
    assert reading.outputs[0].raised is not None or "secret" not in (reading.outputs[0].value or "")


def test_a_socket_reaches_nothing(sandbox):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    connected, finished = [], threading.Event()

    def accept():
        while not finished.is_set():
            try:
                connected.append(server.accept())
            except (socket.timeout, OSError):
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    result = run_clean(sandbox, f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)\n")
    finished.set()
    thread.join()
    server.close()
    if sandbox.check().get("network"):
        assert result.status == "failed" and not connected
    else:
        pytest.skip("this kernel refuses network namespaces: the sandbox says so in Execution.isolation")


def test_100_mb_of_stdout_is_cut_not_kept(sandbox):
    result = run_clean(sandbox, "import sys\nfor _ in range(100):\n    sys.stdout.write('x' * (1 << 20))\n")
    assert result.status == "error" and "over" in result.error and len(result.stdout) <= 4000


def test_killing_the_parent_fails_and_we_go_on(sandbox):
    result = run_clean(sandbox, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n")
    if os.geteuid() == 0:
        assert result.status == "failed" and "PermissionError" in result.error
    assert sandbox.run(Job("x = 1")).passed  # we are still here


def test_exiting_early_is_never_a_pass(sandbox):
    assert run_clean(sandbox, "import sys\nsys.exit(0)\nassert False\n").status == "error"
    assert run_clean(sandbox, "import os\nos._exit(0)\nassert False\n").status == "error"


def test_printing_a_fake_verdict_is_no_pass(sandbox):
    fake = '{"nonce": "0", "status": "passed", "outputs": []}'
    result = run_clean(sandbox, f"import os\nos.write(1, b'{fake}\\n')\nassert False\n")
    assert result.status == "failed"


def test_a_segfault_through_ctypes_is_an_error(sandbox):
    result = run_clean(sandbox, "import ctypes\nctypes.string_at(0)\n")
    assert result.status == "error" and "SIGSEGV" in result.error


def test_a_batch_runs_in_parallel_and_keeps_its_order(sandbox):
    results = sandbox.run_many([Job(f"x = {k}", calls=("x",)) if k != 3 else None for k in range(8)])
    assert [r.outputs[0].value if r else None for r in results] == ["0", "1", "2", None, "4", "5", "6", "7"]


def test_a_job_already_run_is_not_run_again(sandbox):
    before = sandbox.executions
    sandbox.run_many([Job("y = 7", calls=("y",))] * 3)
    sandbox.run(Job("y = 7", calls=("y",)))
    assert sandbox.executions - before == 1


def test_the_wait_on_new_jobs_is_counted_and_a_memoized_one_adds_none(sandbox):
    before = sandbox.waited_seconds
    sandbox.run(Job("z = 8"))
    waited = sandbox.waited_seconds
    sandbox.run_many([Job("z = 8"), None])
    assert waited > before and sandbox.waited_seconds == waited


@pytest.mark.skipif(os.geteuid() != 0, reason="user ids of its own need root")
def test_two_sandboxes_never_share_a_user_id(sandbox):
    other = Sandbox(TIGHT, workers=2)
    try:
        assert not set(other.uids) & set(sandbox.uids)
        assert all(SANDBOX_UID_BASE <= uid < SANDBOX_UID_BASE + SANDBOX_UIDS for uid in other.uids)
    finally:
        other.close()


def test_limits_are_checked_where_they_are_made():
    with pytest.raises(ValueError, match="wall_seconds"):
        Limits(wall_seconds=0)
    with pytest.raises(ValueError, match="processes"):
        Limits(processes=True)


def test_a_single_execution_runs_without_a_pool():
    assert execute(Job("z = 2", calls=("z * 2",)), TIGHT).outputs[0].value == "4"
