"""A user's own model in a real browser: `streamlit run app.py -- --model python:lenet.py:LeNet --weights lenet.pt
...` started in the user's folder (relative paths, as a person types them), then one action on every page."""

from __future__ import annotations

from sia_core.data.fashion_mnist import DEBIAN_PACKAGE_DIR
from tests.app_server import browser_on_app, run_page_actions
from tests.conftest import PROJECT_ROOT
from tests.user_model_case import write_lenet

SCREENSHOTS = PROJECT_ROOT / "artifacts"
REGIONS_SLIDERS = ("Evaluation images", "Held-out images (learn the deployable masks)")
# (url path, sliders set to their minimum to keep the test short, button to press, text of the action's result)
ACTIONS = [
    ("sia_explore", (), "Run the attack", "text=The attack"),
    ("sia_diagnosis", ("Images (N)",), "Run the diagnosis", "text=Attack success at the same pixel budget"),
    ("regions", REGIONS_SLIDERS, "Run the study", "text=This run:"),
    ("margins", ("Images (N)",), "Compute the margins", "text=Kendall τ"),
    ("features", ("Training images (N)", "Steps"), "Build", "text=What the sets look like"),
]


def test_every_page_works_on_a_model_given_on_the_command_line(tmp_path):
    write_lenet(tmp_path)
    # the full Fashion-MNIST (Debian package) has a training split, which the features lens builds from
    data = "fashion-mnist" if DEBIAN_PACKAGE_DIR.is_dir() else "fashion-mnist-subset"
    args = ["--model", "python:lenet.py:LeNet", "--weights", "lenet.pt", "--input-shape", "1,28,28",
            "--mean", "0.3", "--std", "0.35", "--data", data]
    spec = f"python:{tmp_path}/lenet.py:LeNet"
    SCREENSHOTS.mkdir(exist_ok=True)
    bodies = {}
    with browser_on_app(app_args=args, cwd=tmp_path, env={"SIA_EXPLORER_HOME": str(tmp_path / "home")}) as (browser, url):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("text=Measured now", timeout=180_000)
        page.wait_for_selector("text=true:", timeout=60_000)
        bodies["home"] = page.inner_text("body")
        bodies.update(run_page_actions(page, url, ACTIONS, screenshots=SCREENSHOTS, prefix="browser-user-model"))
    for path, body in bodies.items():
        assert spec in body, path  # the sidebar still shows the user's model on every page
        assert "Traceback" not in body, path
    assert bodies["home"].count("true:") == 12
