"""Keypoint models: the normalized mean error on cases worked by hand, the failure rule on both sides, and MTCNN's
O-Net from the facenet-pytorch wheel finding the landmarks of scikit-image's astronaut where a person marks them."""

from __future__ import annotations

import pytest
import torch

from sia_core.errors import ConfigError
from sia_core.keypoints import KeypointTask, inter_ocular_distance, normalized_mean_error, object_size

SQUARE = torch.tensor([[[0.2, 0.2], [0.6, 0.2], [0.6, 0.5], [0.2, 0.5]]])  # a 0.4 × 0.3 box: diagonal 0.5


def test_nme_of_a_shift_is_the_shift_over_the_normalizer():
    shifted = SQUARE + torch.tensor([0.03, 0.04])  # every point moves by 0.05
    assert object_size(SQUARE).item() == pytest.approx(0.5)
    assert inter_ocular_distance(SQUARE).item() == pytest.approx(0.4)  # points 0 and 1
    assert normalized_mean_error(shifted, SQUARE, object_size(SQUARE)).item() == pytest.approx(0.1)
    assert KeypointTask(normalizer="inter-ocular").errors(shifted, SQUARE).item() == pytest.approx(0.125)
    assert KeypointTask().errors(SQUARE, SQUARE).item() == 0


def test_nme_averages_over_points_and_the_failure_rule_has_two_sides():
    one_moved = SQUARE.clone()
    one_moved[0, 2] += torch.tensor([0.0, 0.2])  # one point of four moves 0.2: mean error 0.05, NME 0.1
    task = KeypointTask(normalizer="object-size", threshold=0.09)
    assert task.errors(one_moved, SQUARE).item() == pytest.approx(0.1)
    assert bool(task.failed(one_moved, SQUARE)) and not bool(KeypointTask(threshold=0.11).failed(one_moved, SQUARE))


def test_bad_settings_and_shapes_are_refused():
    with pytest.raises(ConfigError, match="normalizer"):
        KeypointTask(normalizer="eyes")
    with pytest.raises(ConfigError, match="threshold"):
        KeypointTask(threshold=0)
    with pytest.raises(ConfigError, match=r"\(N, K, 2\)"):
        normalized_mean_error(torch.zeros(1, 4), torch.zeros(1, 4), torch.ones(1))
    with pytest.raises(ConfigError, match="differ in shape"):
        normalized_mean_error(torch.zeros(1, 3, 2), torch.zeros(1, 4, 2), torch.ones(1))


# marked by eye on a 3× enlargement of astronaut.png: pupils, nose tip, mouth corners, in the photo's pixels
ASTRONAUT_BOX = (181, 62, 268, 172)
ASTRONAUT_MARKED = torch.tensor([[204.0, 100.0], [245.0, 102.0], [223.0, 126.0], [202.0, 138.0], [243.0, 141.0]])


def test_onet_from_the_wheel_finds_the_astronauts_landmarks_where_a_person_marks_them():
    pytest.importorskip("skimage")
    from skimage import data

    from sia_core.keypoints.faces import FACE_TASK, face_crop, onet_keypoints, points_in_photo
    from sia_core.models.onet import load_onet, onet_input

    photo = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    crop = face_crop(photo, ASTRONAUT_BOX)
    with torch.no_grad():
        output = load_onet()(onet_input(crop))
    assert output.face_probability.item() > 0.99
    model = onet_keypoints()
    points = model.points(crop)
    assert torch.allclose(points, output.landmarks, atol=1e-5)  # the wrapper's normalization is O-Net's scaling
    found = points_in_photo(points, ASTRONAUT_BOX)
    nme = FACE_TASK.errors(found, ASTRONAUT_MARKED.unsqueeze(0)).item()
    assert nme < 0.10, found  # within 10% of the inter-ocular distance, on average over the five points
    distance = (found[0] - ASTRONAUT_MARKED).norm(dim=1) / inter_ocular_distance(ASTRONAUT_MARKED.unsqueeze(0))
    assert bool((distance < 0.15).all()), distance
    image = crop.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(model(image).sum(), image)  # differentiable: attacks can climb NME
    assert gradient.abs().sum() > 0


@pytest.fixture(scope="module")
def astronaut_face():
    pytest.importorskip("skimage")
    from skimage import data

    from sia_core.keypoints.faces import face_crop, onet_keypoints

    photo = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    model = onet_keypoints()
    crop = face_crop(photo, ASTRONAUT_BOX)
    return model, crop, model.points(crop)  # the model's own prediction as the reference


def test_pgd_and_sia_climb_the_nme_of_a_keypoint_model_and_judge_success_by_its_threshold(astronaut_face):
    from sia_core.attacks import PGD, SemanticAttack

    model, crop, reference = astronaut_face
    pgd = PGD(eps=8 / 255, steps=20, seed=0)(model, crop, reference)
    found = model.points(pgd.images)
    nme = model.task.errors(found, reference)
    assert bool(pgd.success) == bool(nme > 0.1) and nme.item() > 0.1  # O-Net breaks at 8/255
    assert pgd.history["success_rate"] and not bool(pgd.already_fooled)
    sia = SemanticAttack(steps=30, eps_linf=0.0, attributes=("brightness", "contrast", "hue", "saturation"))(
        model, crop, reference)
    assert sia.history["nme"][-1] > sia.history["nme"][0]  # photometric edits alone push the landmarks away
    assert bool(sia.success) == bool(model.task.errors(model.points(sia.images), reference) > 0.1)


def test_at_its_own_prediction_a_keypoint_model_has_no_gradient_so_sia_starts_one_seeded_step_off(astronaut_face):
    """The NME is exactly 0 at the model's own points, and so is its gradient: an attack started there never moves
    (on a CPU whose forward passes repeat bit for bit, there is no rounding noise to push it). SIA starts one
    attribute step away, in a direction its seed fixes, and a classifier's start stays the unedited image."""
    from sia_core.attacks import SemanticAttack
    from sia_core.attacks.objective import objective_of
    from sia_core.semantics import attribute_range

    model, crop, reference = astronaut_face
    x = crop.clone().requires_grad_(True)
    error = objective_of(model).loss(model(x), reference)
    assert error.item() == 0.0 and not torch.autograd.grad(error.sum(), x)[0].any()
    names = ("brightness", "hue")
    runs = [SemanticAttack(steps=0, eps_linf=0.0, attributes=names, seed=seed)(model, crop, reference)
            for seed in (0, 0, 1)]
    assert torch.equal(runs[0].attribute_values, runs[1].attribute_values)  # seeded
    assert not torch.equal(runs[0].attribute_values, runs[2].attribute_values)
    for k, name in enumerate(names):
        low, high = attribute_range(name, crop.shape)
        start = runs[0].attribute_values[0, k].item()
        assert 0 < abs(start) <= 0.1 * (high - low) + 1e-6  # one attribute step (0.1 of the range) at most
    classifier = SemanticAttack(steps=0, eps_linf=0.0)
    assert classifier._initial_alpha(names, 1, crop, flat_at_start=False).eq(0).all()


def test_a_geometric_edit_moves_the_reference_with_the_face_so_following_it_is_no_success(astronaut_face):
    """Shifting the face moves its landmarks: a model that follows is right, and the attack is judged against the
    moved points, not the old ones."""
    from sia_core.attacks.objective import objective_of
    from sia_core.semantics import apply_attributes

    model, crop, reference = astronaut_face
    params = {"translate_x": torch.tensor([4.0]), "translate_y": torch.tensor([-3.0])}
    shifted = apply_attributes(crop, params)
    moved = objective_of(model).reference_after(reference, crop, params)
    assert torch.allclose(moved - reference, torch.tensor([4.0, -3.0]) / 48, atol=1e-5)
    found = model.points(shifted)
    assert model.task.errors(found, moved).item() < model.task.errors(found, reference).item()
    assert model.task.errors(found, moved).item() < 0.1  # O-Net follows a shifted face


def test_keypoint_attacks_are_untargeted(astronaut_face):
    from sia_core.attacks import PGD

    model, crop, reference = astronaut_face
    with pytest.raises(ConfigError, match="untargeted"):
        PGD(eps=2 / 255, steps=2)(model, crop, reference, target=reference)
