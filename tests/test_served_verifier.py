"""Served verifiers: the HTTP client against a real uvicorn server of an in-process verifier on loopback,
with faults injected by a real proxy in between, and the vLLM /pooling protocol against a loopback server
that speaks vLLM's pooling schema (a real `vllm serve` of a PRM takes minutes to start on this CPU machine).
"""

from __future__ import annotations

import json
import pickle
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Sequence

import httpx
import pytest
from conftest import free_port
from faultproxy import FaultProxy

from testtime.ledger import Ledger
from testtime.report.watch import Background
from testtime.retry import RetryPolicy, UpstreamError
from testtime.verifiers import Aggregation, OutcomeVerifier, Solution, Verifier
from testtime.verifiers.arithmetic import ArithmeticVerifier
from testtime.verifiers.base import StepScores
from testtime.verifiers.scorer_server import scorer_app
from testtime.verifiers.served import MalformedResponse, ServedVerifier, ServedVerifierError

FAST = RetryPolicy(timeout=30, attempts=3, backoff=0.01, max_backoff=0.02, deadline=60)

SOLUTIONS = [
    Solution("What is 6 times 7?", "6 * 7 = 42\n\nThe answer is: 42"),
    Solution("What is 6 times 7?", "6 * 7 = 48\n\nSo 48 + 2 = 50\n\nThe answer is: 50"),
    Solution("Tom has 3 bags of 4 apples.", "He has 3*4=<<3*4=12>>12 apples.\n\n12 - 2 = 10\n\nThe answer is: 10"),
    Solution("What is 1 + 1?", "The answer is: 2"),
    Solution("Say nothing.", ""),
]


class _Server:
    """A real uvicorn server in a thread, on a free loopback port."""

    def __init__(self, app):
        self.app = app

    def __enter__(self) -> str:
        self.served = Background(self.app)
        return self.served.url.rstrip("/")

    def __exit__(self, *exc) -> None:
        self.served.close()


@pytest.fixture(scope="module")
def scorer():
    """Base URL of a real scorer server of the arithmetic verifier."""
    with _Server(scorer_app(ArithmeticVerifier())) as url:
        yield url


class ScriptedProxy(FaultProxy):
    """The fault proxy with its faults given in order instead of drawn: each request takes the next one.

    Besides FaultProxy's faults ("error", "delay", "broken_json", "none"): "drop" closes the connection
    without an answer, and ("reply", status, body) answers with that status and JSON body.
    """

    def __init__(self, upstream: str, script: Sequence, delay: float = 1.0):
        self.script = list(script)
        self.local = threading.local()
        super().__init__(upstream, fault_rate=0.0, delay=delay)

    def _next(self):
        with self.lock:
            if self.script:
                fault = self.script.pop(0)
                self.counts[fault[0] + str(fault[1]) if isinstance(fault, tuple) else fault] += 1
                return fault
        return FaultProxy._choose(self)  # "none", or "upstream_down" once down_after has passed

    def _choose(self) -> str:
        return self.local.fault  # chosen already, by the handler's thread

    def _handler(self):
        proxy, base = self, super()._handler()

        class Handler(base):
            def _scripted(self):
                fault = proxy._next()
                if fault == "drop" or isinstance(fault, tuple):
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    if fault == "drop":
                        self.close_connection = True
                        return
                    _, status, body = fault
                    return self._reply(status, body if isinstance(body, bytes) else json.dumps(body).encode())
                proxy.local.fault = fault
                return base._proxy(self)

            do_GET = do_POST = _scripted

        return Handler

    @property
    def requests(self) -> int:
        return sum(self.counts.values())


def _served(url: str, **options) -> ServedVerifier:
    return ServedVerifier(url, retry=options.pop("retry", FAST), **options)


# -- the scorer protocol against the real server --


@pytest.mark.parametrize("aggregation", list(Aggregation))
def test_served_scores_equal_the_in_process_verifier(scorer, aggregation):
    local = ArithmeticVerifier(aggregation=aggregation)
    with _served(scorer + "/score", aggregation=aggregation) as served:
        assert served.score_steps(SOLUTIONS) == local.score_steps(SOLUTIONS)
        assert served.score(SOLUTIONS) == local.score(SOLUTIONS)
    # the solutions really differ, so equality means something
    assert len({s.scores for s in local.score_steps(SOLUTIONS)}) == 4


def test_aggregations_reduce_the_served_step_scores(scorer):
    steps = ArithmeticVerifier().score_steps(SOLUTIONS[1:2])[0].scores
    assert steps == (0.1, 1.0, 0.9)
    for how, expected in [("product", 0.1 * 1.0 * 0.9), ("min", 0.1), ("last", 0.9)]:
        with _served(scorer + "/score", aggregation=how) as served:
            assert served.score(SOLUTIONS[1:2]) == [pytest.approx(expected)]


def test_large_batches_are_split_into_chunks_and_keep_their_order(scorer):
    solutions = SOLUTIONS * 3
    with ScriptedProxy(scorer, []) as proxy, _served(proxy.url + "/score", batch_size=4, concurrency=2) as served:
        ledgers = [Ledger() for _ in solutions]
        assert served.score(solutions, ledgers) == ArithmeticVerifier().score(solutions)
    assert proxy.counts["none"] == 4  # 15 solutions in chunks of 4
    assert all(l.verifier_calls == 1 and l.verifier_tokens == 0 for l in ledgers)


class _Counting(OutcomeVerifier):
    """An outcome verifier that reports the tokens it read: one per character."""

    def _score(self, solutions):
        return [StepScores((0.25 if "wrong" in s.text else 0.75,), tokens=len(s.text)) for s in solutions]


def test_outcome_scores_and_tokens_come_through():
    solutions = [Solution("q", "right\n\nanswer"), Solution("q", "wrong")]
    ledgers = [Ledger(), Ledger()]
    with _Server(scorer_app(_Counting())) as url, _served(url + "/score", parameter_count=1000) as served:
        results = served.score_steps(solutions, ledgers)
        assert [r.scores for r in results] == [(0.75,), (0.25,)]
        assert [r.tokens for r in results] == [len("right\n\nanswer"), len("wrong")]
        assert served.score(solutions) == [0.75, 0.25]  # one score per solution, whatever the aggregation
    assert [l.verifier_tokens for l in ledgers] == [13, 5]
    assert ledgers[0].verifier_flops == 2.0 * 1000 * 13


def test_the_verifier_pickles_and_works_after(scorer):
    served = _served(scorer + "/score")
    before = served.score(SOLUTIONS)
    copy = pickle.loads(pickle.dumps(served))
    assert copy.score(SOLUTIONS) == before
    served.close()
    copy.close()


def test_construction():
    assert Verifier.lookup("served") is ServedVerifier
    with pytest.raises(ValueError, match="unknown protocol"):
        ServedVerifier("http://x", protocol="grpc")
    with pytest.raises(ValueError, match="input_template"):
        ServedVerifier("http://x", protocol="vllm_pooling", input_template="{prompt}")
    assert ServedVerifier("http://h:8000/v1/", protocol="vllm_pooling").url == "http://h:8000/pooling"
    assert ServedVerifier("http://h:8000/pooling", protocol="vllm_pooling").url == "http://h:8000/pooling"
    assert ServedVerifier("http://h:8000/score").url == "http://h:8000/score"


# -- faults between the client and the real server --


@pytest.mark.parametrize("fault", [
    "error",  # 500
    ("reply", 503, {"error": {"message": "overloaded"}}),
    ("reply", 429, {"error": {"message": "slow down"}}),
    ("reply", 408, {"detail": "request timeout"}),
    "drop",  # the connection closes with no answer
    "delay",  # held past the client's timeout
    "broken_json",  # a body cut in half
    ("reply", 200, b"<html>gateway</html>"),
    ("reply", 200, {"scores": [[1.0]]}),  # too few solutions
    ("reply", 200, {"scores": [[1.0], [0.5, 0.5]] + [[0.9]] * 3}),  # the second solution has 3 steps, not 2
    ("reply", 200, {"scores": [["high", 1.0]] + [[0.9]] * 4}),  # not a number
    ("reply", 200, {"scores": [[1.5, 1.0]] + [[0.9]] * 4}),  # outside [0, 1]
    ("reply", 200, {"result": []}),  # no scores at all
], ids=str)
def test_a_transient_fault_is_retried_and_changes_no_score(scorer, fault):
    # a short timeout only where the fault is a delay, so that a slow machine does not add timeouts of its own
    timeout = 1.5 if fault == "delay" else 30
    retry = RetryPolicy(timeout=timeout, attempts=3, backoff=0.01, max_backoff=0.02, deadline=60)
    with ScriptedProxy(scorer, [fault], delay=3.0) as proxy, _served(proxy.url + "/score", retry=retry) as served:
        assert served.score_steps(SOLUTIONS) == ArithmeticVerifier().score_steps(SOLUTIONS)
    assert proxy.requests == 2


def test_a_fault_that_persists_ends_in_upstream_error_after_the_policy_attempts(scorer):
    with ScriptedProxy(scorer, ["broken_json"] * 10) as proxy, _served(proxy.url + "/score") as served:
        started = time.monotonic()
        with pytest.raises(UpstreamError, match="failed 3 times") as info:
            served.score(SOLUTIONS)
        assert time.monotonic() - started < 5
    assert proxy.counts["broken_json"] == 3
    assert proxy.url in str(info.value) and "not JSON" in str(info.value)
    assert isinstance(info.value.__cause__, MalformedResponse)


@pytest.mark.parametrize("body, words", [
    ({"scores": [[0.5, 1.0]]}, ["'scores' should be 5 lists", "got 1 lists"]),
    ({"scores": [[1.0, 1.0], [0.5, 0.5]] + [[0.9]] * 3}, ["scores[1] (solution 1) should be 3 step scores", "got 2"]),
    ({"scores": [[1.0, 1.0], [0.5, 0.4, "x"]] + [[0.9]] * 3}, ["scores[1] (solution 1)[2] is not a number"]),
    ({"scores": [[1.0, 1.0], [0.5, 0.4, -0.1]] + [[0.9]] * 3}, ["scores[1] (solution 1)[2] = -0.1", "[0, 1]"]),
    ({"scores": [[1.0, 1.0], [0.5, 0.4, True]] + [[0.9]] * 3}, ["is not a number"]),
    ({"scores": [[1.0, 1.0]] + [[0.9]] * 4, "tokens": [1]}, ["'tokens' should be 5 counts"]),
], ids=range(6))
def test_malformed_bodies_are_named_by_field(scorer, body, words):
    with ScriptedProxy(scorer, [("reply", 200, body)] * 3) as proxy, _served(proxy.url + "/score") as served:
        with pytest.raises(UpstreamError) as info:
            served.score_steps(SOLUTIONS)
    message = str(info.value)
    assert proxy.url in message and "MalformedResponse" in message
    assert all(w in message for w in words), message


def test_a_client_error_is_not_retried_and_carries_the_servers_message(scorer):
    script = [("reply", 400, {"error": {"message": "steps must be strings"}})]
    with ScriptedProxy(scorer, script) as proxy, _served(proxy.url + "/score") as served:
        with pytest.raises(ServedVerifierError, match="steps must be strings") as info:
            served.score(SOLUTIONS)
    assert info.value.status_code == 400 and proxy.url in str(info.value)
    assert proxy.requests == 1


def test_an_unreachable_server_ends_in_upstream_error():
    url = f"http://127.0.0.1:{free_port()}/score"
    with _served(url) as served, pytest.raises(UpstreamError, match="failed 3 times.*ConnectError"):
        served.score(SOLUTIONS)


def test_the_upstream_going_down_mid_run(scorer):
    with ScriptedProxy(scorer, []) as proxy, _served(proxy.url + "/score", batch_size=2, concurrency=1) as served:
        proxy.down_after = 1
        with pytest.raises(UpstreamError, match="502"):
            served.score(SOLUTIONS)


# -- the scorer server itself --


def test_the_server_answers_422_naming_the_field(scorer):
    for body, field in [({"solutions": [{"question": "q", "steps": "not a list"}]}, "solutions.0.steps"),
                        ({"solutions": [{"steps": ["a"]}]}, "solutions.0.question"),
                        ({"solutions": []}, "solutions"),
                        ({}, "solutions")]:
        response = httpx.post(scorer + "/score", json=body)
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["param"] == field and error["message"].startswith(field + ":")
    response = httpx.post(scorer + "/score", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert httpx.get(scorer + "/health").json() == {"status": "ok", "verifier": "arithmetic"}


def test_the_server_keeps_the_given_steps(scorer):
    body = {"model": None, "solutions": [{"question": "q", "steps": ["2 + 2 = 4\n\n", "2 + 2 = 5"]},
                                         {"question": "q", "steps": []}]}
    answer = httpx.post(scorer + "/score", json=body).json()
    assert answer["scores"] == [[1.0, 0.1], []]
    assert answer["tokens"] == [0, 0] and answer["usage"]["prompt_tokens"] == 0


class _OutOfRange(OutcomeVerifier):
    def _score(self, solutions):
        return [StepScores((2.0,)) for _ in solutions]


def test_a_misbehaving_verifier_is_a_server_error_that_is_retried():
    with _Server(scorer_app(_OutOfRange())) as url, _served(url + "/score") as served:
        assert httpx.post(url + "/score", json={"solutions": [{"question": "q", "steps": ["a"]}]}).status_code == 500
        with pytest.raises(UpstreamError, match="failed 3 times.*500.*outside"):
            served.score(SOLUTIONS[:1])


def test_an_api_key_is_required_and_sent():
    with _Server(scorer_app(ArithmeticVerifier(), api_key="secret")) as url:
        with _served(url + "/score") as anonymous, pytest.raises(ServedVerifierError, match="401.*API key"):
            anonymous.score(SOLUTIONS)
        with _served(url + "/score", api_key="secret") as served:
            assert served.score(SOLUTIONS) == ArithmeticVerifier().score(SOLUTIONS)


# -- the vllm_pooling protocol --


class _Pooling(BaseHTTPRequestHandler):
    """Speaks vLLM's /pooling schema (vllm/entrypoints/pooling/pooling/protocol.py) for a STEP-pooled PRM.

    Each "<extra_0>" in the rendered prompt is a step tag; its output row is [p_bad, p_good] with
    p_good = 0.9 if the step before it holds "ok" else 0.2. Requests are recorded.
    """

    protocol_version = "HTTP/1.1"
    requests: list = []
    mangle = None  # a function that breaks a response

    def log_message(self, *args):
        pass

    def _rows(self, text: str) -> list[list[float]]:
        steps = text.split("<extra_0>")[:-1]
        return [[0.1, 0.9] if "ok" in step else [0.8, 0.2] for step in steps]

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, body))
        if "messages" in body:
            # the chat template, roughly: every message's content in order
            prompts = ["\n".join(m["content"] for m in body["messages"])]
        else:
            prompts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        tokens = sum(len(p.split()) for p in prompts)
        answer = {"id": "pool-1", "object": "list", "created": 0, "model": body.get("model") or "prm",
                  "data": [{"index": i, "object": "pooling", "data": self._rows(p)} for i, p in enumerate(prompts)],
                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0}}
        if type(self).mangle:
            answer = type(self).mangle(answer)
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def pooling():
    handler = type("Handler", (_Pooling,), {"requests": [], "mangle": None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", handler
    server.shutdown()
    server.server_close()


POOLING_SOLUTIONS = [
    Solution("Is it ok?", "first ok\n\nsecond bad\n\nthird ok"),
    Solution("Two?", "only ok"),
]


def test_vllm_pooling_chat_requests(pooling):
    url, handler = pooling
    ledgers = [Ledger(), Ledger()]
    with _served(url + "/v1", protocol="vllm_pooling", model="Qwen/Qwen2.5-Math-PRM-7B") as served:
        results = served.score_steps(POOLING_SOLUTIONS, ledgers)
        assert [r.scores for r in results] == [(0.9, 0.2, 0.9), (0.9,)]
        assert served.score(POOLING_SOLUTIONS) == [pytest.approx(0.9 * 0.2 * 0.9), 0.9]
    by_question = {body["messages"][1]["content"]: (path, body) for path, body in handler.requests[:2]}
    path, body = by_question["Is it ok?"]
    assert path == "/pooling"
    assert body == {
        "model": "Qwen/Qwen2.5-Math-PRM-7B", "task": "token_classify",
        "messages": [
            {"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."},
            {"role": "user", "content": "Is it ok?"},
            {"role": "assistant", "content": "first ok<extra_0>second bad<extra_0>third ok<extra_0>"},
        ],
    }
    # each request's usage is its solution's
    assert [r.tokens for r in results] == [
        len("\n".join(m["content"] for m in by_question[q][1]["messages"]).split()) for q in ("Is it ok?", "Two?")]
    assert [l.verifier_tokens for l in ledgers] == [r.tokens for r in results]


def test_vllm_pooling_text_inputs_batched(pooling):
    url, handler = pooling
    with _served(url, protocol="vllm_pooling", input_template="{question} {steps}", step_separator=" <extra_0>",
                 good_index=0, batch_size=8, extra_body={"truncate_prompt_tokens": 512}) as served:
        results = served.score_steps(POOLING_SOLUTIONS + [Solution("q", "ok <extra_0> inside")])
    assert [r.scores for r in results] == [(0.1, 0.8, 0.1), (0.1,), (0.1,)]
    [(path, body)] = handler.requests
    assert body == {"model": None, "task": "token_classify", "truncate_prompt_tokens": 512, "input": [
        "Is it ok? first ok <extra_0>second bad <extra_0>third ok <extra_0>",
        "Two? only ok <extra_0>",
        "q ok  inside <extra_0>",  # a separator inside a step would count as a step: it is blanked
    ]}
    assert sum(r.tokens for r in results) == sum(len(t.split()) for t in body["input"])


@pytest.mark.parametrize("mangle, words", [
    (lambda a: {**a, "data": a["data"] + a["data"]}, ["'data' should hold 1 pooling outputs", "got 2"]),
    (lambda a: {**a, "data": [{**a["data"][0], "data": a["data"][0]["data"][:1]}]},
     ["has 1 step outputs for 3 steps", "step_separator"]),
    (lambda a: {**a, "data": [{**a["data"][0], "data": "AAAA"}]}, ["encoding_format"]),
    (lambda a: {**a, "data": [{**a["data"][0], "data": [[0.1], [0.2], [0.3]]}]}, ["with index 1"]),
    (lambda a: {**a, "data": [{**a["data"][0], "data": [[0.1, 1.2]] * 3}]}, ["data[0].data (solution 0)[0][1] = 1.2"]),
    (lambda a: {**a, "data": [{**a["data"][0], "index": 3}]}, ["data[0] has no valid, distinct 'index'"]),
    (lambda a: {"object": "error", "message": "?"}, ["'data' should hold"]),
], ids=range(7))
def test_vllm_pooling_malformed_responses(pooling, mangle, words):
    url, handler = pooling
    handler.mangle = staticmethod(mangle)
    with _served(url, protocol="vllm_pooling") as served, pytest.raises(UpstreamError) as info:
        served.score_steps(POOLING_SOLUTIONS[:1])
    assert len(handler.requests) == 3  # retried up to the policy's attempts
    message = str(info.value)
    assert url + "/pooling" in message and all(w in message for w in words), message


def test_vllm_pooling_scalar_rows_with_good_index_none(pooling):
    url, handler = pooling
    flat = lambda a: {**a, "data": [{**d, "data": [row[1] for row in d["data"]]} for d in a["data"]]}  # noqa: E731
    handler.mangle = staticmethod(flat)
    with _served(url, protocol="vllm_pooling", good_index=None) as served:
        assert served.score_steps(POOLING_SOLUTIONS[:1])[0].scores == (0.9, 0.2, 0.9)


def test_testtime_serve_verifier_serves_a_named_verifier_to_the_client():
    """`testtime serve-verifier` as a user runs it, scored through the client."""
    import subprocess
    import sys

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "testtime", "serve-verifier", "--verifier", "arithmetic",
                             "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise AssertionError(f"serve-verifier did not come up: {proc.stderr.read() if proc.poll() else ''}")
        solutions = [Solution("q", "2 + 2 = 4\n\n3 * 3 = 10"), Solution("q", "5 - 1 = 4")]
        served = _served(f"http://127.0.0.1:{port}/score")
        local = ArithmeticVerifier()
        assert [s.scores for s in served.score_steps(solutions)] == [s.scores for s in local.score_steps(solutions)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
