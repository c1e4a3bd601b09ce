"""One real browser: Debian's chromium, driven by Playwright, against `streamlit run app.py` on loopback."""

from __future__ import annotations

import os

import pytest

from tests.app_server import CHROMIUM_FLAGS, PREDICTION_SELECTOR, chromium_path, running_app, wait_for_health
from tests.conftest import PROJECT_ROOT

SCREENSHOT = PROJECT_ROOT / "artifacts" / "browser-home.png"


def test_home_page_in_chromium():
    executable = chromium_path()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with running_app() as url:
        wait_for_health(url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url, wait_until="domcontentloaded")
                page.wait_for_selector(PREDICTION_SELECTOR, timeout=120_000)
                page.wait_for_selector("text=Model card", timeout=60_000)
                page.wait_for_selector("text=Clean accuracy", timeout=60_000)
                page.wait_for_selector("text=true:", timeout=60_000)
                body = page.inner_text("body")
                SCREENSHOT.parent.mkdir(exist_ok=True)
                page.screenshot(path=str(SCREENSHOT), full_page=True)
            finally:
                browser.close()
    assert "fmnist-standard" in body
    assert body.count("true:") == 12
    assert "Traceback" not in body and "Error" not in body.split("Try your own image")[0]
    assert SCREENSHOT.stat().st_size > 10_000
