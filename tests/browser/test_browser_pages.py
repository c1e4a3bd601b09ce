"""Demo and teach in a real browser: every lens page draws a figure with no click, the tour runs start to end, a
copied link restores the view in a fresh browser context, and a page's report downloads and opens with its
figures."""

from __future__ import annotations

import io
import zipfile


from sia_core.margins import ZOO_MODELS
from tests.app_server import browser_on_app

ZOO = list(ZOO_MODELS["fashion-mnist"])

PAGES_WITH_RESULTS = ("sia_diagnosis", "sia_robustify", "regions", "margins", "features")


def test_pages_open_on_results_links_restore_views_and_reports_download(tmp_path):
    with browser_on_app(log=tmp_path / "server.log") as (browser, url):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for path in PAGES_WITH_RESULTS:  # no click: the shipped result is drawn
            page.goto(f"{url}/{path}", wait_until="domcontentloaded")
            page.wait_for_selector("text=Precomputed by", timeout=180_000)
            page.wait_for_selector(".js-plotly-plot", timeout=60_000)

        # the report of the page on screen (features): a zip whose HTML opens with its figures
        with page.expect_download(timeout=120_000) as download:
            page.get_by_role("button", name="Download the report (HTML, PNG, CSV)").click()
        archive = zipfile.ZipFile(io.BytesIO(open(download.value.path(), "rb").read()))
        (tmp_path / "report.html").write_bytes(archive.read("report.html"))
        assert any(name.endswith(".csv") for name in archive.namelist())
        report = browser.new_page()
        report.goto((tmp_path / "report.html").as_uri())
        report.wait_for_selector(".js-plotly-plot", timeout=30_000)
        assert report.locator(".js-plotly-plot").count() >= 2

        # the margins page's zoo: clicking a model's dot opens that model's scatter
        page.goto(f"{url}/margins", wait_until="domcontentloaded")
        page.wait_for_selector("text=The zoo was computed by", timeout=180_000)
        card_line = page.locator("[data-testid=stMarkdownContainer] p").filter(has_text="here: τ")
        opened = next(model for model in ZOO if card_line.inner_text(timeout=60_000).startswith(model + " "))
        other = next(model for model in reversed(ZOO) if model != opened)
        ours = page.locator(".js-plotly-plot").first.locator(".scatterlayer .trace").nth(len(ZOO) + 1)
        dot = ours.locator("path.point").nth(ZOO.index(other))
        dot.scroll_into_view_if_needed(timeout=30_000)  # the takeaway above may push the chart below the fold
        box = dot.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_function("model => [...document.querySelectorAll('[data-testid=stMarkdownContainer] p')]"
                               ".some(p => p.innerText.includes('here: τ') && p.innerText.startsWith(model + ' '))",
                               arg=other, timeout=120_000)

        # a view named in the URL, then its copied link in a fresh context
        page.goto(f"{url}/regions?model_id=fmnist-robust&regions_q=35&regions_index=7",
                  wait_until="domcontentloaded")
        page.wait_for_selector('input[type=range][aria-label="Region size q (% of pixels in each region)"]',
                               timeout=120_000)
        page.get_by_text("Copy link to this view").click()
        link = page.locator("[data-testid=stCode] code").filter(has_text="regions_q=").first.inner_text()
        assert "model_id=fmnist-robust" in link and "regions_q=35" in link
        fresh = browser.new_context().new_page()
        fresh.goto(link, wait_until="domcontentloaded")
        slider = fresh.locator('input[type=range][aria-label="Region size q (% of pixels in each region)"]')
        slider.wait_for(timeout=120_000)
        assert slider.get_attribute("aria-valuetext") == "35"
        fresh.wait_for_selector("text=Model card", timeout=60_000)
        assert "fmnist-robust" in fresh.locator("[data-testid=stSidebar]").inner_text()

        # the claims scorecard: every claim with its verdict, the failed ones said plainly
        page.goto(f"{url}/claims", wait_until="domcontentloaded")
        page.wait_for_selector("text=Do the papers' claims hold here?", timeout=120_000)
        page.wait_for_selector("text=does not reproduce", timeout=60_000)

        # the guided tour, start to end
        page.goto(f"{url}/tour", wait_until="domcontentloaded")
        page.wait_for_selector("text=Step 1 of 7", timeout=120_000)
        for step in range(2, 8):  # one click per step, each once the previous step is drawn
            page.get_by_role("button", name="Next →").click(timeout=120_000)
            page.wait_for_selector(f"text=Step {step} of 7", timeout=120_000)
        page.wait_for_selector("text=7. Robust and non-robust features", timeout=120_000)
        page.wait_for_selector("text=Try this:", timeout=60_000)
    assert "Traceback" not in (tmp_path / "server.log").read_text(errors="replace")
