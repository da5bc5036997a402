"""Shared fixtures. The real embedded model runs through in-process vLLM; its
engine starts once per session for the in-process tests (about 30-50 s here)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for fakes.py

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
# The fast embedded model: tests about structure run on it; the default model (Qwen2.5-Coder-0.5B)
# only where the default itself is the point (test_default_model.py).
TEST_MODEL = "smollm2-135m-instruct"


def with_test_model(args) -> list[str]:
    """A `testtime` command line on the test model, unless it names a model itself."""
    args = [str(a) for a in args]
    takes_model = args[:1] and args[0] in ("run", "sweep", "demo", "serve", "train-prm")
    return args if "--model" in args or not takes_model else [*args, "--model", TEST_MODEL]

os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
# 2 GiB of KV cache per engine (tests generate little): the session's engine, a sweep's and two Ray
# workers' fit in the machine's memory together.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")


def kill_tree(pid: int) -> None:
    """Kill a process and everything it started (a failed test leaves no engine behind)."""
    import psutil

    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    for process in [*parent.children(recursive=True), parent]:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def outlived(children, timeout: float = 20) -> list:
    """The processes of ``children`` still running ``timeout`` seconds after their parent ended
    (a helper such as multiprocessing's resource tracker takes a moment to notice)."""
    import psutil

    def running(process) -> bool:
        try:
            return process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    _, alive = psutil.wait_procs(children, timeout=timeout)
    return [p for p in alive if running(p)]


def free_port() -> int:
    """A free TCP port on loopback, for a real server in a test."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def model_dir() -> str:
    from testtime.models import resolve_model

    return resolve_model(TEST_MODEL)


@pytest.fixture(scope="session")
def engine(model_dir):
    """One in-process engine for the whole session, in the default dtype ("auto")."""
    from testtime.generators.vllm_engine import VLLMGenerator

    gen = VLLMGenerator(model_dir, max_model_len=2048, block_size=32)
    yield gen
    gen.close()


@pytest.fixture(scope="session")
def gsm8k_tasks():
    from testtime.tasks import load_dataset

    return load_dataset("gsm8k", data_root=SHARED_DATA)


class Borrowed:
    """The session's engine lent to a command run in process: the command's `with` does not close it."""

    def __init__(self, engine):
        self.engine = engine

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def generate(self, requests, ledgers=None, stop=None, watch=None):
        return self.engine.generate(requests, ledgers, stop, watch)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


@contextlib.contextmanager
def commands_on(engine):
    """`testtime` commands run in process (typer's CliRunner) on the session's engine, not on one of their own."""
    with pytest.MonkeyPatch.context() as patch, specs_on(engine):
        for module in ("testtime.cli.run", "testtime.cli.learn"):
            patch.setattr(f"{module}.open_generator", lambda spec: Borrowed(engine))
        yield


@contextlib.contextmanager
def specs_on(engine):
    """Every ``GeneratorSpec.open()`` of the session engine's own model and dtype (the Python API's
    ``tt.Solver``, an LLM judge's second engine) lends the session's engine; any other spec opens its own."""
    from testtime.generators import GeneratorSpec
    from testtime.generators.vllm_engine import resolve_dtype

    real_open = GeneratorSpec.open

    def open_lent(spec):
        same = (spec.backend == "vllm" and spec.model == TEST_MODEL
                and resolve_dtype(spec.dtype) == resolve_dtype("auto"))
        return Borrowed(engine) if same else real_open(spec)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(GeneratorSpec, "open", open_lent)
        yield


@pytest.fixture
def on_engine(engine):
    """Invoke a `testtime` command in process on the session's engine: ``on_engine("run", "--limit", 2)``."""
    from typer.testing import CliRunner

    from testtime.cli import app

    def invoke(*args):
        with commands_on(engine):
            return CliRunner().invoke(app, with_test_model(args))

    return invoke


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, engine) -> Path:
    """`testtime demo`, small, on the real embedded model (in process): its run directory with the report."""
    from typer.testing import CliRunner

    from testtime.cli import app

    out = tmp_path_factory.mktemp("demo") / "run"
    with commands_on(engine):
        result = CliRunner().invoke(app, with_test_model([
            "demo", "--dataset", "sample", "--limit", "4", "--max-budget", "4", "--search-budget", "2", "--strategy", "majority",
            "--strategy", "best_of_n", "--strategy", "adaptive_consistency", "--strategy", "beam_search",
            "--max-tokens", "96", "--out", str(out)]))
    assert result.exit_code == 0, result.output[-3000:]
    # It counts what was asked for, not the units stored (the three parallel ones share one pool).
    assert "4 strategy runs (the parallel ones estimated from one shared pool per seed) on 4 questions" in (
        " ".join(result.output.split()))
    return out


# A test that uses one of these starts the real engine (directly, or through a `testtime` subprocess):
# it is marked `engine` whatever its module says, so that `-m "not engine"` never starts one.
ENGINE_FIXTURES = {"engine", "demo_run", "on_engine"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.engine)
