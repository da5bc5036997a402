"""The OpenAI-compatible backend against a real vLLM server of the embedded model on loopback."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import free_port

from testtime.generators import GenerationRequest, Prompt, SamplingParams
from testtime.generators.openai_http import OpenAIGenerator
from testtime.ledger import Ledger

pytestmark = pytest.mark.server
SERVED_NAME = "smollm2"
PROMPT = Prompt.chat("Solve step by step. Finish with 'The answer is: N'.", "What is 6 times 7?")


@pytest.fixture(scope="module")
def server(model_dir):
    port = free_port()
    env = dict(os.environ, VLLM_CPU_NUM_OF_RESERVED_CPU="0", VLLM_CPU_KVCACHE_SPACE="2")
    from testtime.generators import REPRODUCIBLE_DTYPE

    # float32: a retried request is batched with other requests than the first try was, and only in
    # float32 is a seeded sample the same whatever its batch (the fault-proxy test relies on it).
    # `vllm serve` refuses to start from the vllm-cpu package; the module entry point serves the same API.
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
         "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port),
         "--dtype", REPRODUCIBLE_DTYPE, "--max-model-len", "2048", "--enable-prefix-caching",
         "--enforce-eager", "--block-size", "32", "--enable-prompt-tokens-details"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 240
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vLLM server exited: {proc.stderr.read()[-3000:]}")
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            break
        except OSError:
            time.sleep(2)
    else:
        proc.kill()
        pytest.fail("vLLM server did not become healthy in 240 s")
    yield url + "/v1"
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def client(server):
    gen = OpenAIGenerator(server, SERVED_NAME, concurrency=8, parameter_count=134_515_008)
    yield gen
    gen.close()


def test_n_completions_and_usage(client):
    ledgers = [Ledger(), Ledger()]
    requests = [GenerationRequest(PROMPT, n=3, params=SamplingParams(max_tokens=40, seed=1)),
                GenerationRequest(PROMPT, n=1, params=SamplingParams(max_tokens=40, seed=2))]
    results = client.generate(requests, ledgers)
    assert [len(r.completions) for r in results] == [3, 1]
    for r, ledger in zip(results, ledgers):
        assert r.prompt_tokens > 10
        assert 0 < r.completion_tokens <= 40 * len(r.completions)
        assert ledger.completion_tokens == r.completion_tokens and ledger.policy_flops > 0


def test_continuation_of_a_partial_answer(client):
    params = SamplingParams(max_tokens=30, temperature=0.0, stop=("\n\n",))
    [fresh] = client.generate([GenerationRequest(PROMPT, params=params)])
    [cont] = client.generate([GenerationRequest(PROMPT.extend("6 times 7 equals"), params=params)])
    # the partial answer is part of the prompt, not repeated in the completion
    assert cont.prompt_tokens > fresh.prompt_tokens
    assert not cont.completions[0].text.startswith("6 times 7 equals")


def test_prefix_cache_hits_are_reported(client):
    params = SamplingParams(max_tokens=4, seed=5)
    long_prompt = Prompt.chat(None, "Here is a long list of facts. " * 30 + "What is 2 + 2?")
    client.generate([GenerationRequest(long_prompt, params=params)])
    [again] = client.generate([GenerationRequest(long_prompt, params=params)])
    assert again.cached_prompt_tokens >= 32


def test_top_logprobs_and_the_llm_judge_through_the_server(client):
    from testtime.verifiers import Solution
    from testtime.verifiers.judge import LLMJudge

    params = SamplingParams(max_tokens=8, temperature=0.0, logprobs=5)
    [plain, asked] = client.generate([GenerationRequest(PROMPT, params=SamplingParams(max_tokens=8, temperature=0.0)),
                                      GenerationRequest(PROMPT, params=params)])
    assert plain.completions[0].top_logprobs is None  # not asked for, not sent for
    [c] = asked.completions
    assert c.text == plain.completions[0].text
    assert len(c.top_logprobs) == c.token_count == 8
    assert all(1 <= len(top) <= 5 and all(lp <= 0 for lp in top.values()) for top in c.top_logprobs)
    assert c.text.startswith(max(c.top_logprobs[0], key=c.top_logprobs[0].get))  # greedy: the most likely

    judge = LLMJudge(client)
    scores = judge.score([Solution("What is 6 times 7?", "6 * 7 = 42. The answer is: 42"),
                          Solution("What is 6 times 7?", "6 * 7 = 48. The answer is: 48")])
    assert all(0 < s < 1 for s in scores), scores


def test_streamed_samples_equal_the_batch_forms(client, server):
    # Streamed, each sample is its own request seeded seed + index, as vLLM seeds the samples of one
    # request with n: in float32 the texts are the same, and so are the top log-probabilities.
    requests = [GenerationRequest(PROMPT, n=3, params=SamplingParams(max_tokens=24, seed=4, logprobs=3)),
                GenerationRequest(PROMPT.extend("6 times 7"), params=SamplingParams(max_tokens=12, seed=8))]
    with OpenAIGenerator(server, SERVED_NAME, concurrency=4, stream=False) as batch:
        expected = batch.generate(requests)
    assert client.streams
    ledgers = [Ledger(), Ledger()]
    streamed = client.generate(requests, ledgers)
    for got, want, ledger in zip(streamed, expected, ledgers):
        assert [c.text for c in got.completions] == [c.text for c in want.completions]
        # One response's total is exact; the batch form shares it among its choices by text length, where
        # each streamed sample counts its own.
        assert got.completion_tokens == want.completion_tokens
        assert all(c.token_count == len(c.top_logprobs or ()) or c.top_logprobs is None for c in got.completions)
        assert [c.finish_reason for c in got.completions] == [c.finish_reason for c in want.completions]
        assert got.prompt_tokens == want.prompt_tokens and ledger.completion_tokens == got.completion_tokens
    for got, want in zip(streamed[0].completions, expected[0].completions):
        assert [sorted(t) for t in got.top_logprobs] == [sorted(t) for t in want.top_logprobs]


def _running(server: str) -> float:
    """The server's own count of sequences it is computing (vLLM's Prometheus gauge)."""
    text = urllib.request.urlopen(server.removesuffix("/v1") + "/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("vllm:num_requests_running"))


def test_an_aborted_sample_stops_costing_the_server_within_a_second(client, server):
    counting = GenerationRequest(Prompt.chat(None, "Count from 1 to 300, one number a line."),
                                 params=SamplingParams(max_tokens=400, seed=3))

    def settled(stop_at: float) -> float:  # seconds until the server runs nothing, from stop_at
        while _running(server) > 0 and time.monotonic() - stop_at < 5:
            time.sleep(0.02)
        return time.monotonic() - stop_at

    # A watcher stops its sample at the fifth token, on the reader's thread.
    def watch(stream, index):
        if stream.samples[index].token_count >= 5:
            stream.abort(index)

    [watched] = client.submit_all([counting], [watch])
    assert watched.wait(60)
    [c] = watched.result().completions
    assert c.finish_reason == "abort" and 5 <= c.token_count <= 8  # charged what it wrote
    assert settled(time.monotonic()) < 1.0 and _running(server) == 0
    # From outside: the gauge counts the live sample, then nothing within a second of the abort.
    [plain] = client.submit_all([counting])
    while plain.samples[0].token_count < 5:
        time.sleep(0.01)
    assert _running(server) == 1
    stopped = time.monotonic()
    plain.abort()
    assert settled(stopped) < 1.0 and _running(server) == 0
    assert plain.wait(5) and plain.result().completions[0].finish_reason == "abort"


class _DropN(BaseHTTPRequestHandler):
    """A real proxy to the real server that strips `n`, like servers that ignore it."""

    upstream = ""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body.pop("n", None)
        req = urllib.request.Request(self.upstream + self.path.removeprefix("/v1"), data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            data = resp.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_server_that_ignores_n_gets_follow_up_requests(server):
    handler = type("Handler", (_DropN,), {"upstream": server})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        # The batch form (stream=False) asks for n in one request; streamed, every sample is its own.
        gen = OpenAIGenerator(f"http://127.0.0.1:{proxy.server_port}/v1", SERVED_NAME, concurrency=2, stream=False)
        [result] = gen.generate([GenerationRequest(PROMPT, n=3, params=SamplingParams(max_tokens=16, seed=9))])
        assert len(result.completions) == 3
        # three HTTP requests, each paying the prompt
        single = gen.generate([GenerationRequest(PROMPT, n=1, params=SamplingParams(max_tokens=16, seed=9))])[0]
        assert result.prompt_tokens == 3 * single.prompt_tokens
        gen.close()
    finally:
        proxy.shutdown()


def test_beam_search_through_the_server(client):
    from testtime.strategies import Context, Strategy
    from testtime.tasks import Task
    from testtime.verifiers.arithmetic import ArithmeticVerifier

    ctx = Context(generator=client, verifier=ArithmeticVerifier(), sampling=SamplingParams(max_tokens=96))
    tasks = [Task("a", "What is 6 times 7?", "42"), Task("b", "What is 12 plus 30?", "42")]
    results = Strategy.create("beam_search", budget=4, width=2, delimiter="\n").solve(tasks, ctx)
    for result in results:
        nodes = result.details["tree"]["nodes"]
        # the server kept the stop string, so open steps end with it and the search went deeper than one step
        assert any(not n["terminal"] and n["text"].endswith("\n") for n in nodes[1:])
        assert max(n["depth"] for n in nodes) >= 2
        assert result.ledger.completion_tokens == sum(n["tokens"] for n in nodes)


def test_cli_run_through_the_server(server, tmp_path):
    out = tmp_path / "run"
    from conftest import SHARED_DATA

    proc = subprocess.run(
        [sys.executable, "-m", "testtime", "run", "--backend", "openai", "--base-url", server,
         "--model", SERVED_NAME, "--dataset", "gsm8k", "--data-root", str(SHARED_DATA), "--limit", "3",
         "--strategy", "majority", "--n", "2", "--max-tokens", "128", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(len(json.loads(l)["candidates"]) == 2 for l in lines)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generator"] == "openai" and summary["results"][0]["questions"] == 3


def _texts(store) -> list[list[str]]:
    return [[c["text"] for c in line["candidates"]] for key, _ in store.units() for line in store.lines(key)]


def test_injected_faults_are_retried_and_change_no_result(server, gsm8k_tasks, tmp_path):
    from faultproxy import FaultProxy

    from testtime.retry import RetryPolicy
    from testtime.runner import Plan, Unit, execute
    from testtime.store import RunStore
    from testtime.strategies import Context, Strategy

    plan = Plan([Unit(Strategy.create("majority", budget=2), 0)], gsm8k_tasks[:24], chunk_size=8)
    sampling = SamplingParams(max_tokens=16)
    direct = RunStore.start(tmp_path / "direct", {})
    with OpenAIGenerator(server, SERVED_NAME, concurrency=8) as gen:
        execute(plan, Context(generator=gen, sampling=sampling), direct)

    policy = RetryPolicy(timeout=10, attempts=10, backoff=0.05, max_backoff=0.5, deadline=300)
    with FaultProxy(server.removesuffix("/v1"), fault_rate=0.2, delay=12, seed=3) as proxy:
        faulty = RunStore.start(tmp_path / "faulty", {})
        with OpenAIGenerator(proxy.url + "/v1", SERVED_NAME, concurrency=8, retry=policy) as gen:
            execute(plan, Context(generator=gen, sampling=sampling), faulty)
    # Every kind of fault happened, and every request still got its seeded answer.
    assert all(proxy.counts[f] >= 1 for f in ("error", "delay", "broken_json")), proxy.counts
    assert faulty.count() == 24
    assert _texts(faulty) == _texts(direct)


def test_a_run_whose_upstream_stops_fails_cleanly_keeps_its_work_and_resumes(server, tmp_path):
    from conftest import SHARED_DATA
    from faultproxy import FaultProxy

    from testtime.store import RunStore

    out = tmp_path / "run"
    with FaultProxy(server.removesuffix("/v1"), fault_rate=0.0) as proxy:
        args = [sys.executable, "-m", "testtime", "run", "--backend", "openai", "--base-url", proxy.url + "/v1",
                "--model", SERVED_NAME, "--dataset", "gsm8k", "--data-root", str(SHARED_DATA), "--limit", "6",
                "--n", "2", "--max-tokens", "16", "--chunk-size", "2", "--request-timeout", "10",
                "--retries", "3", "--out", str(out)]
        proxy.down_after = 8  # two chunks of two questions (two samples each, a request each) pass, then it is gone
        started = time.monotonic()
        failed = subprocess.run(args, capture_output=True, text=True, timeout=300)
        elapsed = time.monotonic() - started
        assert failed.returncode != 0
        message = " ".join(failed.stderr.split())
        assert "failed 3 times" in message and "502" in message, message[-2000:]
        assert "4 finished results are kept" in message and "--resume" in message
        assert elapsed < 120  # bounded: three tries with sub-second backoff, not a hang
        assert RunStore(out).count() == 4 and not (out / "results.jsonl").exists()

        proxy.down_after, proxy.upstream_down = None, False
        resumed = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "4 of 6 results already stored, 2 to go" in " ".join(resumed.stderr.split())
    lines = [json.loads(l) for l in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(l["id"] for l in lines) == sorted({l["id"] for l in lines}) and len(lines) == 6


class _OddChunks(BaseHTTPRequestHandler):
    """A real server on loopback whose stream sends a chunk with choices that are not a list."""

    tries = 0

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).tries += 1
        chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": {"0": "?"}}
        body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_malformed_stream_is_retried_then_named():
    from testtime.retry import RetryPolicy, UpstreamError

    odd = ThreadingHTTPServer(("127.0.0.1", 0), _OddChunks)
    threading.Thread(target=odd.serve_forever, daemon=True).start()
    try:
        with OpenAIGenerator(f"http://127.0.0.1:{odd.server_port}/v1", "m",
                             retry=RetryPolicy(attempts=2, backoff=0.01, timeout=10)) as gen:
            with pytest.raises(UpstreamError, match="failed 2 times.*choices are dict, not a list"):
                gen.generate([GenerationRequest(PROMPT, params=SamplingParams(max_tokens=4))])
        assert _OddChunks.tries == 2
    finally:
        odd.shutdown()


class _Silent(BaseHTTPRequestHandler):
    """A real server on loopback that takes a request and sends nothing (a long prefill, a full queue),
    counting the connections open now and those the client has closed."""

    open = closed = 0
    lock = threading.Lock()

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            type(self).open += 1
        try:
            while True:  # until the client goes: its socket turns readable with nothing to read
                ready, _, _ = select.select([self.connection], [], [], 0.05)
                if ready and self.connection.recv(1, socket.MSG_PEEK) == b"":
                    break
        finally:
            with self.lock:
                type(self).open -= 1
                type(self).closed += 1

    def log_message(self, *args):
        pass


def test_samples_in_flight_are_tasks_and_an_abort_closes_a_silent_connection_at_once():
    silent = ThreadingHTTPServer(("127.0.0.1", 0), _Silent)
    silent.daemon_threads = True
    threading.Thread(target=silent.serve_forever, daemon=True).start()
    def backend_threads() -> int:  # other tests' generators may be open beside this one
        return sum(t.name.startswith("testtime-http") for t in threading.enumerate())

    threads_before = backend_threads()
    try:
        with OpenAIGenerator(f"http://127.0.0.1:{silent.server_port}/v1", "m", concurrency=40) as gen:
            [stream] = gen.submit_all([GenerationRequest(PROMPT, n=50, params=SamplingParams(max_tokens=4))])
            deadline = time.monotonic() + 30
            while _Silent.open < 40 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)  # had the cap let more through, they would be open by now
            assert _Silent.open == 40  # concurrency caps the samples in flight
            # ...and they are tasks on one event loop, not a thread each.
            assert backend_threads() == threads_before + 1
            stopped = time.monotonic()
            stream.abort()
            assert stream.wait(1.0), "an aborted request over a silent connection did not end within 1 s"
            while _Silent.open and time.monotonic() - stopped < 1.0:
                time.sleep(0.02)
            assert _Silent.open == 0 and _Silent.closed == 40  # the server saw every connection go, at once
            completions = stream.result().completions
            assert [c.finish_reason for c in completions] == ["abort"] * 50
            assert all(c.token_count == 0 and c.text == "" for c in completions)
    finally:
        silent.shutdown()
