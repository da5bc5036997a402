"""/ui: the server's live view of its latest requests: strategy, progress, tree or samples, cost.

The page itself holds no data; it asks /ui/state, which is behind the server's API keys as
/v1 is (the page asks for a key and keeps it in the tab's sessionStorage). Any key opens every
request's view, prompts included: give /ui keys only to those who may read all traffic.
"""

from __future__ import annotations

import html

from testtime.report.assets import CSS, EXPLORER_JS
from testtime.report.explorer import explorer_data
from testtime.report.page import document, panel
from testtime.server.scheduler import Job

SHOWN_MESSAGES = 20  # a request's latest progress messages


def request_line(job: Job) -> dict:
    """What the request holds, as a result line the explorer reads: its answer when done, else the
    strategy's tree or samples so far. No gold answer: a served request has none."""
    base = {"id": job.task.id, "question": job.task.question, "gold": "", "prediction": None, "correct": False,
            "chosen": None, "candidates": []}
    if job.state == "done":
        result = job.future.result()
        return {**base, "prediction": result.prediction, "chosen": result.chosen_index,
                "candidates": [c.to_dict() for c in result.candidates],
                **({"tree": result.details["tree"]} if result.details.get("tree") else {}),
                **({k: result.details[k] for k in ("chains", "chain_choices") if k in result.details})}
    holding = job.holding or {}
    return {**base, "candidates": holding.get("candidates", []), **({"tree": holding["tree"]} if "tree" in holding else {})}


def request_view(job: Job, now: float) -> dict:
    shown = job.shown or job.strategy.describe()
    ended = job.ended if job.ended is not None else now
    view = {"id": job.task.id, "strategy": shown.get("strategy", job.strategy.name), "budget": shown.get("budget"),
            "params": {k: v for k, v in shown.items() if k not in ("strategy", "budget")},
            "verifier": job.verifier_name, "state": job.state, "submitted": job.submitted,
            "seconds": ended - job.began if job.began is not None else 0.0,
            "messages": job.log[-SHOWN_MESSAGES:], "usage": None}
    if job.state == "done":
        view["usage"] = job.future.result().ledger.to_dict()
    [entry] = explorer_data([({"strategy": view["strategy"], "budget": view["budget"], "seed": job.seed},
                              [request_line(job)])])
    view["explorer"] = {**entry, "gold": None}  # ungraded: the page shows no right or wrong marks
    return view


def ui_state(jobs: list[Job], now: float) -> dict:
    """The latest requests, newest first."""
    return {"requests": [request_view(job, now) for job in reversed(jobs)]}


UI_JS = r"""
(function () {
  "use strict";
  const E = window.testtimeExplorer;
  const status = document.getElementById("status"), list = document.getElementById("requests");
  const keyBox = document.getElementById("key");
  keyBox.value = sessionStorage.getItem("testtime-key") || "";
  document.getElementById("key-form").addEventListener("submit", function (e) {
    e.preventDefault();
    sessionStorage.setItem("testtime-key", keyBox.value);
    poll();
  });
  let open = new Set();

  function card(r) {
    const box = E.el("details", "view request");
    box.dataset.id = r.id;
    box.dataset.state = r.state;
    box.open = open.has(r.id);
    box.addEventListener("toggle", function () { if (box.open) open.add(r.id); else open.delete(r.id); });
    const summary = E.el("summary");
    summary.appendChild(E.el("span", "badge state", r.state));
    summary.appendChild(E.el("span", null, " " + r.strategy + "@" + r.budget + " · " + r.seconds.toFixed(1) + " s · "));
    summary.appendChild(E.el("span", "question", r.explorer.question.replace(/\s+/g, " ").slice(0, 100)));
    if (r.usage) summary.appendChild(E.el("span", "badge usage", r.usage.completion_tokens + " completion + " +
      r.usage.prompt_tokens + " prompt tokens (" + r.usage.cached_prompt_tokens + " cached), " +
      r.usage.verifier_tokens + " verifier"));
    box.appendChild(summary);
    const facts = "verifier " + (r.verifier || "none") +
      (Object.keys(r.params).length ? " · " + JSON.stringify(r.params) : "");
    box.appendChild(E.el("p", "hint", facts));
    if (r.messages.length) box.appendChild(E.el("pre", "messages", r.messages.join("\n")));
    const view = E.el("div", "explorer");
    E.show(r.explorer, view);
    box.appendChild(view);
    return box;
  }

  function poll() {
    const key = sessionStorage.getItem("testtime-key") || "";
    fetch("ui/state", {headers: key ? {"Authorization": "Bearer " + key} : {}})
      .then(function (r) {
        if (r.status === 401) throw new Error("the server wants an API key (enter it above)");
        if (!r.ok) throw new Error("the server answered " + r.status);
        return r.json();
      })
      .then(function (state) {
        list.replaceChildren();
        state.requests.forEach(function (r) { list.appendChild(card(r)); });
        const running = state.requests.filter(function (r) { return r.state === "running"; }).length;
        status.textContent = state.requests.length + " recent requests, " + running + " running";
        status.className = "status";
      })
      .catch(function (err) { status.textContent = String(err.message || err); status.className = "status gone"; });
  }
  poll();
  setInterval(poll, 500);
})();
"""

UI_CSS = """
.status { margin: 6px 0 12px; font-weight: 600; }
.status.gone { color: #b00020; }
details.request { margin: 8px 0; padding: 6px 10px; }
details.request[data-state=running] .state { background: #fff3c4; }
pre.messages { font-size: 12px; max-height: 160px; overflow: auto; background: #f6f6f6; padding: 6px; }
"""


def ui_page(served_model: str) -> str:
    title = f"testtime serve: {served_model}"
    header = (f"<header><h1>{html.escape(title)}</h1>"
              '<form id="key-form"><label>API key <input id="key" type="password" autocomplete="off"></label> '
              '<button type="submit">use</button></form><p class="status" id="status">connecting ...</p></header>')
    requests = panel("panel-requests", "Latest requests", '<div id="requests"></div>',
                     "Newest first: each request's strategy, its progress, its tree or samples as they grow, "
                     "and when done its answer and what it cost.", wide=True)
    return document(title, f"{header}<main>{requests}</main>", css=CSS + UI_CSS, scripts=(EXPLORER_JS, UI_JS))
