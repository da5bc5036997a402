"""The live view: a run store read while it fills (no engine), its event stream on loopback, and in
headless Chromium a real `testtime run --watch` and the server's /ui, each shown while it runs.

The browser tests hold the run at a gate to count events, not seconds: the run's store commits a
chunk only when the test lets it (``RunStore.add`` waits for a permit, then runs as ever), and
the server's engine starts a generation only when the test lets it (the real engine behind)."""

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.request

import pytest

from conftest import Borrowed, commands_on, free_port, with_test_model
from report_fixture import fake_run, make_tasks
from testtime.report.live import LiveRun
from testtime.report.watch import Background, watch_app
from testtime.store import RunStore


def fake_store(run_dir, lines_by_unit):
    """A store planned for the fake run's units and questions, with no result yet; its unit keys."""
    ids = [line["id"] for line in lines_by_unit[0][1]]
    store = RunStore.start(run_dir, {"questions": ids, "plan": [d for d, _ in lines_by_unit],
                                     "pool_strategies": ["majority", "best_of_n"]})
    keys = [json.dumps(d, sort_keys=True) for d, _ in lines_by_unit]
    store.add_units(list(zip(keys, [d for d, _ in lines_by_unit])))
    return store, keys


@pytest.fixture(scope="module")
def lines_by_unit():
    return fake_run(make_tasks(4), seeds=(0,))[:2]  # the pool and one beam search


def test_the_live_view_reads_a_store_as_it_fills(tmp_path, lines_by_unit):
    run_dir = tmp_path / "run"
    live = LiveRun(run_dir)
    assert not live.refresh() and not live.state()["exists"]  # nothing there yet: waiting, not an error
    run_dir.mkdir()
    sqlite3.connect(run_dir / "run.db").execute("PRAGMA user_version").fetchone()  # a file, no tables yet
    assert not live.refresh() and live.state()["problem"] is None

    store, keys = fake_store(run_dir, lines_by_unit)
    assert live.refresh()
    state = live.state()
    assert [u["done"] for u in state["progress"]["units"]] == [0, 0] and state["points"] == []
    assert state["figures"]["tokens"] is None

    (pool, pool_lines), (_, beam_lines) = lines_by_unit
    store.add(keys[0], list(enumerate(pool_lines[:2])))
    before = (run_dir / "run.db").stat().st_mtime_ns
    assert live.refresh() and not live.refresh()  # the new rows once; then nothing new
    assert (run_dir / "run.db").stat().st_mtime_ns == before  # read only
    state = live.state()
    assert state["progress"]["done"] == 2 and state["progress"]["of"] == 8
    assert [u["done"] for u in state["progress"]["units"]] == [2, 0]
    assert {p["questions"] for p in state["points"]} == {2}  # each point says what it stands on
    assert {"pass@k", "majority", "best_of_n"} <= {p["strategy"] for p in state["points"]}
    assert state["figures"]["tokens"]["data"]
    assert [q["id"] for q in state["finished_questions"]] == [line["id"] for line in pool_lines[:2]]
    assert live.question(pool_lines[0]["id"])["views"][0]["kind"] == "pool"
    assert live.question(pool_lines[3]["id"]) is None  # not finished yet

    store.add(keys[0], [(i, line) for i, line in enumerate(pool_lines) if i >= 2])
    store.add(keys[1], list(enumerate(beam_lines)))
    live.refresh()
    state = live.state()
    assert state["progress"]["done"] == state["progress"]["of"] == 8 and state["progress"]["eta_seconds"] == 0
    assert any(p["source"] == "run" for p in state["points"])
    assert [v["kind"] for v in live.question(beam_lines[0]["id"])["views"]] == ["pool", "tree"]
    store.close()

    # started again with --overwrite: the view starts over rather than mixing two runs
    RunStore.start(run_dir, {"questions": []}, overwrite=True).close()
    assert live.refresh() and live.state()["progress"]["done"] == 0 and live.rows == {}


def test_a_store_that_is_no_store_is_said_so(tmp_path):
    (tmp_path / "run.db").write_bytes(b"not sqlite at all, " * 100)
    live = LiveRun(tmp_path)
    assert live.refresh()
    assert "not a testtime run store" in live.state()["problem"]


def test_a_damaged_result_row_is_skipped_and_said_while_the_rest_is_read(tmp_path, lines_by_unit):
    store, keys = fake_store(tmp_path, lines_by_unit)
    pool_lines = lines_by_unit[0][1]
    store.add(keys[0], [(0, pool_lines[0])])
    with sqlite3.connect(tmp_path / "run.db") as db:  # what no testtime version writes: a line that is no JSON
        db.execute("INSERT INTO results VALUES (?, 'broken', 1, 0, '{not json', 'w', 0)", (keys[0],))
    store.add(keys[0], [(2, pool_lines[2])])
    live = LiveRun(tmp_path)
    assert live.refresh()
    state = live.state()
    assert state["progress"]["done"] == 2 and "1 damaged result rows skipped" in state["problem"]
    store.close()


def test_the_event_stream_sends_a_state_when_a_chunk_lands(tmp_path, lines_by_unit):
    store, keys = fake_store(tmp_path, lines_by_unit)
    served = Background(watch_app(tmp_path, poll_seconds=0.05))
    try:
        with urllib.request.urlopen(served.url + "events", timeout=60) as events:
            first = next_event(events)
            assert first["progress"]["done"] == 0
            store.add(keys[0], list(enumerate(lines_by_unit[0][1][:1])))
            second = next_event(events)
        assert second["version"] > first["version"] and second["progress"]["done"] == 1
        page = urllib.request.urlopen(served.url, timeout=60).read().decode()
        assert "Plotly" in page and 'id="progress-table"' in page
        missing = urllib.request.Request(served.url + "question?id=nope")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(missing, timeout=60)
        assert err.value.code == 404 and "nope" in err.value.read().decode()
    finally:
        served.close()
        store.close()


def next_event(stream) -> dict:
    """The next data event of a server-sent event stream (heartbeats skipped)."""
    for raw in stream:
        line = raw.decode().strip()
        if line.startswith("data: "):
            return json.loads(line[6:])
    raise AssertionError("the event stream ended")


# -- in a browser, on the real engine --------------------------------------------------------------------
def wait(driver, condition, timeout: float = 120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))


def first_card(driver) -> dict | None:
    """The newest request's card on /ui, read in one script: the page redraws every half second, so
    elements held across calls would go stale."""
    return driver.execute_script("""const c = document.querySelector('details.request');
        if (!c) return null;
        const m = c.querySelector('pre.messages');
        return {state: c.dataset.state, text: c.textContent, messages: m ? m.textContent : '',
                nodes: c.querySelectorAll('ul.tree li').length, marks: c.querySelectorAll('.good, .bad').length};""")


class Gate:
    """Lets through one call per permit; ``open`` lets all the rest through."""

    def __init__(self):
        self.permits = threading.Semaphore(0)
        self.waiting = threading.Event()
        self.opened = False

    def passing(self):
        self.waiting.set()
        if not self.opened:
            assert self.permits.acquire(timeout=600), "the test never let the call through"
        self.waiting.clear()

    def let_one(self):
        self.permits.release()

    def open(self):
        self.opened = True
        for _ in range(100):
            self.permits.release()


@pytest.mark.browser
@pytest.mark.engine
def test_run_watch_shows_a_chunk_that_lands_after_the_page_opened(engine, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from test_report_browser import chromium_driver
    from testtime.cli import app

    gate, real_add = Gate(), RunStore.add

    def gated_add(self, unit, lines, worker=""):
        gate.passing()
        real_add(self, unit, lines, worker)

    monkeypatch.setattr(RunStore, "add", gated_add)
    port, out, outcome = free_port(), tmp_path / "run", {}

    def run():
        with commands_on(engine):
            outcome["result"] = CliRunner().invoke(app, with_test_model([
                "run", "--dataset", "sample", "--limit", "3", "--chunk-size", "1", "--strategy", "majority",
                "--n", "2", "--max-tokens", "48", "--out", str(out), "--watch", "--watch-port", str(port), "--json"]))

    runner = threading.Thread(target=run)
    runner.start()
    driver = chromium_driver()
    try:
        assert gate.waiting.wait(600)  # the first chunk is solved and waits to be committed
        driver.get(f"http://127.0.0.1:{port}/")
        status = lambda d: d.find_element("id", "status").text  # noqa: E731
        wait(driver, lambda d: "0 of 3 results" in status(d))
        driver.execute_script("window.openedOnce = true")  # gone if the page reloads
        gate.let_one()
        wait(driver, lambda d: "1 of 3 results" in status(d))
        wait(driver, lambda d: d.find_elements("css selector", "#plot-tokens .point"))  # the curve so far
        assert len(driver.find_elements("css selector", "#question-select option")) == 2  # "(pick one)" + 1
        gate.let_one()
        wait(driver, lambda d: "2 of 3 results" in status(d))
        assert driver.execute_script("return window.openedOnce === true")  # updated in place
        rows = driver.find_elements("css selector", "#progress-table tbody tr")
        assert len(rows) == 1 and "2 of 3" in rows[0].text
        assert driver.find_element("css selector", "#ledger tbody").text  # the ledger so far
        from selenium.webdriver.support.ui import Select

        Select(driver.find_element("id", "question-select")).select_by_index(2)
        wait(driver, lambda d: d.find_elements("css selector", "#explorer-view ol.pool li"))
        gate.open()
        runner.join(600)
        # the run ended and its view with it: the page keeps the last state and says so
        wait(driver, lambda d: "lost its connection" in status(d))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "/events" not in e["message"]]
        assert not errors, errors
    finally:
        gate.open()
        runner.join(600)
        driver.quit()
    result = outcome["result"]
    assert result.exit_code == 0, result.output[-3000:]
    summary = json.loads(result.stdout)  # --json: standard output holds the results alone
    assert [r["strategy"] for r in summary["results"]] == ["majority"] and summary["results"][0]["budget"] == 2
    assert "live view: http://127.0.0.1:" in result.stderr


@pytest.mark.browser
@pytest.mark.engine
@pytest.mark.server
def test_the_server_ui_shows_a_request_while_it_runs(engine):
    import openai

    from test_report_browser import chromium_driver
    from test_server import Served
    from testtime.server.config import ServerConfig

    gate = Gate()

    class GatedEngine(Borrowed):
        def generate(self, requests, ledgers=None, stop=None, watch=None):
            gate.passing()
            return super().generate(requests, ledgers, stop, watch)

    server = Served(ServerConfig(api_keys=("KEY",), max_tokens=48), GatedEngine(engine))
    outcome = {}

    def ask():
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="KEY", max_retries=0)
        outcome["reply"] = client.chat.completions.create(
            model=client.models.list().data[0].id, messages=[{"role": "user", "content": "What is 2 + 3?"}],
            extra_body={"testtime": {"strategy": "beam_search", "budget": 2, "verifier": "arithmetic",
                                     # 4-token steps: a round rarely ends a solution, so the search goes on
                                     "params": {"width": 2, "max_depth": 3, "step_tokens": 4}}})

    driver = chromium_driver()
    asker = None
    try:
        driver.get(server.url + "/ui")
        status = lambda d: d.find_element("id", "status").text  # noqa: E731
        wait(driver, lambda d: "API key" in status(d))  # no key yet: /ui/state answers 401
        driver.find_element("id", "key").send_keys("KEY")
        driver.find_element("css selector", "#key-form button").click()
        wait(driver, lambda d: "0 recent requests" in status(d))
        asker = threading.Thread(target=ask)
        asker.start()
        assert gate.waiting.wait(600)
        wait(driver, lambda d: (first_card(d) or {}).get("state") == "running")
        assert "beam_search@2" in first_card(driver)["text"] and "1 running" in status(driver)
        gate.let_one()  # the first round of steps: the request shows its tree, before its answer
        wait(driver, lambda d: "round 1" in first_card(d)["messages"] and first_card(d)["nodes"] >= 2)
        # Still running unless the model ended every path in one round (it then needs no second generate);
        # the model's text decides that, so it is not asserted.
        gate.open()
        wait(driver, lambda d: first_card(d)["state"] == "done")
        card = first_card(driver)
        assert card["nodes"] >= 2 and "completion" in card["text"]
        assert card["marks"] == 0  # no gold, so no right or wrong marks
    finally:
        gate.open()
        if asker is not None:
            asker.join(600)
        driver.quit()
        server.close()
    assert outcome["reply"].choices[0].message.content is not None


def test_report_json_prints_the_analysis_alone_on_standard_output(tmp_path, lines_by_unit):
    from typer.testing import CliRunner

    from testtime.cli import app

    store, keys = fake_store(tmp_path, lines_by_unit)
    for key, (_, lines) in zip(keys, lines_by_unit):
        store.add(key, list(enumerate(lines)))
    store.close()
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output[-2000:]
    scaling = json.loads(result.stdout)  # nothing but the JSON there: no table
    assert scaling["questions"] == 4 and scaling["pool_size"] == 8
    assert {"majority", "best_of_n", "beam_search"} <= {p["strategy"] for p in scaling["points"]}
    assert "report:" in result.stderr and (tmp_path / "report.html").exists()
