"""The page's stylesheet and script, inlined into report.html (the file must work offline)."""

CSS = """
:root { --ink: #1d2430; --muted: #5b6573; --line: #dde2e8; --bg: #f5f7fa; --good: #1a7f37; --bad: #c0392b;
        --path: #fff4c2; --accent: #2f6fdf; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: var(--bg); }
header { background: #18202c; color: #fff; padding: 18px 28px 14px; }
header h1 { margin: 0 0 6px; font-size: 22px; font-weight: 600; }
header dl { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 0; color: #c9d2de; }
header dt { display: inline; font-weight: 600; color: #fff; margin-right: 4px; }
header dd { display: inline; margin: 0; }
nav { padding: 8px 28px; background: #fff; border-bottom: 1px solid var(--line); position: sticky; top: 0; z-index: 5; }
nav a { color: var(--accent); text-decoration: none; margin-right: 16px; white-space: nowrap; }
main { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 18px; padding: 18px 28px 40px;
       max-width: 1500px; margin: 0 auto; }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; min-width: 0; }
.panel.wide { grid-column: 1 / -1; }
@media (max-width: 1000px) { main { grid-template-columns: minmax(0, 1fr); } }
.panel h2 { font-size: 16px; margin: 0 0 4px; }
.hint { color: var(--muted); margin: 0 0 8px; font-size: 13px; }
.na { color: var(--muted); font-style: italic; background: var(--bg); border-radius: 6px; padding: 10px 12px; }
.plot { width: 100%; min-height: 430px; }
.scroll { overflow-x: auto; max-height: 520px; }
table { border-collapse: collapse; font-size: 13px; margin-top: 8px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { background: #f0f3f7; position: sticky; top: 0; white-space: normal; vertical-align: bottom; }
td.text, th.text { text-align: left; }
.good { color: var(--good); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
#question-select { max-width: 100%; font: inherit; padding: 4px; margin: 4px 0 10px; }
.question { white-space: pre-wrap; background: var(--bg); border-radius: 6px; padding: 8px 12px; margin: 0 0 6px; }
.views { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 12px; margin-top: 10px; }
.view { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 0; }
.view h3 { font-size: 14px; margin: 0 0 4px; }
.view .verdict { margin: 0 0 6px; }
.tree-box, .pool-box { max-height: 420px; overflow: auto; }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 16px; border-left: 1px dashed var(--line); }
ul.tree { padding-left: 4px; border-left: none; }
ul.tree li { margin: 3px 0; }
.node { display: inline-block; padding: 1px 6px; border-radius: 4px; }
.node.on-path { background: var(--path); outline: 1px solid #e6c200; }
.step { white-space: pre-wrap; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.badge { display: inline-block; font-size: 11px; padding: 0 5px; border-radius: 8px; margin-left: 6px;
         background: #eef1f5; color: var(--muted); }
.badge.end { background: #e3ecff; color: #244c9c; }
.badge.chosen { background: var(--path); color: #6b5500; }
ol.pool { margin: 0; padding-left: 26px; }
ol.pool li { margin: 2px 0; }
ol.pool li.chosen { background: var(--path); }
details summary { cursor: pointer; }
"""

EXPLORER_JS = r"""
// The search explorer, shared by report.html and the live view: window.testtimeExplorer.
(function () {
  "use strict";
  // Elements are built with textContent only, so no run text is ever parsed as HTML.
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function num(v, digits) { return v === null || v === undefined ? "—" : Number(v).toFixed(digits); }
  let graded = true;  // false for a question with no gold answer (a served request): no right or wrong marks
  function mark(ok) { return graded ? el("span", ok ? "good" : "bad", ok ? "✓" : "✗") : el("span"); }

  function treeView(view) {
    const children = new Map();
    let root = null;
    view.tree.forEach(function (n) {
      if (n.parent === null) { root = n; return; }
      if (!children.has(n.parent)) children.set(n.parent, []);
      children.get(n.parent).push(n);
    });
    const onPath = new Set(view.path || []);
    function item(n) {
      const li = el("li");
      const box = el("span", "node" + (onPath.has(n.id) ? " on-path" : ""));
      box.appendChild(el("span", "step", n.parent === null ? "(start)" : n.text.trim()));
      if (n.score !== null) box.appendChild(el("span", "badge", "score " + num(n.score, 2)));
      if (n.kind !== "step") box.appendChild(el("span", "badge", n.kind));
      if (n.terminal) box.appendChild(el("span", "badge end", "■ " + (n.end || "end")));
      li.appendChild(box);
      const kids = children.get(n.id);
      if (kids) {
        const ul = el("ul");
        kids.forEach(function (k) { ul.appendChild(item(k)); });
        li.appendChild(ul);
      }
      return li;
    }
    const ul = el("ul", "tree");
    if (root) ul.appendChild(item(root));
    const box = el("div", "tree-box");
    box.appendChild(ul);
    return box;
  }

  function poolView(view, indices, chainChoice, seen) {
    const ol = el("ol", "pool");
    (indices || view.candidates.map(function (_, i) { return i; })).forEach(function (i, k) {
      const c = view.candidates[i];
      const li = el("li", i === view.chosen ? "chosen" : "");
      const details = el("details");
      const summary = el("summary");
      const program = !!c.verdict;  // a code candidate: its answer is a program, graded by hidden tests
      summary.appendChild(el("span", null, program ? "program " :
                                         "answer " + (c.answer === null ? "(none)" : c.answer) + " "));
      summary.appendChild(mark(c.correct));
      if (program) summary.appendChild(el("span", "badge", "hidden tests: " + c.verdict.status));
      summary.appendChild(el("span", "badge", "score " + num(c.score, 2)));
      summary.appendChild(el("span", "badge", c.tokens + " tok"));
      if (seen) summary.appendChild(el("span", "badge", "saw " + seen[k] + " earlier"));
      if (i === chainChoice) summary.appendChild(el("span", "badge", "chain's choice"));
      if (i === view.chosen) summary.appendChild(el("span", "badge chosen", "chosen"));
      details.appendChild(summary);
      details.appendChild(el("div", "step", c.text));
      if (program) {
        details.appendChild(el("div", "step", "the program run:\n" + (c.answer === null ? "(none)" : c.answer)));
        if (c.verdict.error) details.appendChild(el("div", "step", "hidden tests: " + c.verdict.error +
                                                    (c.verdict.stderr ? "\n" + c.verdict.stderr : "")));
      }
      li.appendChild(details);
      ol.appendChild(li);
    });
    const box = el("div", "pool-box");
    box.appendChild(ol);
    return box;
  }

  function chainsView(view) {
    const box = el("div", "pool-box");
    view.chains.forEach(function (chain, k) {
      box.appendChild(el("h4", null, "chain " + (k + 1) + " · " + chain.attempts.length + " attempts, each revising the last"));
      box.appendChild(poolView(view, chain.attempts, chain.choice, chain.seen));
    });
    return box;
  }

  // One question's entry (report.explorer_data) into a container: every unit's answer to it.
  function show(q, out) {
    graded = q.gold !== null;
    out.replaceChildren();
    out.appendChild(el("p", "question", q.question));
    if (graded) {
      const gold = el("p", null, "Gold answer: ");
      gold.appendChild(el("strong", null, q.gold));
      out.appendChild(gold);
    }
    const views = el("div", "views");
    q.views.forEach(function (v) {
      const card = el("div", "view");
      card.dataset.kind = v.kind;
      card.appendChild(el("h3", null, v.strategy + "@" + v.budget + " · seed " + v.seed +
                                       (v.kind === "tree" ? " · tree of " + v.tree.length + " nodes" :
                                        v.kind === "chains" ? " · " + v.chains.length + " revision chains" :
                                        " · " + v.candidates.length + " samples")));
      const verdict = el("p", "verdict", "prediction " + (v.prediction === null ? "(none)" : v.prediction) +
                                         (graded ? " vs gold " + q.gold + " " : ""));
      verdict.appendChild(mark(v.correct));
      card.appendChild(verdict);
      card.appendChild(v.kind === "tree" ? treeView(v) : v.kind === "chains" ? chainsView(v) : poolView(v));
      views.appendChild(card);
    });
    out.appendChild(views);
  }

  window.testtimeExplorer = {el: el, num: num, mark: mark, show: show};
})();
"""

JS = r"""
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const explorer = window.testtimeExplorer;

  // Plots: every .plot div names its figure in data.figures.
  document.querySelectorAll(".plot").forEach(function (div) {
    const fig = data.figures[div.dataset.figure];
    Plotly.newPlot(div, fig.data, fig.layout, {responsive: true, displaylogo: false});
  });

  const select = document.getElementById("question-select");
  const out = document.getElementById("explorer-view");
  if (select && data.explorer.length) {
    data.explorer.forEach(function (q, i) {
      const text = q.id + " — " + q.question.replace(/\s+/g, " ");
      select.appendChild(explorer.el("option", null, text.length > 110 ? text.slice(0, 109) + "…" : text)).value = i;
    });
    select.addEventListener("change", function () { explorer.show(data.explorer[Number(select.value)], out); });
    explorer.show(data.explorer[0], out);
  }
})();
"""
