"""Test and benchmark infrastructure: start `streamlit run app.py` on a loopback port and wait for it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator, Mapping, Sequence

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PREDICTION_SELECTOR = "text=Sample predictions"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"Streamlit did not answer at {url} within {timeout:.0f} s")


@contextlib.contextmanager
def running_app(port: int | None = None, app_args: Sequence[str] = (), cwd: Path = PROJECT_ROOT,
                env: Mapping[str, str] | None = None, log: Path | None = None) -> Iterator[str]:
    """The app served as `scripts/start_app.sh` serves it (sia_app/serve.py: libraries imported before the first
    session) on 127.0.0.1, started in `cwd` with `-- app_args`; yields its URL and stops it afterwards. The
    server's output goes to `log` when given."""
    port = port or free_port()
    command = [sys.executable, str(PROJECT_ROOT / "sia_app" / "serve.py"), "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    if app_args:
        command += ["--", *app_args]
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(open(log, "wb")) if log is not None else subprocess.DEVNULL
        process = subprocess.Popen(command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.contextmanager
def browser_on_app(**app_options) -> Iterator[tuple]:
    """A headless Chromium (Playwright, Debian's chromium) and the URL of the app served with `app_options` (see
    `running_app`); both are closed afterwards."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with running_app(**app_options) as url:
        wait_for_health(url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
            try:
                yield browser, url
            finally:
                browser.close()


def require_chromium() -> str:
    """Debian's chromium for a browser test: a failure in CI (where .ci/run installs it), a skip elsewhere."""
    import pytest

    executable = chromium_path()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return executable


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def run_page_actions(page, url: str, actions, *, query: str = "", screenshots: Path | None = None,
                     prefix: str = "browser", skip: Sequence[str] = (), opens_on: str | None = None) -> dict[str, str]:
    """On each page of `actions` ((url path, slider labels, button, result selector)): wait for `opens_on` (a
    selector every page shows before any click, e.g. its precomputed result's label) when given, move the sliders to
    their minimum with the keyboard, as a person can, press the button and wait for the result; returns each page's
    text (and saves a screenshot per page under `screenshots`). Paths in `skip` are left out."""
    bodies = {}
    for path, sliders, button, result in actions:
        if path in skip:
            continue
        page.goto(f"{url}/{path}{'?' + query if query else ''}", wait_until="domcontentloaded")
        if opens_on is not None:
            page.wait_for_selector(opens_on, timeout=240_000)
        for label in sliders:
            slider = page.locator(f'input[type=range][aria-label="{label}"]')
            slider.focus(timeout=120_000)
            page.keyboard.press("Home")
        page.get_by_role("button", name=button, exact=True).click(timeout=120_000)
        page.wait_for_selector(result, timeout=300_000)
        bodies[path] = page.inner_text("body")
        if screenshots is not None:
            page.screenshot(path=str(screenshots / f"{prefix}-{path}.png"), full_page=True)
    return bodies
