"""The two keypoint worlds in a real browser (Chromium): Shapes with landmarks on the planted-flaw model and the face
photos on O-Net go through home, explore (a slider moves the points, the attack runs), diagnosis and regions with no
exception on the page or in the server's log."""

from __future__ import annotations

from importlib import metadata

import pytest

from sia_core.models.registry import list_model_cards
from tests.app_server import browser_on_app

WORLDS = {"shapes": "dataset_choice=shapes-keypoints&model_id=shapes-keypoints-spurious-hue",
          "faces": "dataset_choice=face-photos&model_id=mtcnn-onet"}
def _has_facenet_wheel() -> bool:  # its weights are read from the wheel; the package itself is never imported
    try:
        metadata.distribution("facenet-pytorch")
        return True
    except metadata.PackageNotFoundError:
        return False


pytestmark = [pytest.mark.skipif(
    not {"shapes-keypoints-spurious-hue", "mtcnn-onet"} <= {card.id for card in list_model_cards()},
    reason="the keypoint models are not shipped in this copy"),
    pytest.mark.skipif(not _has_facenet_wheel(), reason="pip install --no-deps facenet-pytorch==2.6.0")]
pytest.importorskip("skimage", reason="the face photos come from scikit-image's sample data")


def _slider(page, label: str, key: str) -> None:
    page.locator(f'input[type=range][aria-label="{label}"]').first.focus(timeout=120_000)
    page.keyboard.press(key)


@pytest.mark.parametrize("world", list(WORLDS))
def test_a_keypoint_world_goes_through_explore_diagnosis_and_regions(world, tmp_path):
    query = WORLDS[world]
    bodies = {}
    with browser_on_app(log=tmp_path / "server.log", env={"SIA_EXPLORER_HOME": str(tmp_path / "home")}) as (
            browser, url):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/?{query}", wait_until="domcontentloaded")
        page.wait_for_selector("text=mean NME", timeout=240_000)
        bodies["home"] = page.inner_text("body")

        page.goto(f"{url}/sia_explore?{query}", wait_until="domcontentloaded")
        page.wait_for_selector("text=Failure threshold", timeout=240_000)
        metric = page.locator("[data-testid=stMetric]").filter(has_text="NME").first
        before = metric.inner_text()
        _slider(page, "Contrast (log of the factor)", "Home")  # the lowest contrast: the points move
        page.wait_for_function("([b]) => !document.body.innerText.includes(b)", arg=[before], timeout=120_000)
        _slider(page, "Steps", "Home")
        page.get_by_role("button", name="Run the attack", exact=True).click(timeout=120_000)
        page.wait_for_selector("text=SSIM to the original", timeout=300_000)
        bodies["sia_explore"] = page.inner_text("body")

        page.goto(f"{url}/sia_diagnosis?{query}", wait_until="domcontentloaded")
        _slider(page, "Steps", "Home")
        _slider(page, "Images (N)", "Home")
        page.get_by_role("button", name="Run the diagnosis", exact=True).click(timeout=120_000)
        page.wait_for_selector("text=Attack success at the same pixel budget", timeout=600_000)
        bodies["sia_diagnosis"] = page.inner_text("body")

        page.goto(f"{url}/regions?{query}", wait_until="domcontentloaded")
        page.wait_for_selector("text=RoI: landmark saliency", timeout=300_000)
        page.get_by_role("button", name="Map RoI and RoA over the images", exact=True).click(timeout=120_000)
        page.wait_for_selector("text=random masks", timeout=300_000)
        bodies["regions"] = page.inner_text("body")
    for path, body in bodies.items():
        assert "Traceback" not in body and "Error" not in body.split("Error rate")[0], path
    assert "landmarks" in bodies["sia_diagnosis"]
    assert "Traceback" not in (tmp_path / "server.log").read_text(errors="replace")
