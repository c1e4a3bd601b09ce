"""The Semantic Image Attack pages, driven through AppTest: sliders move the prediction, the attack and the
diagnosis run and render, and a malformed upload gives a clear message."""

from __future__ import annotations

import math
import re

import pytest
from streamlit.testing.v1 import AppTest

from sia_core.semantics import ATTRIBUTES
from tests.conftest import PROJECT_ROOT

TIMEOUT = 300


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _metric(at: AppTest, label_start: str):
    return next(m for m in at.metric if m.label.startswith(label_start))


@pytest.fixture
def explore() -> AppTest:
    return open_page("pages/sia_explore.py")


def test_sliders_change_the_prediction_shown(explore):
    explore.number_input(key="sia_index").set_value(0).run()
    names = {s.key for s in explore.slider if s.key.startswith("sia_attr_")}
    assert names == {f"sia_attr_{n}" for n in ("rotation", "translate_x", "translate_y", "scale", "brightness",
                                               "contrast", "gamma", "blur")}
    before = (_metric(explore, "Prediction").value, _metric(explore, "Logit margin").value)
    explore.slider(key="sia_attr_brightness").set_value(0.25)
    explore.slider(key="sia_attr_rotation").set_value(20.0)
    assert any(c.value == "No edit: every slider is at its neutral value." for c in explore.caption)
    explore.slider(key="sia_attr_scale").set_value(ATTRIBUTES["scale"].high)
    explore.run()
    assert not explore.exception
    # the log-unit slider reads as the factor it applies
    assert any(c.value == "The edit: Rotation +20.0° · Zoom ×1.15 · Brightness +63.8/255." for c in explore.caption)
    after = (_metric(explore, "Prediction").value, _metric(explore, "Logit margin").value)
    assert after != before
    explore.button(key="sia_reset").click().run()
    assert explore.slider(key="sia_attr_brightness").value == 0.0
    assert (_metric(explore, "Prediction").value, _metric(explore, "Logit margin").value) == before


def test_attack_runs_renders_and_loads_into_sliders(explore):
    explore.number_input(key="sia_index").set_value(3).run()
    explore.slider(key="sia_steps").set_value(10)
    explore.slider(key="sia_perceptual_weight").set_value(5.0)
    next(b for b in explore.button if b.label == "Run the attack").click().run()
    assert not explore.exception
    text = "\n".join(m.value for m in explore.markdown)
    assert "**The attack" in text
    # rounding is asked of a success only
    assert ("survives 8-bit rounding" in text) == ("**The attack succeeded**" in text)
    ssim = float(re.search(r"SSIM to the original: \*\*([0-9.]+)\*\*", text).group(1))
    assert 0 < ssim <= 1
    assert "μ_ssim=5" in explore.session_state["sia_attack_result"]["config"]  # the slider reached the attack
    assert len(explore.image) >= 5  # the slider view + original, edited, adversarial, amplified delta
    assert len(explore.get("download_button")) == 3  # PNG, parameters, the report
    values = {row["attribute (slider)"]: row["value"] for row in explore.dataframe[0].value.to_dict("records")}
    readings = {row["attribute (slider)"]: row["reads as"] for row in explore.dataframe[0].value.to_dict("records")}
    zoom = values[ATTRIBUTES["scale"].label]
    assert readings[ATTRIBUTES["scale"].label] == f"×{math.exp(zoom):.2f}"  # each value as a person reads it
    # the history's attribute lines are shares of each range, on one axis from -100% to 100%, and the last point of
    # each line is the share the table gives
    import json

    history = json.loads(next(c for c in explore.get("plotly_chart") if c.key == "sia_history").proto.spec)
    shares = {row["attribute (slider)"]: row["share of its range"] for row in explore.dataframe[0].value.to_dict(
        "records")}
    lines = {trace["name"]: trace["y"] for trace in history["data"] if trace["name"] in shares}
    assert lines and all(-1.0 <= value <= 1.0 for ys in lines.values() for value in ys)
    assert all(f"{abs(ys[-1]):.0%}" == shares[name] for name, ys in lines.items() if ys)
    assert history["layout"]["yaxis3"]["title"]["text"] == "share of its range"
    explore.button(key="sia_load").click().run()
    rotation = values[ATTRIBUTES["rotation"].label]  # the table names the sliders as the sliders do
    assert explore.slider(key="sia_attr_rotation").value == pytest.approx(rotation, abs=1e-3)


def test_the_goal_never_offers_the_images_own_label_as_a_target(explore):
    explore.number_input(key="sia_index").set_value(3).run()
    options = list(explore.selectbox(key="sia_goal").options)
    label = next(m.label for m in explore.metric if m.label.startswith("p(")).removeprefix("p(").removesuffix(")")
    assert options[0] == "untargeted" and f"target: {label}" not in options
    assert len(options) == 1 + 9  # Fashion-MNIST: ten classes


def test_malformed_upload_gives_a_clear_message(explore):
    explore.radio(key="sia_image_source").set_value("Upload").run()
    explore.file_uploader(key="sia_upload").upload("x.png", b"definitely not a png", "image/png").run()
    assert not explore.exception
    assert any("corrupt or not an image" in e.value for e in explore.error)


def test_diagnosis_renders_its_histograms():
    at = open_page("pages/sia_diagnosis.py")
    at.slider(key="diag_n").set_value(16)
    at.slider(key="diag_steps").set_value(5)
    next(b for b in at.button if b.label == "Run the diagnosis").click().run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 4  # sensitivity, dominance, baselines, success against SSIM
    assert "Attack success against perceptual quality (SSIM)" in [h.value for h in at.subheader]
    text = "\n".join(m.value for m in at.markdown)
    assert "Most harmful one at a time" in text
    assert "**Takeaway.**" in text and ("leads the joint attack" in text or "share the lead" in text
                                              or "No joint attack succeeded" in text)
    assert "Counting only images with SSIM ≥ 0.90" in text
    assert "mean SSIM of successes (as attacked)" in at.dataframe[0].value.columns
    at.selectbox(key="diag_scope").set_value("Trouser").run()
    assert not at.exception and len(at.get("plotly_chart")) == 4
    assert [type(key) for key in at.session_state["sia_diagnosis_runs"]] == [str]  # the report stays in the cache


def test_switching_from_a_gray_to_an_rgb_world_offers_every_rgb_attribute_to_the_attacks():
    # the gray world's choice (eight attributes) once stayed the whole choice in the RGB world, hiding hue and the tints
    from sia_core.semantics import applicable_attributes

    rgb = [a.name for a in applicable_attributes(3)]
    for page, key in (("pages/sia_diagnosis.py", "diag_attributes"), ("pages/sia_explore.py", "sia_attack_attributes")):
        at = open_page(page)
        at.sidebar.selectbox(key="dataset_choice").set_value("shapes").run()
        assert not at.exception, at.exception
        assert at.multiselect(key=f"{key}_{len(rgb)}").value == rgb


def test_explore_and_diagnosis_name_the_attacks_weights_alike(explore):
    diagnosis = open_page("pages/sia_diagnosis.py")
    explore_labels = {explore.slider(key=key).label for key in ("sia_sparsity", "sia_perceptual_weight")}
    diagnosis_labels = {diagnosis.number_input(key=key).label for key in ("diag_sparsity", "diag_perceptual")}
    assert explore_labels == diagnosis_labels == {"Sparsity weight λ (few attributes)",
                                                  "Perceptual weight μ (1 − SSIM)"}
    # and every setting of the attack says what it does
    assert explore.slider(key="sia_steps").help == diagnosis.slider(key="diag_steps").help != ""
    assert explore.checkbox(key="sia_early_stop").help and diagnosis.number_input(key="diag_seed").help
    assert diagnosis.slider(key="diag_n").help


def test_an_image_the_model_already_gets_wrong_shows_no_attack_result(explore):
    from sia_core.resolve import resolve

    subject = resolve("fmnist-standard", "fashion-mnist-subset", n=200)
    wrong = int(((subject.model.logits(subject.test_set.images).argmax(1) != subject.test_set.labels)
                 .nonzero()[0]).item())
    explore.number_input(key="sia_index").set_value(wrong).run()
    explore.slider(key="sia_steps").set_value(5)
    next(b for b in explore.button if b.label == "Run the attack").click().run()
    assert not explore.exception, explore.exception
    text = "\n".join(m.value for m in explore.markdown)
    assert "nothing for an attack to do" in text and "**The attack" not in text
    assert not explore.dataframe and "sia_history" not in [c.key for c in explore.get("plotly_chart")]
