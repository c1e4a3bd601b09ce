"""The app shell and home page, driven through Streamlit's AppTest."""

from __future__ import annotations

import io
import json
import re

import pytest
import streamlit as st
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from sia_core.models.registry import list_model_cards, load_model_and_card
from tests.conftest import PROJECT_ROOT

TIMEOUT = 120


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def _markdown(at: AppTest) -> str:
    return "\n".join(element.value for element in at.markdown)


def _sidebar_markdown(at: AppTest) -> str:
    return "\n".join(element.value for element in at.sidebar.markdown)


def test_home_renders_model_card_and_predictions(app):
    assert app.sidebar.selectbox(key="model_id").value == "fmnist-standard"
    card = _sidebar_markdown(app)
    assert "**fmnist-standard**" in card and "Clean accuracy" in card and "Robust accuracy" in card
    assert len(app.image) == 12
    text = _markdown(app)
    assert "Semantic Image Attack" in text and "Margin consistency" in text
    assert text.count("true: ") == 12
    assert any("Accuracy of this model on these 2,500 images" in c.value for c in app.caption)
    # the scorecard's sentence counts every claim once: its parts add up to the whole
    import re

    claims = next(m.value for m in app.markdown if m.value.startswith("**Do the papers' claims hold here?** Of "))
    total, *parts = (int(number) for number in re.findall(r"(\d+) (?:claims|reproduce|partly|do not|could not)",
                                                           claims))
    assert len(parts) >= 3 and sum(parts) == total
    # the card's training command is folded in its own expander, inside the card's
    folded = next(e for e in app.sidebar.expander if e.label == "The command that trained it")
    assert folded.caption[0].value.startswith("`python -m sia_core train --id fmnist-standard ")


def test_shuffle_shows_other_images(app):
    before = [m.value for m in app.markdown if "#" in m.value and "true:" in m.value]
    app.button(key="shuffle_gallery").click().run()
    after = [m.value for m in app.markdown if "#" in m.value and "true:" in m.value]
    assert before != after and len(after) == 12


def test_switching_to_shapes_offers_only_shapes_models(app):
    app.sidebar.selectbox(key="dataset_choice").set_value("shapes").run()
    assert not app.exception
    models = app.sidebar.selectbox(key="model_id")
    shapes_models = {card.id for card in list_model_cards() if card.dataset == "shapes"}
    assert set(models.options) == shapes_models and {"shapes-standard", "shapes-spurious-hue"} <= shapes_models
    assert "**shapes-standard**" in _sidebar_markdown(app)
    assert any("2,000 images" in c.value for c in app.caption)


def test_missing_folder_gives_a_clear_message_and_keeps_working(app):
    app.sidebar.selectbox(key="dataset_choice").set_value("fashion-mnist").run()
    app.sidebar.text_input(key="fashion-mnist_root").set_value("/no/such/folder").run()
    assert not app.exception
    assert any("Fashion-MNIST folder not found: /no/such/folder" in e.value for e in app.sidebar.error)
    assert _markdown(app).count("true: ") == 12  # fell back to the embedded subset


def test_the_dataset_choices_are_the_catalog(app):
    from sia_core.data.catalog import DATASETS

    choice = app.sidebar.selectbox(key="dataset_choice")
    assert choice.options == list(DATASETS.labels().values()) and choice.value == "fashion-mnist-subset"
    from sia_core.data.cifar10 import default_cifar10_root

    app.sidebar.selectbox(key="dataset_choice").set_value("cifar10").run()
    assert not app.exception
    field = app.sidebar.text_input(key="cifar10_root")
    assert field.label == "CIFAR-10 folder or .npz"
    if default_cifar10_root() is None:  # nothing beside the checkout: the field asks for a folder
        assert any("needs a path" in e.value and "Keeping Fashion-MNIST test subset (embedded)" in e.value
                   for e in app.sidebar.error)
    else:  # the JPEG copy beside the checkout is the default
        assert field.value == str(default_cifar10_root()) and not app.sidebar.error
    field.set_value("/no/such/cifar").run()
    assert any("not found" in e.value and "Keeping" in e.value for e in app.sidebar.error)


def test_an_image_folder_by_path_and_a_bad_one_keeps_the_last_good(app, tmp_path):
    """Ten class folders of 28x28 gray PNGs: the class names come from the folders and the shipped Fashion-MNIST
    models take the images; then a folder with one class is a message, and the image folder stays."""
    import numpy as np

    generator = np.random.default_rng(0)
    for name in [f"kind{k}" for k in range(10)]:
        (tmp_path / "ten" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(generator.integers(0, 255, (28, 28), dtype=np.uint8)).save(tmp_path / "ten" / name / f"{i}.png")
    (tmp_path / "one" / "only").mkdir(parents=True)
    Image.new("L", (28, 28)).save(tmp_path / "one" / "only" / "0.png")

    app.sidebar.selectbox(key="dataset_choice").set_value("imagefolder").run()
    app.sidebar.text_input(key="imagefolder_root").set_value(str(tmp_path / "ten")).run()
    assert not app.exception and not app.sidebar.error
    assert app.sidebar.selectbox(key="model_id").value == "fmnist-standard"
    assert "true: kind" in _markdown(app) and any("these 30 images" in c.value for c in app.caption)
    app.sidebar.text_input(key="imagefolder_root").set_value(str(tmp_path / "one")).run()
    assert not app.exception
    assert any("at least two class folders" in e.value and "Keeping" in e.value for e in app.sidebar.error)
    assert "true: kind" in _markdown(app)


def test_session_state_does_not_grow_with_use(app):
    app.button(key="shuffle_gallery").click().run()
    keys = set(app.session_state.keys())
    for _ in range(3):
        app.button(key="shuffle_gallery").click().run()
    app.sidebar.selectbox(key="dataset_choice").set_value("shapes").run()
    app.sidebar.selectbox(key="dataset_choice").set_value("fashion-mnist-subset").run()
    assert not app.exception
    assert set(app.session_state.keys()) <= keys  # small fixed keys only; results live in the bounded caches


def test_corrupt_image_upload_gives_a_clear_message(app):
    app.file_uploader(key="home_upload").upload("broken.png", b"\x89PNG\r\n\x1a\nnot really", "image/png").run()
    assert not app.exception
    assert any("corrupt or not an image" in e.value for e in app.error)


def test_valid_image_upload_shows_probabilities(app):
    buffer = io.BytesIO()
    Image.new("L", (50, 50), 30).save(buffer, format="PNG")
    app.file_uploader(key="home_upload").upload("shirt.png", buffer.getvalue(), "image/png").run()
    assert not app.exception and not app.error
    charts = app.get("plotly_chart")
    assert len(charts) == 1
    bars = json.loads(charts[0].proto.spec)["data"][0]
    # a uniform grey resizes to the same grey: the bars are the shipped model's probabilities of that image
    model = load_model_and_card("fmnist-standard").model
    expected = model.predict_proba(torch.full((1, 1, 28, 28), 30 / 255))[0]
    assert bars["y"] == list(model.class_names)
    assert bars["x"] == pytest.approx(expected.tolist(), abs=1e-5) and sum(bars["x"]) == pytest.approx(1, abs=1e-4)


def test_bad_weights_upload_keeps_the_shipped_model(app):
    app.file_uploader(key="custom_weights").upload("w.safetensors", b"\x00" * 32, "application/octet-stream").run()
    assert not app.exception
    assert any("not a valid safetensors file" in e.value and "Keeping the shipped weights" in e.value
               and e.value.startswith("Could not read w.safetensors: it is not")  # the user's name, once
               for e in app.sidebar.error)
    assert _markdown(app).count("true: ") == 12


def test_uploaded_weights_get_their_own_card_and_follow_the_user_to_the_margins_page(app):
    weights = (PROJECT_ROOT / "assets" / "models" / "fmnist-robust" / "weights.safetensors").read_bytes()
    app.file_uploader(key="custom_weights").upload("mine.safetensors", weights, "application/octet-stream").run()
    assert not app.exception and not app.sidebar.error
    card = "\n".join(m.value for m in app.sidebar.markdown)
    # not the shipped fmnist-standard's card: no recipe, and the accuracy measured on these weights now
    assert "uploaded weights" in card and "Recipe: **standard**" not in card and "Clean accuracy" in card
    assert any(c.value.startswith("Uploaded weights in the") for c in app.sidebar.caption)
    limit = int(st.get_option("server.maxUploadSize"))
    assert any(f"at most {limit} MB, the server's upload limit" in c.value for c in app.sidebar.caption)
    assert any(s.value.startswith("Using uploaded weights: mine.safetensors") for s in app.sidebar.success)
    app.switch_page("pages/margins.py").run()
    assert not app.exception
    assert any(s.value.startswith("Using uploaded weights") for s in app.sidebar.success)
    chosen = app.multiselect(key="margins_models").value
    assert chosen and "uploaded weights" in chosen[0]  # the page compares the user's model, not the shipped one
    app.multiselect(key="margins_models").set_value(chosen[:1])
    app.slider(key="margins_n").set_value(50)
    next(b for b in app.button if b.label == "Compute the margins").click().run()
    app.button(key="margins_pseudo_run").click().run()  # the pseudo-margin learns on the user's model too
    assert not app.exception and not app.error
    assert any(m.label.startswith("Kendall τ: logit margin → pseudo-margin") for m in app.metric)
    # removing the file (its ×) goes back to the shipped weights
    app.switch_page("pages/home.py").run()
    app.file_uploader(key="custom_weights").upload("mine.safetensors", weights, "application/octet-stream").run()
    app.file_uploader(key="custom_weights").clear().run()
    assert not app.sidebar.success and not app.exception


def test_the_sidebar_choice_follows_the_user_across_pages(app):
    app.sidebar.selectbox(key="model_id").set_value("fmnist-robust").run()
    app.switch_page("pages/regions.py").run()
    assert app.sidebar.selectbox(key="model_id").value == "fmnist-robust"
    app.sidebar.selectbox(key="dataset_choice").set_value("shapes").run()
    app.sidebar.selectbox(key="model_id").set_value("shapes-spurious-hue").run()
    app.switch_page("pages/home.py").run()
    assert not app.exception
    assert app.sidebar.selectbox(key="dataset_choice").value == "shapes"
    assert app.sidebar.selectbox(key="model_id").value == "shapes-spurious-hue"


def test_a_robust_models_card_shows_autoattack_with_pgd20_on_the_same_images(app):
    app.sidebar.selectbox(key="model_id").set_value("fmnist-robust").run()
    assert not app.exception
    text = _sidebar_markdown(app)
    assert "Robust accuracy (AutoAttack at L∞ ε = 25.5/255)" in text and "PGD-20 on the same images" in text
    assert "Recipe: **pgd** (L∞ radius 25.5/255)" in text
    # every accuracy with its 95% interval over its own images, whose count is written out
    assert re.search(r"Clean accuracy: \*\*\d+\.\d%\*\* \[\d+\.\d, \d+\.\d\]", text)
    assert re.search(r"\(AutoAttack at L∞ ε = 25.5/255\): \*\*\d+\.\d%\*\* \[\d+\.\d, \d+\.\d\]", text)


@pytest.mark.parametrize("model_id, recipe", [("fmnist-pgd-l2", "Recipe: **pgd-l2** (L2 radius 1.5)"),
                                              ("fmnist-sia-at", "Recipe: **sia** (L∞ pixel budget 4/255)")])
def test_a_cards_recipe_says_what_its_budget_is_in_its_own_norm(app, model_id, recipe):
    # an L2-trained model's radius is a length, not "L∞ ε = 1.5"
    app.sidebar.selectbox(key="model_id").set_value(model_id).run()
    assert not app.exception
    assert recipe in _sidebar_markdown(app)


def test_photos_labelled_by_the_models_prediction_are_not_counted_in_its_accuracy(app):
    app.sidebar.selectbox(key="dataset_choice").set_value("imagenet-photos").run()
    assert not app.exception, app.exception
    caption = next(c.value for c in app.caption if "Accuracy of this model" in c.value)
    assert "on the 3 of these 8 images with a human label" in caption and "are not counted" in caption
    # the shipped diagnosis has two attributes tied for the lead: the tile names both, not one
    leading = next(m for m in app.metric if m.label == "Semantic attack: the leading attribute")
    assert leading.value.endswith(" +1") and leading.delta.startswith("tied with ")
    # τ over 8 photos: its interval is said under the tile, and that it reaches zero
    assert any("95% interval over its 8 images" in c.value and "reaches zero" in c.value for c in app.caption)
    # the sidebar's measured card the same: its n is the labelled photos
    card = _sidebar_markdown(app)
    assert "Clean accuracy: **33.3%**" in card and "75.0%" not in card
    assert any("the 3 images of imagenet-photos with a human label" in c.value for c in app.sidebar.caption)


def test_a_share_link_made_with_uploaded_weights_says_it_opens_the_shipped_ones(app):
    weights = (PROJECT_ROOT / "assets" / "models" / "fmnist-robust" / "weights.safetensors").read_bytes()
    app.file_uploader(key="custom_weights").upload("mine.safetensors", weights, "application/octet-stream").run()
    app.session_state["share_link_open"] = True
    app.run()
    assert not app.exception, app.exception
    assert any("Your weights (mine.safetensors) stay in this session" in w.value for w in app.sidebar.warning)
    # after another model is chosen, the warning follows whether that model runs on the uploaded weights
    app.sidebar.selectbox(key="model_id").set_value("fmnist-robust").run()
    uploaded_in_view = any(s.value.startswith("Using uploaded weights") for s in app.sidebar.success)
    assert any("stay in this session" in w.value for w in app.sidebar.warning) == uploaded_in_view


def test_the_diagnosis_says_which_photos_were_correct_by_construction(app):
    app.sidebar.selectbox(key="dataset_choice").set_value("imagenet-photos").run()
    app.switch_page("pages/sia_diagnosis.py").run()
    assert not app.exception, app.exception
    assert any("labelled by the model's own prediction, so correct by construction" in m.value for m in app.markdown)

