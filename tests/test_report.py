"""The offline HTML report and its PNGs, built from a small fake run (see report_fixture.py)."""

from __future__ import annotations

import copy
import json
import re
import struct

import pytest
from plotly.offline import get_plotlyjs

from report_fixture import HOSTILE, build_report, fake_run, make_tasks
from testtime.analysis.sweep import SweepAnalysis
from testtime.answers import answers_match
from testtime.report import explorer_data, write_report

PANELS = ["panel-tokens", "panel-flops", "panel-coverage", "panel-compute-optimal", "panel-difficulty", "panel-ratio",
          "panel-train-test", "panel-points", "panel-explorer"]
FIGURES = {"tokens", "flops", "coverage", "compute-optimal", "difficulty", "ratio"}
PNGS = ["accuracy_vs_tokens.png", "accuracy_vs_flops.png", "coverage.png", "compute_optimal.png"]


def embedded(page: str) -> dict:
    """The page's JSON, parsed strictly: NaN or Infinity would break JSON.parse in the browser."""
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert match, "no embedded data"

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(match.group(1), parse_constant=refuse)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    paths, scaling, explorer = build_report(run_dir)
    return run_dir, paths, scaling, explorer, (run_dir / "report.html").read_text(encoding="utf-8")


def test_writes_the_page_and_every_png(report):
    run_dir, paths, *_ = report
    assert paths == [run_dir / "report.html", *(run_dir / name for name in PNGS)]
    for name in PNGS:
        width, height = png_size((run_dir / name).read_bytes())
        assert width > 300 and height > 200
    assert not list(run_dir.glob(".*.tmp")), "a temporary file was left behind"


def test_the_page_is_self_contained(report):
    page = report[-1]
    assert not re.search(r"<script[^>]*\ssrc\s*=", page, re.I), "a script is loaded from elsewhere"
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']https?:", page, re.I), "a stylesheet is loaded from elsewhere"
    assert page.count(get_plotlyjs()) == 1, "plotly's JS must be inlined exactly once"


def test_the_embedded_json_round_trips(report):
    _, _, scaling, explorer, page = report
    data = embedded(page)
    assert set(data["figures"]) == FIGURES
    assert len(data["scaling"]["points"]) == len(scaling["points"])
    assert data["scaling"]["train_vs_test"] == scaling["train_vs_test"]
    assert [q["id"] for q in data["explorer"]] == [t.id for t in make_tasks()]
    assert data["explorer"] == json.loads(json.dumps(explorer))
    assert data["meta"]["model"] == "scripted fake"
    # NaN (a two-point fit has no slope error) became null rather than breaking JSON.parse
    fits = data["scaling"]["fits"]["beam_search"]["tokens"]
    assert fits["points"] == 2 and fits["b_stderr"] is None


def test_every_panel_and_plot_is_there(report):
    page = report[-1]
    for pid in PANELS:
        assert f'id="{pid}"' in page
    for key in FIGURES:
        assert f'id="plot-{key}" data-figure="{key}"' in page
    assert "Not available" not in page
    assert 'id="question-select"' in page
    assert "<h1>Fake scaling sweep</h1>" in page and "synthetic addition" in page
    # the tables: best per level, efficiency ratios, train vs test, all points
    assert "Best strategy per level" in page and "baseline tokens to match" in page
    assert "regression to the mean" in page  # the levels' caveat beside them
    # each budget also set against the best single strategy that fits its cost, with the verdict
    fixed = report[2]["compute_optimal"]["curve"][-1]["versus_best_fixed"]
    assert "policy − best single strategy within the limit" in page
    assert f"{fixed['strategy']}: {fixed['difference'] * 100:+.1f} pp" in page
    assert "X = Nl/Ns + 3 (Nl Dl - Ns Ds)" in page and "small flops per query allowed" in page
    assert "temperature=0.8, top_p=1, max_tokens=256" in page  # nested meta, compact
    assert page.count("<tr>") > len(report[2]["points"])


def test_a_question_cannot_break_out_of_the_script(report):
    page = report[-1]
    assert HOSTILE not in page and "<b>x" not in page
    assert page.count("</script>") == len(re.findall(r"<script[\s>]", page))
    assert any(q["question"].endswith(HOSTILE) for q in embedded(page)["explorer"])


def test_explorer_data_has_one_view_per_unit():
    tasks = make_tasks(6)
    units = fake_run(tasks, seeds=(0,))
    explorer = explorer_data(units, limit_chars=12)
    assert [q["id"] for q in explorer] == [t.id for t in tasks]
    q = explorer[0]
    assert q["gold"] == tasks[0].answer and q["question"] == tasks[0].question
    assert [(v["strategy"], v["budget"], v["seed"], v["kind"]) for v in q["views"]] == [
        ("pool", 8, 0, "pool"), ("beam_search", 2, 0, "tree"), ("beam_search", 4, 0, "tree"),
        ("revisions", 4, 0, "chains")]
    pool, beam, revised = q["views"][0], q["views"][2], q["views"][3]
    assert len(pool["candidates"]) == 8 and pool["tree"] is None
    for c in pool["candidates"]:
        assert c["correct"] == answers_match(c["answer"], q["gold"])
        assert len(c["text"]) <= 12
    # the chosen path runs from the root to the chosen candidate, through parent links
    full = next(line for d, ls in units if d["budget"] == 4 and d["strategy"] == "beam_search" for line in ls
                if line["id"] == q["id"])
    nodes = {n["id"]: n for n in full["tree"]["nodes"]}
    assert beam["path"][0] == 0 and len(beam["path"]) == 4  # root and three steps
    assert all(nodes[child]["parent"] == parent for parent, child in zip(beam["path"], beam["path"][1:]))
    assert "".join(nodes[i]["text"] for i in beam["path"]) == full["candidates"][full["chosen"]]["text"]
    assert beam["prediction"] == full["prediction"]
    # Revision chains index their attempts among the candidates, chain by chain, with each chain's choice.
    line = next(line for d, ls in units if d["strategy"] == "revisions" for line in ls if line["id"] == q["id"])
    assert [c["attempts"] for c in revised["chains"]] == [[0, 1], [2, 3]]
    assert [c["seen"] for c in revised["chains"]] == [[0, 1], [0, 1]]
    assert [c["choice"] for c in revised["chains"]] == line["chain_choices"]
    assert revised["chosen"] in line["chain_choices"] and len(revised["candidates"]) == 4


def test_missing_data_shows_notes_instead_of_plots(tmp_path):
    units = [u for u in fake_run(make_tasks(6), seeds=(0,)) if u[0]["strategy"] != "pool"]
    scaling = SweepAnalysis(units).to_dict()  # no pool: no coverage, difficulty or compute-optimal policy
    (tmp_path / "coverage.png").write_bytes(b"stale")
    paths = write_report(tmp_path, scaling, [], title="searches only", meta={})
    assert [p.name for p in paths] == ["report.html", "accuracy_vs_tokens.png", "accuracy_vs_flops.png"]
    assert not (tmp_path / "coverage.png").exists(), "a PNG from an earlier report was left beside this one"
    page = paths[0].read_text(encoding="utf-8")
    # coverage, compute-optimal, difficulty, sequential vs parallel, train vs test, explorer
    assert page.count('class="na"') == 6
    assert "Not available: the run has no sample pool" in page
    assert "Not available: no larger model was compared" in page
    assert set(embedded(page)["figures"]) == {"tokens", "flops"}


def test_an_interrupted_run_is_analysed_on_its_finished_units_and_says_what_it_left_out(tmp_path):
    units = fake_run(make_tasks(6), seeds=(0,))
    whole = SweepAnalysis(units).to_dict()
    # the run stopped two questions into its beam search at budget 4
    cut = [(d, lines[:2] if (d["strategy"], d["budget"]) == ("beam_search", 4) else lines) for d, lines in units]
    scaling = SweepAnalysis(cut).to_dict()
    assert scaling["questions"] == 6 and scaling["unfinished"] == [{"unit": "beam_search@4 seed 0", "questions": 2, "of": 6}]
    # the unfinished unit is no point at all (its four missing questions are not wrong answers); the rest are as before
    assert [(p["strategy"], p["budget"]) for p in scaling["points"]] == \
        [(p["strategy"], p["budget"]) for p in whole["points"] if (p["strategy"], p["budget"]) != ("beam_search", 4)]
    assert whole["unfinished"] == []
    page = write_report(tmp_path, scaling, [], title="interrupted", meta={})[0].read_text(encoding="utf-8")
    assert "beam_search@4 seed 0 (2 of 6 questions)" in page


def test_the_ratio_panel_puts_each_split_of_one_budget_on_the_chains_axis(report):
    from testtime.report.figures import ratio_figure, ratio_points

    scaling = report[2]
    # The fake run: revisions in 2 chains of 2 at budget 4, and majority@4 (4 chains of 1) from the pool.
    assert ratio_points(scaling) == (4, {2: "revisions@4", 4: "majority@4"})
    fig, why = ratio_figure(scaling)
    levels = [row for row in scaling["difficulty"]["oracle"] if row["questions"]]
    assert why is None and len(fig["data"]) == len(levels)
    for trace, row in zip(fig["data"], levels):
        assert trace["x"] == [2, 4] and trace["y"] == [row["points"]["revisions@4"], row["points"]["majority@4"]]
    alone = {**scaling, "points": [p for p in scaling["points"] if p["strategy"] != "majority"]}
    assert ratio_points(alone) is None  # one split is no comparison


def test_coverage_error_and_lower_bound_efficiency(tmp_path, report):
    scaling = copy.deepcopy(report[2])
    scaling["coverage"] = {"error": "the coverage law needs at least two pass@k values strictly between 0 and 1"}
    row = scaling["compute_optimal"]["curve"][-1]
    row.update(efficiency=None, efficiency_at_least=1.5, baseline_tokens_to_match=None)
    scaling["train_vs_test"] = None
    page = write_report(tmp_path, scaling, report[3], title="t", meta={})[0].read_text(encoding="utf-8")
    assert "Not available: coverage law not fitted: the coverage law needs" in page
    assert "≥ 1.50×" in page
    assert 'id="plot-coverage"' in page  # the pass@k points still plot without the law


@pytest.mark.parametrize("lo,hi", [(20, 118), (68e3, 132e3), (40e3, 236e3), (10, 1e6)])
def test_log_axis_ticks_are_round_and_enough(lo, hi):
    from testtime.report.figures import log_ticks

    inside = [t for t in log_ticks([lo, hi]) if lo <= t <= hi]
    assert len(inside) >= 4
    assert all(float(f"{t:.2g}") == t for t in inside)  # 20, 30, 1.2e5: no 23.7
