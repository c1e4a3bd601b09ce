"""The two keypoint worlds through the app (AppTest): Shapes with landmarks and the face photos go through the home,
explore, diagnosis and regions pages without an exception; the landmarks move with the sliders; the attack reports the
NME; the margins and features pages say plainly why they do not apply."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import PROJECT_ROOT

TIMEOUT = 300
WORLDS = {"shapes-keypoints": "shapes-keypoints-spurious-hue", "face-photos": "mtcnn-onet"}


def open_world(page: str, dataset: str, model: str) -> AppTest:
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(page).run()
    at.sidebar.selectbox(key="dataset_choice").set_value(dataset).run()
    assert not at.exception, at.exception
    at.sidebar.selectbox(key="model_id").set_value(model).run()
    assert not at.exception, at.exception
    return at


def _nme(at: AppTest) -> float:
    return float(next(m for m in at.metric if m.label == "NME").value)


@pytest.mark.parametrize("dataset, model", WORLDS.items())
def test_explore_draws_landmarks_that_move_with_the_sliders_and_the_attack_reports_the_nme(dataset, model):
    at = open_world("pages/sia_explore.py", dataset, model)
    assert [o for o in at.sidebar.selectbox(key="model_id").options] == (
        ["shapes-keypoints", "shapes-keypoints-spurious-hue"] if dataset == "shapes-keypoints" else ["mtcnn-onet"])
    before = _nme(at)
    at.slider(key="kp_attr_contrast").set_value(-0.5)
    at.slider(key="kp_attr_blur").set_value(1.2)
    at.run()
    assert not at.exception, at.exception
    assert any(c.value.startswith("The edit: Contrast ×0.61 · Blur ") for c in at.caption)
    assert _nme(at) != before
    at.button(key="kp_reset").click().run()
    assert _nme(at) == before
    at.slider(key="kp_steps").set_value(10)
    next(b for b in at.button if b.label == "Run the attack").click().run()
    assert not at.exception, at.exception
    text = "\n".join(m.value for m in at.markdown)
    assert "NME" in text and "→" in text and "SSIM to the original" in text
    if dataset == "face-photos":  # the page says how few faces this world has
        assert any("2 images" in i.value for i in at.info)


@pytest.mark.parametrize("dataset, model", WORLDS.items())
def test_diagnosis_and_regions_run_on_keypoint_models(dataset, model):
    at = open_world("pages/sia_diagnosis.py", dataset, model)
    at.slider(key="diag_n").set_value(16)
    at.slider(key="diag_steps").set_value(5)
    next(b for b in at.button if b.label == "Run the diagnosis").click().run()
    assert not at.exception, at.exception
    text = "\n".join(m.value for m in at.markdown)
    assert "landmarks" in text and "Most harmful one at a time" in text
    regions = open_world("pages/regions.py", dataset, model)
    assert not regions.exception
    regions.button(key="kp_regions_run").click().run()
    assert not regions.exception, regions.exception
    summary = next(m.value for m in regions.markdown if "IoU" in m.value and "random masks" in m.value)
    # a t-interval, the share of the effect inside the RoI, and the failures before the attack beside after
    assert "95% CI [" in summary and "of its effect lands inside the RoI" in summary and "were before it" in summary
    table = regions.dataframe[0].value
    assert "energy_in_roi" not in table.columns and "effect inside RoI" in table.columns
    assert table["attack"].iloc[0].endswith("8/255")


@pytest.mark.parametrize("page", ["pages/margins.py", "pages/features.py", "pages/home.py"])
def test_the_classifier_lenses_say_why_they_do_not_apply_to_keypoint_models(page):
    at = open_world(page, "shapes-keypoints", "shapes-keypoints")
    assert not at.exception, at.exception
    assert any("classif" in i.value for i in at.info)


def test_the_diagnosis_page_opens_on_the_shipped_keypoint_result_and_it_names_hue_on_the_flawed_model():
    at = open_world("pages/sia_diagnosis.py", "shapes-keypoints", "shapes-keypoints-spurious-hue")
    assert any("Precomputed by" in c.value for c in at.caption)
    text = "\n".join(m.value for m in at.markdown)
    assert "Most harmful one at a time (sensitivity): **Hue shift**" in text
    faces = open_world("pages/sia_diagnosis.py", "face-photos", "mtcnn-onet")
    assert any("Precomputed by" in c.value for c in faces.caption)
    assert "model’s own points" in "\n".join(m.value for m in faces.markdown)


def test_a_pretrained_models_card_says_no_epochs_or_seed_of_ours():
    at = open_world("pages/home.py", "face-photos", "mtcnn-onet")
    card = "\n".join(m.value for m in at.sidebar.markdown)
    assert "None" not in card and "trained on **face-photos**" not in card
    assert "Recipe: **pretrained" in card
    assert any(e.label == "The command that wrote this card" for e in at.sidebar.expander)
