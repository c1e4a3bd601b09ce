"""The features page through AppTest: load a small saved set, see its grid, train on it, run the transfer study."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sia_core.data.catalog import load_dataset
from sia_core.data.fashion_mnist import default_fashion_mnist_root
from sia_core.features import ConstructionConfig, build_constructed_set
from sia_core.models.registry import load_model
from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def saved_det(tmp_path_factory) -> Path:
    """A small D̂_det built from the first 200 embedded test images, saved as a features-build .npz."""
    source = load_dataset("fashion-mnist-subset").subset(slice(0, 200), name="tiny-train")
    path = tmp_path_factory.mktemp("features") / "d_det.npz"
    build_constructed_set(load_model("fmnist-standard"), source,
                          ConstructionConfig(kind="d_det", n=120, eps_l2=2.0, steps=20), out=path)
    return path


def test_features_page_loads_a_saved_set_and_trains_on_it(saved_det, tmp_path):

    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/features.py").run()
    assert not at.exception
    at.text_input(key="features_path").set_value(str(saved_det))
    at.button(key="features_load").click().run()
    assert not at.exception
    assert any("Loaded D̂_det: 120 images from fmnist-standard" in s.value for s in at.success), (
        [s.value for s in at.success], [e.value for e in at.error])
    assert any(m.value.startswith("**D̂_det**") and "targeted success rate" in m.value for m in at.markdown)

    at.slider(key="features_epochs").set_value(1)
    at.slider(key="features_eval_n").set_value(100)
    at.button(key="features_train").click().run()
    assert not at.exception
    row = at.dataframe[0].value.to_dict("records")[0]
    assert row["trained on"] == "D̂_det" and row["paper, CIFAR-10 test accuracy"] == "43.7%"
    assert row["accuracy on (y + 1) mod C labels"].endswith("%")
    assert len(at.get("plotly_chart")) == 2

    at.text_input(key="features_path").set_value(str(tmp_path / "missing.npz"))
    at.button(key="features_load").click().run()
    assert not at.exception and any("not a constructed dataset" in e.value for e in at.error)
    assert all(ref["how"] == "file" for ref in at.session_state["feature_sets"].values())  # keys, not images


@pytest.mark.skipif(not default_fashion_mnist_root().is_dir(),
                    reason="the transfer study trains on the Fashion-MNIST training split (Debian dataset-fashion-mnist)")
def test_features_page_runs_the_transfer_study(saved_det):
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/features.py").run()
    at.text_input(key="features_path").set_value(str(saved_det))
    at.button(key="features_load").click().run()
    at.multiselect(key="features_transfer_architectures").set_value(["mlp", "tiny-cnn"])
    at.slider(key="features_transfer_epochs").set_value(1)
    at.button(key="features_transfer").click().run()
    assert not at.exception, at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    scatter = json.loads(charts[0].proto.spec)["data"][0]
    assert scatter["text"] == ["mlp", "tiny-cnn"] and all(0 <= v <= 1 for v in scatter["x"] + scatter["y"])


def test_the_shipped_sets_say_whose_they_are_when_other_sources_are_chosen():
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/features.py").run()
    assert not at.exception
    assert not any("These are the shipped sets" in i.value for i in at.info)  # the shipped study's own sources
    at.selectbox(key="features_std").set_value("fmnist-sia-at").run()
    assert not at.exception
    note = next(i.value for i in at.info if "These are the shipped sets" in i.value)
    assert "fmnist-standard" in note and "not from fmnist-robust and fmnist-sia-at" in note and "Build" in note
