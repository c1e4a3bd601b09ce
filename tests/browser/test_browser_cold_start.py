"""Six people open a freshly started server at the same moment: every session gets its charts, and the server log
shows no traceback. The server listens before its libraries finish importing (sia_app/serve.py), so these sessions
arrive while they load, and wait for them."""

from __future__ import annotations

from tests.app_server import browser_on_app

SESSIONS = 6
CHARTS_ON_OPEN = 3  # the RoI vs RoA page draws the RoI map, the RoA map and their zones without a click


def test_six_sessions_on_a_cold_server_all_get_their_charts(tmp_path):
    log = tmp_path / "server.log"
    with browser_on_app(log=log) as (browser, url):
        pages = [browser.new_context().new_page() for _ in range(SESSIONS)]
        for page in pages:  # each goto returns once the page starts loading: the sessions overlap
            page.goto(f"{url}/regions", wait_until="commit")
        for page in pages:
            page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {CHARTS_ON_OPEN}",
                                   timeout=240_000)
        bodies = [page.inner_text("body") for page in pages]
    server_output = log.read_text(errors="replace")
    assert "Traceback" not in server_output and "partially initialized" not in server_output, server_output[-3000:]
    for body in bodies:
        assert "Region of Importance vs Region of Attack" in body and "Traceback" not in body
        assert "Starting up" not in body  # the notice shown while the libraries load is gone once they are
