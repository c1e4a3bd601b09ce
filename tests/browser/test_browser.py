"""One real browser: Debian's chromium, driven by Playwright, against `streamlit run app.py` on loopback."""

from __future__ import annotations

from tests.app_server import PREDICTION_SELECTOR, browser_on_app
from tests.conftest import PROJECT_ROOT

SCREENSHOT = PROJECT_ROOT / "artifacts" / "browser-home.png"


def test_home_page_in_chromium():
    with browser_on_app() as (browser, url):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector(PREDICTION_SELECTOR, timeout=120_000)
        page.wait_for_selector("text=Model card", timeout=60_000)
        page.wait_for_selector("text=Clean accuracy", timeout=60_000)
        page.wait_for_selector("text=true:", timeout=60_000)
        body = page.inner_text("body")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert "fmnist-standard" in body
    assert body.count("true:") == 12
    assert "Traceback" not in body and "Error" not in body.split("Try your own image")[0]
    assert SCREENSHOT.stat().st_size > 10_000
