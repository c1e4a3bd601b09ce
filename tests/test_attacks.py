"""FGSM and PGD: they never leave the eps-ball or [0, 1], success is honest, and known answers hold."""

from __future__ import annotations

import pytest
import torch

from sia_core.attacks import FGSM, PGD, make_attack, quantize_8bit
from tests.conftest import linear_wrapper, make_wrapper

CONFIGS = [
    pytest.param(FGSM(eps=0.1), id="fgsm"),
    pytest.param(FGSM(eps=0.1, random_start=True, seed=3), id="fgsm-rs"),
    pytest.param(PGD(eps=0.1, norm="linf", steps=10, seed=0), id="pgd-linf"),
    pytest.param(PGD(eps=0.05, norm="linf", steps=5, random_start=False), id="pgd-linf-nors"),
    pytest.param(PGD(eps=0.5, norm="l2", steps=10, seed=0), id="pgd-l2"),
    pytest.param(PGD(eps=2.0, norm="l2", steps=5, step_size=1.0, seed=1), id="pgd-l2-large"),
]


def _norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


@pytest.mark.parametrize("attack", CONFIGS)
@pytest.mark.parametrize("targeted", [False, True])
def test_stays_in_ball_and_unit_box(attack, targeted, tiny_batch):
    model = make_wrapper()
    images, labels = tiny_batch
    images = images.clone()
    images[:4] = 0.0  # corners of the box exercise the clipping
    images[4:8] = 1.0
    target = (labels + 1) % 4 if targeted else None
    result = attack(model, images, labels, target=target)
    norm = getattr(attack, "norm", "linf")
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert torch.all(_norm(result.images - images, norm) <= attack.eps + 1e-5)
    torch.testing.assert_close(result.perturbation_linf, (result.images - images).flatten(1).abs().amax(1))


@pytest.mark.parametrize("attack", CONFIGS)
def test_success_is_recomputed_on_returned_images(attack, tiny_batch):
    model = make_wrapper()
    images, labels = tiny_batch
    result = attack(model, images, labels)
    with torch.no_grad():
        predictions = model(result.images).argmax(1)
        rounded = model(quantize_8bit(result.images)).argmax(1)
    assert torch.equal(result.success, predictions != labels)
    assert torch.equal(result.success_after_rounding, rounded != labels)
    assert torch.equal(result.adversarial_predictions, predictions)


def test_fgsm_on_linear_model_moves_along_sign_of_weight_difference():
    # Two classes, logits = W x: the CE gradient for label 0 points along (w1 - w0), so FGSM adds eps * sign(w1 - w0).
    torch.manual_seed(0)
    weight = torch.randn(2, 16)
    model = linear_wrapper(weight, torch.zeros(2), (1, 4, 4))
    images = torch.full((3, 1, 4, 4), 0.5)
    labels = torch.zeros(3, dtype=torch.long)
    result = FGSM(eps=0.1)(model, images, labels)
    expected = 0.5 + 0.1 * torch.sign(weight[1] - weight[0]).view(1, 1, 4, 4)
    torch.testing.assert_close(result.images, expected.expand(3, -1, -1, -1))


def test_pgd_l2_on_linear_model_reaches_the_boundary_when_eps_exceeds_the_margin():
    # Binary linear model: the L2 distance to the boundary is |w.x + b| / ||w||; an eps just above it must flip.
    weight = torch.tensor([[1.0, -1.0, 0.5, 0.0], [-1.0, 1.0, -0.5, 0.0]])
    model = linear_wrapper(weight, torch.zeros(2), (1, 2, 2))
    x = torch.tensor([[0.7, 0.4, 0.6, 0.5]]).view(1, 1, 2, 2)
    w = weight[0] - weight[1]
    margin = float((w @ x.flatten()).abs() / w.norm())
    label = torch.tensor([0])
    assert not PGD(eps=margin * 0.95, norm="l2", steps=50, random_start=False)(model, x, label).success.item()
    assert PGD(eps=margin * 1.05, norm="l2", steps=50, random_start=False)(model, x, label).success.item()


def test_targeted_pgd_reaches_the_target_more_often_than_untargeted():
    model = make_wrapper(seed=2)
    generator = torch.Generator().manual_seed(5)
    images = torch.rand(64, 1, 8, 8, generator=generator)
    labels = model.logits(images).argmax(1)
    target = (labels + 1) % 4
    targeted = PGD(eps=0.5, steps=20, seed=0)(model, images, labels, target=target)
    untargeted = PGD(eps=0.5, steps=20, seed=0)(model, images, labels)
    assert targeted.success_rate > 0.9
    assert float((untargeted.adversarial_predictions == target).float().mean()) < targeted.success_rate


def test_pgd_is_stronger_than_fgsm_and_deterministic_with_a_seed():
    model = make_wrapper(seed=4)
    generator = torch.Generator().manual_seed(6)
    images = torch.rand(128, 1, 8, 8, generator=generator)
    labels = model.logits(images).argmax(1)
    pgd = PGD(eps=0.03, steps=20, seed=7)
    first, second = pgd(model, images, labels), pgd(model, images, labels)
    assert torch.equal(first.images, second.images)
    assert first.success_rate >= FGSM(eps=0.03)(model, images, labels).success_rate
    assert len(first.history["loss"]) == 20


def test_progress_callback_sees_every_step():
    model = make_wrapper()
    seen = []
    PGD(eps=0.1, steps=4)(model, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]),
                          progress=lambda step, total, info: seen.append((step, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_attack_leaves_model_state_untouched():
    model = make_wrapper()
    model.train()
    PGD(eps=0.1, steps=2)(model, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_make_attack_and_bad_parameters():
    assert isinstance(make_attack("pgd-l2", eps=0.5), PGD)
    with pytest.raises(ValueError):
        make_attack("cw", eps=0.1)
    with pytest.raises(ValueError):
        PGD(eps=-1.0)
    with pytest.raises(ValueError):
        PGD(eps=0.1, norm="l1")  # type: ignore[arg-type]
