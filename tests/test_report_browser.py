"""The HTML report in a real browser: headless Chromium (Debian packages chromium and
chromium-driver) driven by selenium. The page is opened from file:// with no network."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from report_fixture import HOSTILE, build_report

pytestmark = pytest.mark.browser

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def ensure_chromium() -> None:
    """Install the Debian packages when missing (CI runs as root); skip when that cannot be done."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium and chromium-driver are not installed, and apt-get cannot run here")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run("apt-get update && apt-get install -y chromium chromium-driver", shell=True, env=env,
                          capture_output=True, text=True, timeout=900)
    if done.returncode or not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"installing chromium failed: {(done.stdout + done.stderr)[-500:]}")


def chromium_driver():
    """Headless Chromium through selenium, its console log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium-manager would otherwise try to download one.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(120)
    return driver


def demo_report(request):
    """The report `testtime demo` wrote on the real model (the demo_run fixture runs it once)."""
    from testtime.report import explorer_data
    from testtime.store import RunStore

    run_dir = request.getfixturevalue("demo_run")
    store = RunStore(run_dir)
    try:
        return run_dir, explorer_data(store.lines_by_unit())
    finally:
        store.close()


# "crafted": a scripted run with exact, hostile content; "demo": the real demo's report.
@pytest.fixture(scope="module", params=["crafted", pytest.param("demo", marks=pytest.mark.engine)])
def page(request, tmp_path_factory):
    ensure_chromium()
    if request.param == "demo":
        run_dir, explorer = demo_report(request)
    else:
        run_dir = tmp_path_factory.mktemp("browser-run")
        _, _, explorer = build_report(run_dir)
    driver = chromium_driver()
    try:
        driver.get((run_dir / "report.html").as_uri())
        yield driver, run_dir, explorer, request.param
    finally:
        driver.quit()


def wait(driver, condition, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition(d))


def test_every_plot_renders_without_console_errors(page):
    driver, *_ = page
    plots = driver.find_elements("css selector", ".plot")
    assert len(plots) == (6 if page[3] == "crafted" else 5)  # the crafted run has revisions: the ratio plot
    wait(driver, lambda d: all(p.find_elements("css selector", ".main-svg") for p in plots))
    # and each drew its data: markers or bars with a size (an empty axis also has a .main-svg)
    drawn = driver.execute_script("""return Object.fromEntries([...document.querySelectorAll('.plot')].map(div =>
        [div.id, [...div.querySelectorAll('.point')].filter(e => { const b = e.getBBox();
                                                               return b.width > 0 && b.height > 0; }).length]))""")
    # The demo's weak model may score 0 on every level: zero-height bars, so there the bars may be empty.
    if page[3] == "demo":
        drawn.pop("plot-difficulty")
    assert all(n > 0 for n in drawn.values()), drawn
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    # offline: everything the page loaded came from the file itself
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(r.startswith(("file:", "data:", "blob:")) for r in resources), resources


def test_picking_a_question_shows_its_search_tree(page):
    from selenium.webdriver.support.ui import Select

    driver, _, explorer, _ = page
    # Crafted: the question with the hostile text, which must display as text, not markup.
    index = next((i for i, q in enumerate(explorer) if HOSTILE in q["question"]),
                 next(i for i, q in enumerate(explorer) if any(v["kind"] == "tree" for v in q["views"])))
    assert any(v["kind"] == "tree" for v in explorer[index]["views"])
    Select(driver.find_element("id", "question-select")).select_by_value(str(index))
    view = driver.find_element("id", "explorer-view")
    wait(driver, lambda d: explorer[index]["question"].split()[0] in view.find_element("css selector", ".question").text)
    assert not view.find_elements("css selector", ".question b")
    trees = view.find_elements("css selector", "ul.tree")
    assert len(trees) == sum(v["kind"] == "tree" for v in explorer[index]["views"])
    nodes = trees[-1].find_elements("css selector", "li")
    assert len(nodes) >= 2 and trees[-1].find_elements("css selector", "li ul li")  # nested
    on_path = trees[-1].find_elements("css selector", ".node.on-path")
    assert len(on_path) == len([v for v in explorer[index]["views"] if v["kind"] == "tree"][-1]["path"])
    assert trees[-1].find_elements("css selector", ".badge.end")  # terminal nodes are marked
    assert view.find_elements("css selector", "ol.pool li")  # and the pool's samples
    chains = [v for v in explorer[index]["views"] if v["kind"] == "chains"]
    headings = [h.text for h in view.find_elements("css selector", ".pool-box h4")]
    assert len(headings) == sum(len(v["chains"]) for v in chains) and all(h.startswith("chain ") for h in headings)
    if chains:  # the fake run has revisions; a demo run may not
        assert any("saw 1 earlier" in b.text for b in view.find_elements("css selector", ".badge"))


def test_screenshot(page):
    driver, run_dir, *_ = page
    driver.execute_script("window.scrollTo(0, 0)")
    # Grow the window to the page's height so one screenshot holds the whole report.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(height + 100, 12000))
    driver.execute_script("document.querySelectorAll('.plot').forEach(p => Plotly.Plots.resize(p))")
    shot = run_dir / "report.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("TESTTIME_SCREENSHOT"):
        target = Path(os.environ["TESTTIME_SCREENSHOT"])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
