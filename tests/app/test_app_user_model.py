"""The app on a user's own model, named in a launch config the way `sia_explorer.toml` names it: the sidebar offers
it first, its card is measured on load and kept on disk, and a model that does not load is a message."""

from __future__ import annotations

import json

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from sia_app.launch import CONFIG_ENV
from sia_core.models.measured import HOME_ENV
from tests.conftest import PROJECT_ROOT
from tests.user_model_case import write_config, write_lenet

SPEC = "python:{folder}/lenet.py:LeNet"


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("third_party")
    source, weights = write_lenet(folder)
    return folder, source, weights


@pytest.fixture
def started(lenet, tmp_path, monkeypatch):
    folder, source, weights = lenet
    monkeypatch.setenv(CONFIG_ENV, str(write_config(folder, source, weights)))
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield folder, tmp_path / "home"
    st.cache_data.clear()
    st.cache_resource.clear()


def _app() -> AppTest:
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_user_model_is_offered_first_with_a_card_measured_now(started):
    folder, home = started
    at = _app()
    spec = SPEC.format(folder=folder)
    assert at.sidebar.selectbox(key="model_id").value == spec
    assert "fmnist-standard" in at.sidebar.selectbox(key="model_id").options  # the shipped ones stay beside it
    card = "\n".join(m.value for m in at.sidebar.markdown)
    captions = "\n".join(c.value for c in at.sidebar.caption)
    assert "Clean accuracy" in card and "Measured now" in captions and "first 500 images" in captions
    # the card is kept in the user folder, and its accuracy is the model's real one (trained on half the subset)
    kept = [json.loads(p.read_text()) for p in (home / "measured-cards").glob("*.json")]
    assert len(kept) == 1 and kept[0]["evaluation"]["n"] == 500
    assert 0.5 < kept[0]["evaluation"]["clean_accuracy"] <= 1.0
    assert f"{kept[0]['evaluation']['clean_accuracy']:.1%}" in card
    assert sum("true:" in m.value for m in at.markdown) == 12  # the home gallery classifies with it
    # Shapes has 5 classes: the 10-class LeNet is not offered there, and the sidebar says why
    at.sidebar.selectbox(key="dataset_choice").set_value("shapes").run()
    assert not at.exception and spec not in at.sidebar.selectbox(key="model_id").options
    assert any("python:lenet.py:LeNet is not offered here: it has 10 classes" in c.value for c in at.sidebar.caption)


def test_the_next_start_reads_the_card_from_disk(started, monkeypatch):
    _app()
    st.cache_data.clear()
    st.cache_resource.clear()

    def not_again(*args, **kwargs):
        raise AssertionError("the card was measured again")
    monkeypatch.setattr("sia_core.models.measured.evaluate", not_again)
    at = _app()
    assert "Measured now" in "\n".join(c.value for c in at.sidebar.caption)


@pytest.mark.parametrize("page", ["pages/sia_explore.py", "pages/sia_diagnosis.py", "pages/regions.py",
                                  "pages/margins.py", "pages/features.py"])
def test_every_page_opens_on_the_user_model(started, page):
    folder, _ = started
    at = _app()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="model_id").value == SPEC.format(folder=folder)


def test_a_model_that_does_not_load_is_a_message_and_the_shipped_ones_stay(lenet, tmp_path, monkeypatch):
    folder, source, weights = lenet
    monkeypatch.setenv(CONFIG_ENV, str(write_config(folder, source, weights, factory="broken")))
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    st.cache_resource.clear()
    at = _app()
    errors = "\n".join(e.value for e in at.sidebar.error)
    assert "did not load" in errors and "needs a GPU cluster" in errors
    assert at.sidebar.selectbox(key="model_id").value == "fmnist-standard"
    st.cache_resource.clear()


def test_a_model_folder_whose_card_names_a_shipped_id_is_its_own_model(tmp_path, monkeypatch):
    # the sidebar finds operator models by spec: a folder's card.json had named the model, so picking it loaded the
    # shipped model of that id (or none), and their results shared every cache
    import shutil

    import torch

    from sia_app import cache

    folder = tmp_path / "my_model"
    shutil.copytree(PROJECT_ROOT / "assets" / "models" / "fmnist-robust", folder)
    card = json.loads((folder / "card.json").read_text())
    (folder / "card.json").write_text(json.dumps({**card, "id": "fmnist-standard"}))
    config = tmp_path / "sia_explorer.toml"
    config.write_text(f'[[model]]\nspec = "folder:{folder}"\ndata = "fashion-mnist-subset"\n')
    monkeypatch.setenv(CONFIG_ENV, str(config))
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    st.cache_resource.clear()
    try:
        loaded = cache.cached_loaded_model(f"folder:{folder}")
        assert loaded.card.id == loaded.model.model_id == f"folder:{folder}"
        x = torch.rand(4, 1, 28, 28)
        with torch.inference_mode():
            assert torch.equal(loaded.model.logits(x), cache.cached_model("fmnist-robust").logits(x))
            assert not torch.equal(loaded.model.logits(x), cache.cached_model("fmnist-standard").logits(x))
        at = _app()
        at.sidebar.selectbox(key="model_id").set_value(f"folder:{folder}").run()
        assert not at.exception, at.exception
        options = at.sidebar.selectbox(key="model_id").options  # labels: the folder by its name
        assert "folder:my_model" in options and options.count("fmnist-standard") == 1
    finally:
        st.cache_resource.clear()
