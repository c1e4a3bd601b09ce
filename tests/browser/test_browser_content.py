"""What the pages draw and say, read in a real browser, in both worlds and on every tour step:

- every plotly chart holds at least one trace with data, every map (heatmap) has non-constant values, and every
  bar has a label;
- every claim the scorecard does not rate `reproduces` is said as such on its own page ("does not reproduce" /
  "partly reproduces"), and no page states the papers' conclusions as settled facts;
- the home page's neutralization headline is never a control row.
"""

from __future__ import annotations

import json

import pytest

from sia_core.claims import Scorecard
from sia_core.paths import PRECOMPUTED_DIR
from tests.app_server import browser_on_app

WORLDS = {"fashion-mnist": "", "cifar10": "dataset_choice=cifar10-subset&model_id=cifar10-standard"}
PAGES = ("", "sia_explore", "sia_diagnosis", "regions", "margins", "features", "sia_robustify", "claims")
CHARTLESS = ("", "claims")  # the home page (metrics and a gallery) and the table of verdicts
# sentences the app once printed whatever its numbers said
OVERCLAIMS = ("Reproduces, at this machine's scale", "datasets whose labels look wrong to a person but still teach",
              "a natural-looking edit", "SIA wins at the same budget")
VERDICT_PHRASES = {"does-not-reproduce": "does not reproduce", "partly": "partly reproduces"}

# every chart on the page: its traces' types, how many points each holds, whether a heatmap varies, and the bars'
# category labels (Plotly keeps the figure on the graph div as `data`)
CHARTS_JS = """
() => {
  const flat = v => v == null ? [] : ArrayBuffer.isView(v) ? Array.from(v) : Array.isArray(v) ? v.flatMap(flat) : [v];
  return [...document.querySelectorAll('.js-plotly-plot')].map(plot => (plot._fullData || plot.data || []).map(
    trace => {
      const values = flat(trace.z || trace.values || trace.y || trace.x);
      const finite = values.filter(v => typeof v === 'number' && isFinite(v));
      const categories = trace.type === 'bar' ? flat(trace.orientation === 'h' ? trace.y : trace.x) : [];
      return {type: trace.type || 'scatter', points: values.length, name: String(trace.name || ''),
              varies: finite.length > 1 && Math.min(...finite) !== Math.max(...finite),
              unlabelled: categories.filter(c => c === null || String(c).trim() === '').length};
    }));
}
"""


def _check_charts(charts: list, where: str) -> None:
    assert charts, f"{where}: no chart"
    for index, traces in enumerate(charts):
        assert any(trace["points"] > 0 for trace in traces), f"{where}: chart {index} has no data"
        for trace in traces:
            if trace["type"] == "heatmap":
                assert trace["varies"], f"{where}: chart {index}'s map {trace['name']!r} is constant"
            assert trace["unlabelled"] == 0, f"{where}: chart {index} has bars without a label"


def _wait_for_page(page, url: str, path: str, query: str) -> None:
    page.goto(f"{url}/{path}?{query}", wait_until="domcontentloaded")
    page.wait_for_selector("[data-testid=stSidebar]", timeout=180_000)
    if path not in ("sia_explore", "claims"):
        page.wait_for_selector("text=Precomputed by", timeout=180_000)
    if path not in CHARTLESS:
        page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    page.wait_for_timeout(2500)  # the last charts of the page settle


# each table's (scroll width, visible width) in pixels: a scroll width above the visible one scrolls sideways
TABLE_WIDTHS_JS = """() => [...document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')]
    .map(scroller => [scroller.scrollWidth, scroller.clientWidth])"""


@pytest.mark.parametrize("world", list(WORLDS))
def test_every_chart_holds_data_and_every_unreproduced_claim_is_said_on_its_page(world, tmp_path):
    query = WORLDS[world]
    card = Scorecard.from_json(json.loads((PRECOMPUTED_DIR / f"claims-{world}.json").read_text()))
    bodies = {}
    with browser_on_app(log=tmp_path / "server.log") as (browser, url):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for path in PAGES:
            _wait_for_page(page, url, path, query)
            if path not in CHARTLESS:
                _check_charts(page.evaluate(CHARTS_JS), f"{world}/{path or 'home'}")
            if path == "features":  # its tables fit a 1,400-px page: no sideways scroll (the paper's numbers inside)
                widths = page.evaluate(TABLE_WIDTHS_JS)
                assert widths and all(scroll <= client + 1 for scroll, client in widths), (world, widths)
            bodies[path] = page.inner_text("body")
    assert "Traceback" not in (tmp_path / "server.log").read_text(errors="replace")
    for path, body in bodies.items():
        for sentence in OVERCLAIMS:
            assert sentence not in body, f"{world}/{path}: {sentence!r}"
    for claim in card.claims:
        phrase = VERDICT_PHRASES.get(claim.verdict)
        if phrase is not None and claim.page in bodies:
            assert phrase in bodies[claim.page].lower(), f"{world}/{claim.page}: {claim.id} is {claim.verdict}"
    # the home page's neutralization headline is a deployable mask, said beside its control and verdict
    home = bodies[""]
    headline = home[home.index("best deployable neutralization"):][:300]
    assert "a random mask of" in headline and "of the pixels" in headline
    neutralization = card.by_id()["neutralizing-roa-defends"]
    if neutralization.verdict != "reproduces":
        assert "as a defense: " + VERDICT_PHRASES[neutralization.verdict].replace("does not reproduce",
                                                                                  "does not reproduce here") \
            in headline.lower()


def test_every_tour_step_draws_charts_with_data_and_labels(tmp_path):
    with browser_on_app(log=tmp_path / "server.log") as (browser, url):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/tour", wait_until="domcontentloaded")
        for step in range(1, 8):
            if step > 1:
                page.get_by_role("button", name="Next →").click(timeout=120_000)
            page.wait_for_selector(f"text=Step {step} of 7", timeout=120_000)
            page.wait_for_selector(".js-plotly-plot", timeout=180_000)
            page.wait_for_timeout(2500)
            _check_charts(page.evaluate(CHARTS_JS), f"tour step {step}")
    assert "Traceback" not in (tmp_path / "server.log").read_text(errors="replace")


def test_hostile_links_load_every_page_quickly_with_a_notice(tmp_path):
    import time
    from urllib.parse import urlencode

    from tests.app.test_app_links import HOSTILE

    query = urlencode(HOSTILE)
    with browser_on_app(log=tmp_path / "server.log") as (browser, url):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/?", wait_until="domcontentloaded")  # a warm server: the first page pays the imports
        page.wait_for_selector("[data-testid=stSidebar]", timeout=180_000)
        for path in (*PAGES, "tour"):
            started = time.perf_counter()
            page.goto(f"{url}/{path}?{query}", wait_until="domcontentloaded")
            page.wait_for_selector("[data-testid=stSidebar]", timeout=60_000)
            if path != "tour":  # the tour reads no value from a link: nothing to ignore, so nothing to say
                page.wait_for_selector("text=Ignored from the link", timeout=60_000)  # names what the link lost
            else:
                page.wait_for_selector(".js-plotly-plot", timeout=60_000)
            seconds = time.perf_counter() - started
            body = page.inner_text("body")
            assert "Traceback" not in body and seconds < 30, (path, seconds)
    assert "Traceback" not in (tmp_path / "server.log").read_text(errors="replace")
