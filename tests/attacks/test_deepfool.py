"""DeepFool against the closed form on linear models: one step lands on the nearest boundary, whose distance is
min over k != y of |f_k - f_y| / ||w_k - w_y||, in the dual norm of the attack's (L2 for L2, L1 for L-inf)."""

from __future__ import annotations

import pytest
import torch

from sia_core.attacks import DeepFool
from tests.conftest import linear_wrapper

SIDE = 4


def _linear_problem(classes: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(classes, SIDE * SIDE, generator=generator)
    # the boundaries pass near the grey image, so every image lies close to one and no step meets the box
    bias = -0.5 * weight.sum(1) + 0.3 * torch.randn(classes, generator=generator)
    images = 0.4 + 0.2 * torch.rand(20, 1, SIDE, SIDE, generator=generator)
    return linear_wrapper(weight, bias, (1, SIDE, SIDE)), weight, bias, images


def _nearest_boundary(weight, bias, images, labels, dual: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the distance to the nearest boundary and w_k - w_y of the class k behind it."""
    logits = images.flatten(1) @ weight.T + bias
    gaps = weight.unsqueeze(0) - weight[labels].unsqueeze(1)  # (N, K, D): w_k - w_y
    size = gaps.abs().sum(2) if dual == "l1" else gaps.norm(dim=2)
    distance = (logits - logits.gather(1, labels.view(-1, 1))).abs() / size
    distance[torch.arange(len(labels)), labels] = float("inf")
    nearest = distance.argmin(1)
    return distance.min(1).values, gaps[torch.arange(len(labels)), nearest]


@pytest.mark.parametrize("classes", [2, 5])
@pytest.mark.parametrize("norm, dual", [("l2", "l2"), ("linf", "l1")])
@pytest.mark.parametrize("overshoot", [0.0, 0.02])
def test_deepfool_matches_the_closed_form_on_linear_models(classes, norm, dual, overshoot):
    model, weight, bias, images = _linear_problem(classes, seed=classes)
    labels = model.logits(images).argmax(1)  # DeepFool measures the distance from the current prediction
    result = DeepFool(norm=norm, overshoot=overshoot)(model, images, labels)
    distance, gap = _nearest_boundary(weight, bias, images, labels, dual)
    delta = (result.images - images).flatten(1)
    assert result.images.min() > 0 and result.images.max() < 1  # the box never bound
    assert bool(result.success.all())

    size = delta.norm(dim=1) if norm == "l2" else delta.abs().amax(1)
    ratio = size / distance
    # at least the distance, at most (1 + overshoot) times it; the 1% covers the 1e-4 DeepFool adds to each logit
    # gap (the smallest here is 0.016) so that its step crosses the boundary instead of touching it
    assert torch.all(ratio >= 1 - 1e-5) and torch.all(ratio <= (1 + overshoot) * 1.01), ratio
    # along w_k - w_y for L2; every pixel by the same amount along sign(w_k - w_y) for L-inf
    direction = gap if norm == "l2" else gap.sign()
    torch.testing.assert_close(torch.cosine_similarity(delta, direction, dim=1), torch.ones(len(images)))


def test_deepfool_refuses_a_target():
    model, _, _, images = _linear_problem(3, seed=0)
    labels = model.logits(images).argmax(1)
    with pytest.raises(ValueError, match="untargeted"):
        DeepFool()(model, images, labels, target=(labels + 1) % 3)
