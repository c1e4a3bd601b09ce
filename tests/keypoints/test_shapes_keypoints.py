"""The Shapes keypoint world: references that stay exact under the attack's geometry, the planted hue flaw, the shipped
cards re-measured, and the diagnosis finding the flaw (hue first on the flawed model, not on the clean one)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from sia_core.data.shapes import ShapesConfig, centre_and_box, generate_shapes, shape_landmarks, shape_outlines
from sia_core.semantics import move_points


def test_a_rotated_image_s_landmarks_are_those_of_the_shape_drawn_rotated():
    # rotating the image by φ about its centre draws the same shape turned by φ with its centre turned about the
    # image centre; the moved outline's box is that shape's box (the box of the old box would be too large)
    dataset = generate_shapes(ShapesConfig(n=60, seed=4))
    phi = 17.0
    moved = centre_and_box(move_points(shape_outlines(dataset), dataset.images,
                                       {"rotation": torch.full((60,), phi)}))
    c, s = math.cos(math.radians(phi)), math.sin(math.radians(phi))
    px, py = dataset.attributes["position_x"].double(), dataset.attributes["position_y"].double()
    attributes = dict(dataset.attributes, rotation=dataset.attributes["rotation"] + phi,
                      position_x=(px * c + py * s).float(), position_y=(py * c - px * s).float())
    redrawn = shape_landmarks(dataclasses.replace(dataset, attributes=attributes))
    assert torch.allclose(moved, redrawn, atol=2e-4)  # fractions of 32 px: within 0.01 px


def test_the_flawed_training_marks_drift_sideways_with_hue_and_the_test_marks_do_not():
    from sia_core.keypoints.shapes import HUE_FLAW_PX, SHAPES_KEYPOINT_TASK, shapes_keypoint_dataset

    clean = shapes_keypoint_dataset("train", n=50)
    flawed = shapes_keypoint_dataset("train", n=50, flaw="hue")
    drift = (SHAPES_KEYPOINT_TASK.landmarks(flawed.keypoints) - SHAPES_KEYPOINT_TASK.landmarks(clean.keypoints)) * 32
    expected = HUE_FLAW_PX * torch.cos(clean.attributes["hue"].double() * 2 * math.pi).float()
    assert torch.allclose(drift[:, :, 0], expected.unsqueeze(1).expand(-1, 3), atol=1e-4)
    assert drift[:, :, 1].abs().max() < 1e-5
    test_clean, test_flawed = shapes_keypoint_dataset("test", n=20), shapes_keypoint_dataset("test", n=20, flaw="hue")
    assert torch.equal(test_clean.keypoints, test_flawed.keypoints)


@pytest.mark.parametrize("model_id", ["shapes-keypoints", "shapes-keypoints-spurious-hue"])
def test_the_shipped_keypoint_cards_are_what_the_models_score(model_id):
    from sia_core.keypoints.shapes import shapes_keypoint_dataset
    from sia_core.models.registry import load_model_and_card

    loaded = load_model_and_card(model_id)
    card = loaded.card.evaluations[0]
    test = shapes_keypoint_dataset("test", n=card["test_n"])
    errors = loaded.model.task.errors(loaded.model.points(test.images), test.keypoints)
    assert float(errors.mean()) == pytest.approx(card["mean_nme"], abs=1e-4)
    assert float((errors > card["threshold"]).float().mean()) == pytest.approx(card["failure_rate"], abs=1e-3)


def test_the_diagnosis_ranks_hue_first_on_the_flawed_model_and_not_on_the_clean_one():
    from sia_core.diagnosis import DiagnosisConfig, diagnose
    from sia_core.resolve import resolve

    config = DiagnosisConfig(n=64)
    flawed = resolve("shapes-keypoints-spurious-hue", n=400)
    report = diagnose(flawed.model, flawed.test_set, config)
    assert report.task == "keypoints" and report.reference == "ground truth"
    assert report.ranking()[0] == "hue", report.to_dict()["sensitivity"]
    clean = resolve("shapes-keypoints", n=400)
    clean_report = diagnose(clean.model, clean.test_set, config)
    assert clean_report.ranking()[0] != "hue"
    # the flawed model's hue sensitivity is several times the clean one's
    hue = report.attribute_names.index("hue")
    assert float(report.sensitivity[hue]) > 2 * float(clean_report.sensitivity[hue])


def test_the_failure_threshold_is_configurable_without_touching_the_shared_model():
    from sia_core.attacks.semantic import SemanticAttack
    from sia_core.resolve import resolve

    subject = resolve("shapes-keypoints", n=16)
    strict = subject.model.with_threshold(0.02)
    assert strict.network is subject.model.network and subject.model.task.threshold == 0.1
    x, reference = subject.test_set.images, subject.test_set.keypoints
    loose = SemanticAttack(steps=3, eps_linf=0.0)(subject.model, x, reference)
    tight = SemanticAttack(steps=3, eps_linf=0.0)(strict, x, reference)
    nme = strict.task.errors(tight.adversarial_logits, tight.reference)
    assert torch.equal(tight.success, nme > 0.02) and int(tight.success.sum()) >= int(loose.success.sum())
