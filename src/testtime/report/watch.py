"""The live view of a run: a local web page that follows the run store while it fills.

``watch_app`` serves the page, its state and a stream of server-sent events (a new state
each time the store gains results). The store is only ever read (``LiveRun``), so the view
outlives the run: it shows a finished, crashed or resumed run as the store holds it.
``serve_in_background`` runs any such app on a thread (``--watch``, the tests).
"""

from __future__ import annotations

import asyncio
import html
import threading
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from testtime.report.assets import CSS, EXPLORER_JS
from testtime.report.live import LiveRun
from testtime.report.figures import finite
from testtime.report.page import document, embed_json, panel

LIVE_CSS = """
.status { margin: 6px 0 12px; font-weight: 600; }
.status.gone { color: #b00020; }
progress { width: 160px; }
"""

LIVE_JS = r"""
(function () {
  "use strict";
  const E = window.testtimeExplorer;
  const status = document.getElementById("status");
  let state = null, lost = false, plotted = {};

  function duration(s) {
    if (s === null || s === undefined) return "—";
    s = Math.round(s);
    return s >= 3600 ? Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min"
         : s >= 60 ? Math.floor(s / 60) + " min " + (s % 60) + " s" : s + " s";
  }
  function rate(v) { return v === null || v === undefined ? "—" : v.toFixed(1); }
  function row(cells) {
    const tr = E.el("tr");
    cells.forEach(function (c, i) {
      const td = E.el("td", i === 0 ? "text" : null);
      if (c instanceof Node) td.appendChild(c); else td.textContent = c;
      tr.appendChild(td);
    });
    return tr;
  }

  function showStatus() {
    if (!state) return;
    const p = state.progress;
    let text;
    if (state.problem) text = state.problem;
    else if (!state.exists) text = "waiting for the run to start: " + state.run_dir + " holds no run yet";
    else if (p.of && p.done >= p.of) text = "finished: " + p.done + " of " + p.of + " results";
    else text = p.done + " of " + p.of + " results · " + rate(p.tokens_per_second) + " tokens/s · expected finish in "
                + duration(p.eta_seconds) + (p.last_commit ? " · last result " + duration(state.now - p.last_commit) + " ago" : "");
    if (lost) text += " · the view lost its connection to `testtime watch`; it shows the last state and retries";
    status.textContent = text;
    status.className = "status" + (lost || state.problem ? " gone" : "");
  }

  function showProgress() {
    const body = document.querySelector("#progress-table tbody");
    body.replaceChildren();
    state.progress.units.forEach(function (u) {
      const bar = E.el("progress");
      bar.max = u.of || 1; bar.value = u.done;
      body.appendChild(row([u.unit, bar, u.done + " of " + u.of,
                            u.accuracy === null ? "—" : (100 * u.accuracy).toFixed(1) + "%",
                            rate(u.tokens_per_second), u.done >= u.of ? "done" : duration(u.eta_seconds)]));
    });
  }

  function showPlots() {
    ["tokens", "flops"].forEach(function (axis) {
      const div = document.getElementById("plot-" + axis), note = document.getElementById("note-" + axis);
      const fig = state.figures[axis];
      note.textContent = fig ? "" : "Not available: " + state.why[axis] + ".";
      if (fig) Plotly.react(div, fig.data, fig.layout, {responsive: true, displaylogo: false});
      else if (plotted[axis]) Plotly.purge(div);
      plotted[axis] = !!fig;
    });
    const body = document.querySelector("#points-table tbody");
    body.replaceChildren();
    state.points.forEach(function (p) {
      body.appendChild(row([p.strategy, p.budget, p.source, (100 * p.accuracy).toFixed(1) + "%",
                            (100 * p.ci95[0]).toFixed(0) + "–" + (100 * p.ci95[1]).toFixed(0) + "%",
                            p.questions, Math.round(p.tokens)]));
    });
  }

  function showLedger() {
    const body = document.querySelector("#ledger tbody");
    body.replaceChildren();
    Object.keys(state.ledger).forEach(function (k) {
      const v = state.ledger[k];
      body.appendChild(row([k.replace(/_/g, " "), Number.isInteger(v) ? v.toLocaleString("en") : Number(v).toPrecision(4)]));
    });
  }

  const select = document.getElementById("question-select"), view = document.getElementById("explorer-view");
  let shown = null;
  function showQuestions() {
    const known = new Map([...select.options].map(function (o) { return [o.value, o]; }));
    state.finished_questions.forEach(function (q) {
      const text = q.id + " — " + q.question.replace(/\s+/g, " ").slice(0, 100) + " (" + q.answers + " answers)";
      const option = known.get(q.id) || select.appendChild(E.el("option"));
      option.value = q.id;
      option.textContent = text;
    });
    if (select.value && select.value !== shown) load(select.value);
    else if (shown !== null) load(shown);  // its answers may have grown
  }
  function load(id) {
    shown = id;
    fetch("question?id=" + encodeURIComponent(id)).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (q) { if (q && shown === id) E.show(q, view); });
  }
  select.addEventListener("change", function () { load(select.value); });

  function render(next) {
    state = next;
    lost = false;
    showStatus(); showProgress(); showPlots(); showLedger(); showQuestions();
    document.body.dataset.version = state.version;
  }

  const events = new EventSource("events");
  events.onmessage = function (e) { render(JSON.parse(e.data)); };
  events.onerror = function () { lost = true; showStatus(); };
  setInterval(function () { if (state) { state.now += 1; showStatus(); } }, 1000);
})();
"""


def table_html(table_id: str, headers: list[str]) -> str:
    head = "".join(f'<th class="{"text" if i == 0 else ""}">{html.escape(h)}</th>' for i, h in enumerate(headers))
    return f'<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead><tbody></tbody></table></div>'


def live_page(run_dir: Path) -> str:
    title = f"testtime watch: {run_dir}"
    panels = [
        ("panel-progress", "Progress", table_html("progress-table", ["unit", "", "questions", "accuracy so far",
                                                                     "tokens/s", "expected finish"]),
         "Each unit's questions done; the pace is this session's (a resumed run counts from its restart)."),
        ("panel-tokens", "Accuracy vs tokens, so far",
         '<p class="na" id="note-tokens"></p><div class="plot" id="plot-tokens"></div>',
         "Each unit on the questions it has finished: a unit half done stands on fewer questions, so points "
         "are not paired until the run ends (`testtime report` pairs them)."),
        ("panel-flops", "Accuracy vs FLOPs, so far",
         '<p class="na" id="note-flops"></p><div class="plot" id="plot-flops"></div>', ""),
        ("panel-points", "Points so far", table_html("points-table", ["strategy", "budget", "source", "accuracy",
                                                                      "95% CI", "questions", "tokens/q"]), ""),
        ("panel-ledger", "Ledger", table_html("ledger", ["what", "total"]),
         "Everything the finished questions cost, summed over units."),
        ("panel-explorer", "Finished questions",
         '<label>Question <select id="question-select"><option value="">(pick one)</option></select></label>'
         '<div id="explorer-view"></div>',
         "Each unit's answer: a search's tree, a pool's samples, for code the programs and their tests."),
    ]
    body = "".join(panel(pid, name, inner, hint, wide=pid in ("panel-explorer", "panel-progress"))
                   for pid, name, inner, hint in panels)
    return document(title, f'<header><h1>{html.escape(title)}</h1><p class="status" id="status">connecting ...</p>'
                           f"</header><main>{body}</main>",
                    css=CSS + LIVE_CSS, scripts=(EXPLORER_JS, LIVE_JS), plotly=True)


def watch_app(run_dir: str | Path, *, poll_seconds: float = 0.5, heartbeat_seconds: float = 15.0) -> FastAPI:
    """The live view of ``run_dir``: the page at /, its state at /state, each new state at /events."""
    run = LiveRun(run_dir)
    lock = threading.Lock()  # one reader of the store at a time; handlers run on a thread pool
    page = live_page(Path(run_dir))
    app = FastAPI(title="testtime watch", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.closing = closing = threading.Event()  # set: open event streams end, so a stop is prompt

    def current() -> dict:
        with lock:
            run.refresh()
            return run.state()

    @app.get("/", response_class=HTMLResponse)
    def index():
        return page

    @app.get("/state")
    def state():
        return JSONResponse(finite(current()))

    @app.get("/question")
    def question(id: str):
        with lock:
            run.refresh()
            entry = run.question(id)
        if entry is None:
            return JSONResponse({"error": f"question {id!r} has no finished answer in {run_dir}"}, 404)
        return JSONResponse(finite(entry))

    @app.get("/events")
    async def events(request: Request):
        async def stream():
            sent, beat = None, time.monotonic()
            while not closing.is_set() and not await request.is_disconnected():
                now = await asyncio.to_thread(current)
                if now["version"] != sent:
                    sent, beat = now["version"], time.monotonic()
                    yield f"data: {embed_json(now)}\n\n"
                elif time.monotonic() - beat > heartbeat_seconds:  # keeps proxies from closing an idle stream
                    beat = time.monotonic()
                    yield ": still here\n\n"
                await asyncio.sleep(poll_seconds)
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app


class Background:
    """An ASGI app served by uvicorn on a thread, until ``close``; ``url`` once it listens."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, *, graceful_seconds: float | None = 5):
        import uvicorn

        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                    timeout_graceful_shutdown=graceful_seconds))
        self.thread = threading.Thread(target=self.server.run, name="testtime-watch", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"could not listen on {host}:{port} (the port may be taken, or the address "
                              "is not one of this machine's)")
            time.sleep(0.02)
        bound = self.server.servers[0].sockets[0].getsockname()
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.url = f"http://{shown}:{bound[1]}/"

    def close(self, timeout: float = 10) -> None:
        closing = getattr(self.app.state, "closing", None)
        if closing is not None:
            closing.set()
        self.server.should_exit = True
        self.thread.join(timeout=timeout)
