"""Six people open a freshly started server at the same moment: every session gets its charts, and the server log
shows no traceback (the libraries are imported before the first session, by sia_app/serve.py)."""

from __future__ import annotations

import os

import pytest

from tests.app_server import CHROMIUM_FLAGS, chromium_path, running_app, wait_for_health

SESSIONS = 6
CHARTS_ON_OPEN = 3  # the RoI vs RoA page draws the RoI map, the RoA map and their zones without a click


def test_six_sessions_on_a_cold_server_all_get_their_charts(tmp_path):
    executable = chromium_path()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    log = tmp_path / "server.log"
    with running_app(log=log) as url:
        wait_for_health(url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
            try:
                pages = [browser.new_context().new_page() for _ in range(SESSIONS)]
                for page in pages:  # each goto returns once the page starts loading: the sessions overlap
                    page.goto(f"{url}/regions", wait_until="commit")
                for page in pages:
                    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {CHARTS_ON_OPEN}",
                                           timeout=240_000)
                bodies = [page.inner_text("body") for page in pages]
            finally:
                browser.close()
    server_output = log.read_text(errors="replace")
    assert "Traceback" not in server_output and "partially initialized" not in server_output, server_output[-3000:]
    for body in bodies:
        assert "Region of Importance vs Region of Attack" in body and "Traceback" not in body
