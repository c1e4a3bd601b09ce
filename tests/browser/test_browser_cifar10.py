"""The CIFAR-10 world in a real browser: the embedded CIFAR-10 test subset and the shipped CIFAR-10 model chosen in
the link, then one action on every lens page, an uploaded photo (any size) resized to 32x32 on the explore page."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sia_core.data.cifar10 import CIFAR10_CLASSES, EMBEDDED_CIFAR10_FILE, default_cifar10_root
from sia_core.models.registry import list_model_cards
from sia_core.paths import PRECOMPUTED_DIR
from tests.app_server import browser_on_app, run_page_actions
from tests.conftest import PROJECT_ROOT

MODEL = "cifar10-standard"
SHIPPED_RESULTS = [PRECOMPUTED_DIR / f"{kind}-{MODEL}.json.gz"
                   for kind in ("diagnosis", "regions", "margins", "features")]
SCREENSHOTS = PROJECT_ROOT / "artifacts"
REGIONS_SLIDERS = ("Evaluation images", "Held-out images (learn the deployable masks)")
# (url path, sliders set to their minimum to keep the test short, button to press, text of the action's result)
ACTIONS = [
    ("sia_diagnosis", ("Images (N)",), "Run the diagnosis", "text=Attack success at the same pixel budget"),
    ("regions", REGIONS_SLIDERS, "Run the study", "text=This run:"),
    ("margins", ("Images (N)",), "Compute the margins", "text=Kendall τ"),
    ("features", ("Training images (N)", "Steps"), "Build", "text=What the sets look like"),
]

pytestmark = pytest.mark.skipif(
    MODEL not in {card.id for card in list_model_cards()} or not EMBEDDED_CIFAR10_FILE.is_file(),
    reason="the CIFAR-10 model or the embedded CIFAR-10 subset is not shipped in this copy")


def _photo() -> bytes:
    """A 96x64 photo-like PNG (a gradient with a disc): not CIFAR's size, so the page must resize it."""
    y, x = np.mgrid[0:64, 0:96]
    image = np.stack([x * 2.5, y * 3.5, 255 - x * 2], axis=-1)
    image[(x - 48) ** 2 + (y - 32) ** 2 < 300] = (200, 40, 40)
    buffer = io.BytesIO()
    Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_every_page_works_in_the_cifar10_world(tmp_path):
    missing = [path.name for path in SHIPPED_RESULTS if not path.is_file()]
    assert not missing, f"shipped CIFAR-10 results are missing: {missing} (scripts/cifar10_study.sh)"
    world = f"dataset_choice=cifar10-subset&model_id={MODEL}"
    bodies = {}
    SCREENSHOTS.mkdir(exist_ok=True)
    with browser_on_app(log=tmp_path / "server.log", env={"SIA_EXPLORER_HOME": str(tmp_path / "home")}) as (
            browser, url):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/?{world}", wait_until="domcontentloaded")
        page.wait_for_selector("text=Sample predictions", timeout=180_000)
        bodies["home"] = page.inner_text("body")

        # explore: an uploaded photo of another size, classified and attacked at the model's 32x32
        page.goto(f"{url}/sia_explore?{world}", wait_until="domcontentloaded")
        page.get_by_test_id("stRadioGroup").get_by_text("Upload", exact=True).click(timeout=120_000)
        page.get_by_label("PNG, JPEG or WebP").get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
            files=[{"name": "photo.png", "mimeType": "image/png", "buffer": _photo()}])
        page.wait_for_selector("text=No label for an upload", timeout=120_000)
        page.get_by_role("button", name="Run the attack", exact=True).click(timeout=120_000)
        page.wait_for_selector("text=The attack", timeout=300_000)
        bodies["sia_explore"] = page.inner_text("body")

        # building a constructed set needs the 50,000 training images, which do not ship
        # each lens page opens on its shipped CIFAR-10 result (scripts/cifar10_study.sh), then runs live
        bodies.update(run_page_actions(page, url, ACTIONS, query=world, screenshots=SCREENSHOTS,
                                       prefix="browser-cifar10",
                                       skip=("features",) if default_cifar10_root() is None else (),
                                       opens_on="text=Precomputed by"))
        for path in ("tour", "sia_robustify"):  # open without an error in this world
            page.goto(f"{url}/{path}?{world}", wait_until="domcontentloaded")
            page.wait_for_selector("[data-testid=stSidebar]", timeout=120_000)
            page.wait_for_timeout(3000)
            bodies[path] = page.inner_text("body")
    for path, body in bodies.items():
        assert "Traceback" not in body, path
        # the sidebar keeps the CIFAR-10 model on every lens page (the tour and the robustify page choose their own
        # worlds: Fashion-MNIST and Shapes)
        assert path in ("tour", "sia_robustify") or MODEL in body, path
    assert "Traceback" not in (tmp_path / "server.log").read_text(errors="replace")
    assert any(name in bodies["home"] for name in CIFAR10_CLASSES)  # the embedded CIFAR-10 images' classes
