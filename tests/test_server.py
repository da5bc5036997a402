"""The OpenAI-compatible server on loopback, in front of the embedded model, through the official client."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request

import openai
import pytest
from conftest import TEST_MODEL, free_port, kill_tree, outlived

from testtime.generators import Generator
from testtime.report.watch import Background
from testtime.server.app import create_app
from testtime.server.config import ServerConfig

pytestmark = pytest.mark.engine
KEY = "secret-key"
QUESTION = [{"role": "user", "content": "Tom has 3 apples and buys 4 more. How many apples does he have?"}]


class Served:
    """A real uvicorn server in a thread, on a free loopback port."""

    def __init__(self, config: ServerConfig, generator):
        config.port = free_port()
        self.app = create_app(config, generator)
        # no graceful cap: a test's streams and running jobs end on their own before the engine is lent on
        self.served = Background(self.app, "127.0.0.1", config.port, graceful_seconds=None)
        self.url = self.served.url.rstrip("/")

    def close(self):
        self.served.close(timeout=30)

    def client(self, key: str | None = KEY, **kwargs) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key or "none", max_retries=0, **kwargs)


@pytest.fixture(scope="module")
def served(engine):
    config = ServerConfig(api_keys=(KEY,), max_tokens=64, max_budget=16, max_n=4, max_max_tokens=256,
                          max_body_bytes=20_000)
    server = Served(config, engine)
    yield server
    server.close()


def post(url: str, body: bytes, headers: dict) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read()), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), {k.lower(): v for k, v in err.headers.items()}


def test_health_and_models(served):
    assert json.loads(urllib.request.urlopen(served.url + "/health").read()) == {"status": "ok"}
    ids = [m.id for m in served.client().models.list().data]
    assert "smollm2-135m-instruct" in ids and "smollm2-135m-instruct+beam_search" in ids
    assert "smollm2-135m-instruct+pool" not in ids and "smollm2-135m-instruct+compute_optimal" not in ids


def test_chat_completion_with_usage_from_the_ledger(served):
    response = served.client().chat.completions.create(
        model="smollm2-135m-instruct+majority", messages=QUESTION, max_tokens=48, extra_body={"testtime": {"budget": 3}})
    assert response.object == "chat.completion" and len(response.choices) == 1
    assert response.choices[0].message.content and response.choices[0].finish_reason in ("stop", "length")
    usage, ledger = response.usage, response.usage.model_extra["testtime"]
    assert usage.completion_tokens == ledger["completion_tokens"] > 0
    assert usage.prompt_tokens == ledger["prompt_tokens"] > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens + ledger["verifier_tokens"]
    assert response.model_extra["testtime"]["strategy"]["budget"] == 3
    # three samples of at most 48 tokens each were generated for this one answer
    assert usage.completion_tokens <= 3 * 48


def test_streaming_search_shows_progress_then_the_answer(served):
    stream = served.client().chat.completions.create(
        model="smollm2-135m-instruct+beam_search", messages=QUESTION, max_tokens=64, stream=True,
        stream_options={"include_usage": True},
        extra_body={"testtime": {"budget": 4, "params": {"width": 2, "delimiter": "\n"}}})
    chunks = list(stream)
    progress = [c.choices[0].delta.model_extra.get("reasoning_content") for c in chunks if c.choices]
    assert any(p and "beam_search round 1" in p for p in progress)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_a_single_samples_answer_streams_as_it_is_written(served):
    stream = served.client().chat.completions.create(
        model="smollm2-135m-instruct+single", messages=QUESTION, max_tokens=48, stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    # Before, the answer came as one content chunk at the end; now in pieces as the engine writes them.
    assert len(pieces) >= 4, pieces
    [finish] = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish in ("stop", "length") and chunks[-1].usage.completion_tokens >= len(pieces)
    answer = "".join(pieces)
    assert answer.strip() and chunks[-1].usage.completion_tokens <= 48


def test_a_thinking_budget_runs_budget_forcing_and_usage_counts_reasoning_tokens(served):
    client = served.client()
    low = client.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, max_tokens=64,
                                         reasoning_effort="low", extra_body={"testtime": {"budget": 2}})
    shown = low.model_extra["testtime"]["strategy"]
    assert (shown["strategy"], shown["max_thinking_tokens"], shown["budget"]) == ("budget_forcing", 128, 2)
    assert low.usage.completion_tokens_details.reasoning_tokens == 0  # SmolLM2 does not think in tags
    assert low.choices[0].message.content
    # A budget of 8 thinking tokens and 4 answer tokens per sample: at most 24 for two samples.
    tight = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=QUESTION, max_tokens=64,
        extra_body={"max_thinking_tokens": 8, "testtime": {"budget": 2, "params": {"answer_tokens": 4}}})
    assert tight.model_extra["testtime"]["strategy"]["max_thinking_tokens"] == 8
    assert 2 <= tight.usage.completion_tokens <= 24 < low.usage.completion_tokens


def test_a_reply_that_thinks_in_tags_is_split_into_reasoning_and_content():
    from testtime.server.protocol import message

    assert message("<think>3 + 4 = 7</think>\n\nThe answer is 7.") == {
        "content": "The answer is 7.", "reasoning_content": "3 + 4 = 7"}
    assert message("The answer is 7.") == {"content": "The answer is 7."}


def test_n_distinct_answers(served):
    response = served.client().chat.completions.create(
        model="smollm2-135m-instruct", messages=QUESTION, max_tokens=48, n=2, temperature=1.0,
        extra_body={"testtime": {"strategy": "best_of_n", "budget": 8}})
    texts = [c.message.content for c in response.choices]
    assert 1 <= len(texts) <= 2 and len(set(texts)) == len(texts)


def test_finish_reason_is_the_chosen_solutions_own(served):
    client = served.client()
    cut = client.chat.completions.create(model="smollm2-135m-instruct+majority", messages=QUESTION, max_tokens=3,
                                         extra_body={"testtime": {"budget": 2}})
    assert cut.choices[0].finish_reason == "length"  # three tokens cannot hold a solution
    stream = client.chat.completions.create(model="smollm2-135m-instruct+majority", messages=QUESTION, max_tokens=3,
                                            stream=True, extra_body={"testtime": {"budget": 2}})
    reasons = [c.choices[0].finish_reason for c in stream if c.choices and c.choices[0].finish_reason]
    assert reasons == ["length"]
    short = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=[{"role": "user", "content": "Say yes."}], max_tokens=64,
        temperature=0.0, extra_body={"testtime": {"strategy": "single"}})
    assert short.choices[0].finish_reason == ("length" if short.usage.completion_tokens >= 64 else "stop")


def test_completions_endpoint(served):
    response = served.client().completions.create(model="smollm2-135m-instruct", prompt="What is 2 + 5?", max_tokens=32)
    assert response.object == "text_completion" and response.choices[0].text
    assert response.usage.completion_tokens > 0


def test_authentication(served):
    with pytest.raises(openai.AuthenticationError):
        served.client(key="wrong").models.list()
    status, body, _ = post(served.url + "/v1/chat/completions", b"{}", {})
    assert status == 401 and body["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("extra, message", [
    ({"testtime": {"budget": 64}}, "budget 64 is over this server's cap of 16"),
    ({"testtime": {"strategy": "nope"}}, "unknown strategy 'nope'"),
    ({"testtime": {"strategy": "beam_search", "params": {"width": 3}}}, "multiple of width"),
    ({"testtime": {"strategy": "majority", "params": {"width": 2}}}, "does not take width"),
    ({"testtime": {"verifier": "nope"}}, "unknown verifier 'nope'"),
    ({"testtime": {"strategy": "best_of_n", "budget": 2, "verifier": "served"}}, "verifier 'served' needs url"),
    ({"testtime": {"strategy": "best_of_n", "budget": 2, "verifier": "hf_prm"}}, "verifier 'hf_prm' needs model"),
    ({"testtime": {"strategy": "best_of_n", "budget": 2, "verifier": "llm_judge"}}, "verifier 'llm_judge' needs"),
    ({"testtime": {"strategy": "beam_search", "params": {"width": "2"}}}, "parameter width = '2': expected an integer"),
    ({"testtime": {"strategy": "beam_search", "params": {"c": 1}}}, "does not take c"),
    ({"testtime": {"strategy": "pool"}}, "unknown strategy 'pool'"),
    ({"testtime": {"strategy": "compute_optimal", "params": {"policy": "/etc/passwd"}}},
     "unknown strategy 'compute_optimal'"),
    ({"testtime": {"budget": 0}}, "budget"),
    ({"testtime": {"strategy": "revisions", "params": {"reviser": "qwen2.5-coder-1.5b-instruct"}}},
     "params.reviser opens a model of its own"),
    ({"testtime": {"params": {"budget": 1000}}}, "budget goes in testtime.budget"),  # no way round the cap
    ({"testtime": {"strategy": "mcts", "budget": 4, "params": {"width": 100000}}}, "must be at most the budget"),
    ({"testtime": {"budget": "2"}}, "budget"),
    ({"reasoning_effort": "high", "max_thinking_tokens": 8}, "give reasoning_effort or max_thinking_tokens, not both"),
    ({"max_thinking_tokens": 8, "testtime": {"strategy": "beam_search"}}, "strategy 'beam_search' has none"),
    ({"reasoning_effort": "low", "testtime": {"params": {"max_thinking_tokens": 8}}}, "both set the thinking budget"),
    ({"max_thinking_tokens": 9999}, "max_thinking_tokens 9999 is over this server's cap of 256"),
    ({"reasoning_effort": "high"}, "reasoning_effort 'high' (768 thinking tokens) is over this server's cap of 256"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"testtime": {"tests": ["x = 1"]}}, "tests[0] must be one assert statement"),
    ({"testtime": {"tests": ["assert f(1) =="]}}, "tests[0] is not valid Python"),
    ({"testtime": {"tests": []}}, "tests must be a non-empty list"),
    ({"testtime": {"tests": ["assert " + "-" * 1900 + "1"]}}, "tests[0] is nested too deeply"),
    ({"testtime": {"tests": ["assert f(1)"] * 33}}, "33 tests are over the cap of 32"),
    ({"testtime": {"tests": ["assert f(1)"], "verifier": "arithmetic"}}, "drop testtime.verifier"),
])
def test_bad_testtime_options_are_400(served, extra, message):
    with pytest.raises(openai.BadRequestError) as err:
        served.client().chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, extra_body=extra)
    assert message in str(err.value)


def test_a_request_with_tests_gets_the_sample_that_passes_most_of_them(served):
    # SmolLM2 writes poor code: the point is the plumbing. Every sample ran against the tests in the
    # sandbox, and the answer is the one with the highest share passed.
    from testtime.verifiers import Solution
    from testtime.verifiers.assertions import AssertionsVerifier

    tests = ["assert double(2) == 4", "assert double(-3) == -6", "assert double(0) == 0"]
    question = "Write a Python function double(x) that returns 2 * x."
    reply = served.client().chat.completions.create(
        model="smollm2-135m-instruct", max_tokens=96, seed=3, messages=[{"role": "user", "content": question}],
        extra_body={"testtime": {"budget": 4, "tests": tests}})
    details = reply.model_extra["testtime"]
    assert details["strategy"]["strategy"] == "best_of_n" and details["candidates"] == 4
    # the share reported is the returned program's own, scored again here
    assert details["tests_passed"] == AssertionsVerifier(tests).score([Solution(question,
                                                                                reply.choices[0].message.content)])[0]


def test_caps_and_malformed_requests(served):
    client = served.client()
    with pytest.raises(openai.BadRequestError, match="n 5 is over this server's cap of 4"):
        client.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, n=5)
    with pytest.raises(openai.BadRequestError, match="max_tokens 999 is over"):
        client.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, max_tokens=999)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-5", messages=QUESTION)
    headers = {"Authorization": f"Bearer {KEY}"}
    status, body, _ = post(served.url + "/v1/chat/completions", b'{"model": "smollm2-135m-instruct"}', headers)
    assert status == 400 and "messages" in body["error"]["message"]
    status, body, _ = post(served.url + "/v1/chat/completions", b"not json", headers)
    assert status == 400
    status, body, _ = post(served.url + "/v1/chat/completions", b"x" * 30_000, headers)
    assert status == 413 and "limit is 20000" in body["error"]["message"]


@pytest.mark.parametrize("body, where", [
    (b'{"model": "smollm2-135m-instruct", "messages": "hi"}', "messages"),
    (b'{"model": "smollm2-135m-instruct", "messages": []}', "messages"),
    (b'{"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}',
     "max_tokens"),
    (b'{"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "hi"}], "temperature": "0.5"}',
     "temperature"),
    (b'{"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "hi"}], "n": 1.5}', "n"),
    (b'{"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "\\ud800"}]}', "content"),
    (b'{"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "' + b"word " * 2500 + b'"}]}',
     "the model's context is 2048"),
    (b'{"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "hi"}]', "JSON"),
    (b'[1, 2]', "body"),
])
def test_a_bad_body_is_a_400_naming_the_problem_and_the_server_goes_on(served, body, where):
    headers = {"Authorization": f"Bearer {KEY}"}
    status, answer, _ = post(served.url + "/v1/chat/completions", body, headers)
    assert status == 400 and answer["error"]["type"] == "invalid_request_error", answer
    assert where in answer["error"]["message"] + str(answer["error"]["param"])
    plain = served.client().chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, max_tokens=8)
    assert plain.choices[0].message.content


class FailingOnce(Generator):
    """The real engine behind a fault injector: the first call fails, as a broken engine call would."""

    def __init__(self, engine):
        self.engine, self.failed = engine, False
        self.model, self.parameter_count, self.max_model_len = engine.model, engine.parameter_count, engine.max_model_len

    def count_prompt_tokens(self, prompt):
        return self.engine.count_prompt_tokens(prompt)

    def _generate(self, requests):
        if not self.failed:
            self.failed = True
            raise RuntimeError("injected engine fault")
        return self.engine._generate(requests)


def test_a_failing_job_is_a_500_for_its_requests_only_and_the_worker_goes_on(engine):
    server = Served(ServerConfig(max_tokens=8, max_max_tokens=16), FailingOnce(engine))
    try:
        status, answer, _ = post(server.url + "/v1/chat/completions", json.dumps(
            {"model": "smollm2-135m-instruct", "messages": QUESTION}).encode(), {})
        assert status == 500 and answer["error"] == {"message": "internal server error", "type": "server_error",
                                                     "param": None, "code": None}
        assert json.loads(urllib.request.urlopen(server.url + "/health").read()) == {"status": "ok"}
        again = server.client(key=None).chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION)
        assert again.choices[0].message.content
        assert b"testtime_requests_total" in urllib.request.urlopen(server.url + "/metrics").read()  # no keys
        server.app.state.scheduler.drain()  # what SIGTERM does first
        status, answer, _ = post(server.url + "/v1/chat/completions", json.dumps(
            {"model": "smollm2-135m-instruct", "messages": QUESTION}).encode(), {})
        assert status == 503 and answer["error"]["code"] == "shutting_down"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + "/health")
        assert err.value.code == 503 and "draining" in json.loads(err.value.read())["reason"]
    finally:
        server.close()


def test_concurrent_requests_share_engine_steps(served, engine):
    client = served.client()
    before = engine.loop.steps
    results = []

    def ask():
        results.append(client.chat.completions.create(
            model="smollm2-135m-instruct+majority", messages=QUESTION, max_tokens=32, extra_body={"testtime": {"budget": 2}}))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r.choices[0].message.content for r in results)
    # one after another they would take about 8 x 32 engine steps; started at once, they ran in one batch
    assert engine.loop.steps - before < 4 * 32


def test_metrics_count_requests_and_tokens(served):
    with pytest.raises(urllib.error.HTTPError) as err:  # under --api-key, /metrics needs the key too
        urllib.request.urlopen(served.url + "/metrics")
    assert err.value.code == 401
    keyed = urllib.request.Request(served.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"})
    text = urllib.request.urlopen(keyed).read().decode()
    assert "testtime_requests_total" in text and 'testtime_tokens_total{kind="completion_tokens"}' in text
    assert "testtime_queue_depth" in text and "testtime_request_seconds_bucket" in text


def test_metrics_can_be_opened_to_a_scraper_while_the_api_keeps_its_key(engine):
    server = Served(ServerConfig(api_keys=(KEY,), metrics_public=True), engine)
    try:
        assert b"testtime_requests_total" in urllib.request.urlopen(server.url + "/metrics").read()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + "/v1/models")
        assert err.value.code == 401
    finally:
        server.close()


def test_compute_optimal_is_served_only_with_a_configured_policy_named_by_the_client(engine, tmp_path):
    from test_compute_optimal import write_policy

    policy = write_policy(tmp_path / "policy.json")
    server = Served(ServerConfig(policies={"sweep1": str(policy)}, max_tokens=16), engine)
    try:
        client = server.client(key=None)
        assert "smollm2-135m-instruct+compute_optimal" in [m.id for m in client.models.list().data]
        for params, budget, message in [({"policy": "/etc/passwd"}, 8, "policy '/etc/passwd' is not one this server"),
                                        ({"policy": "sweep1"}, 4, "no policy for budget 4; it has budgets 8")]:
            with pytest.raises(openai.BadRequestError, match=re.escape(message)):
                client.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION, extra_body={
                    "testtime": {"strategy": "compute_optimal", "budget": budget, "params": params}})
        answer = client.chat.completions.create(model="smollm2-135m-instruct+compute_optimal", messages=QUESTION,
                                                extra_body={"testtime": {"budget": 8}})  # the one policy it has
        assert answer.model_extra["testtime"]["strategy"]["policy"] == "sweep1"  # its name: no path leaves the server
    finally:
        server.close()


@pytest.fixture
def tight(served, engine):
    """A second server on the same engine with one request at a time, a queue of one and a 2 s wall cap.

    It runs only while the module's server is idle, so one engine serves one scheduler at a time."""
    config = ServerConfig(max_queue=1, max_running=1, max_wall_seconds=2.0, max_tokens=64)
    server = Served(config, engine)
    yield server
    server.close()


def test_full_queue_answers_429_with_retry_after(tight):
    statuses = []

    def ask():
        statuses.append(post(tight.url + "/v1/chat/completions", json.dumps({
            "model": "smollm2-135m-instruct", "messages": QUESTION, "max_tokens": 64,
            "testtime": {"strategy": "majority", "budget": 8}}).encode(), {}))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(s for s, _, _ in statuses)
    assert 200 in codes and 429 in codes and set(codes) == {200, 429}
    refused, headers = next((b, h) for s, b, h in statuses if s == 429)
    assert refused["error"]["code"] == "queue_full" and headers["retry-after"] == "1"


def test_wall_time_cap_stops_a_search_and_still_answers(tight):
    started = time.time()
    response = tight.client(key=None).chat.completions.create(
        model="smollm2-135m-instruct+beam_search", messages=QUESTION, max_tokens=256,
        extra_body={"testtime": {"budget": 16, "params": {"width": 4, "delimiter": "\n", "max_depth": 20}}})
    assert response.choices[0].message.content
    job, result = tight.app.state.scheduler.recent[-1]
    assert result.details["rounds"] < 20 and time.time() - started < 60


def test_client_disconnect_cancels_the_search_within_a_second(served, engine):
    client = served.client()
    stream = client.chat.completions.create(
        model="smollm2-135m-instruct+beam_search", messages=QUESTION, max_tokens=256, stream=True,
        extra_body={"testtime": {"budget": 16, "params": {"width": 4, "delimiter": "\n", "max_depth": 20}}})
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.model_extra.get("reasoning_content"):
            break  # the first round is done: hang up
    stream.close()
    left = time.monotonic()
    while engine.loop.running and time.monotonic() - left < 30:  # nothing else runs on this engine now
        time.sleep(0.01)
    # from the client's hang-up to no sequence of its search left in the engine (the engine's own count)
    assert time.monotonic() - left < 1.0
    scheduler = served.app.state.scheduler
    deadline = time.time() + 300
    while time.time() < deadline and not any(job.cancelled.is_set() for job, _ in scheduler.recent):
        time.sleep(0.5)
    job, result = next((j, r) for j, r in scheduler.recent if j.cancelled.is_set())
    assert result.details["rounds"] < 20  # it stopped when the client left, well before the depth cap


def test_serve_command_end_to_end_and_sigterm_stops_it_and_its_engine(tmp_path):
    import signal
    import subprocess
    import sys

    import psutil

    port = free_port()
    config = tmp_path / "server.toml"
    config.write_text(f'port = {port}\nstrategy = "best_of_n"\nbudget = 2\nmax_tokens = 32\n')
    proc = subprocess.Popen([sys.executable, "-m", "testtime", "serve", "--config", str(config), "--api-key", KEY,
                             "--log-file", str(tmp_path / "engine.log"), "--model", TEST_MODEL],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0)
        response = client.chat.completions.create(model="smollm2-135m-instruct", messages=QUESTION)
        assert response.model_extra["testtime"]["strategy"] == {"strategy": "best_of_n", "budget": 2}
        assert 0 < response.usage.completion_tokens <= 2 * 32
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "the engine runs in a child process"
        proc.send_signal(signal.SIGTERM)
        started = time.time()
        proc.wait(timeout=30)
        assert time.time() - started < 30
        assert not outlived(children), "a child process outlived the server"
        assert "vllm" in (tmp_path / "engine.log").read_text().lower()  # the engine's logs went to the file
    finally:
        kill_tree(proc.pid)


@pytest.mark.parametrize("content, message", [
    ("colour = 1\n", "unknown setting(s) colour"),
    ("port = [\n", "server.toml"),
    ("thinking_budgets = {low = 64}\n", "thinking_budgets must give each of low, medium, high a number of tokens"),
    ("thinking_budgets = {low = 64, medium = 0, high = 9}\n", "got {'low': 64, 'medium': 0, 'high': 9}"),
])
def test_serve_rejects_a_bad_config_before_loading_the_model(tmp_path, content, message):
    from typer.testing import CliRunner

    from testtime.cli import app

    config = tmp_path / "server.toml"
    config.write_text(content)
    result = CliRunner().invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
