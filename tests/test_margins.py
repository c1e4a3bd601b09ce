"""Margins: free scores, input margins against the closed form on linear models, and detection metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sia_core.margins import (InputMarginEstimator, binned_median_curve, consistency, detection_metrics,
                              margin_scores, roc_curve)
from tests.conftest import linear_wrapper

K, SIDE = 4, 4


def _linear_problem(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(K, SIDE * SIDE, generator=generator) * 0.5
    bias = torch.randn(K, generator=generator) * 0.1
    model = linear_wrapper(weight, bias, (1, SIDE, SIDE))
    images = torch.rand(30, 1, SIDE, SIDE, generator=generator) * 0.4 + 0.3  # interior: the box does not bind
    return model, weight, bias, images


def exact_margin(weight, bias, images, predictions, dual: str) -> torch.Tensor:
    """min over j != y of |(w_y - w_j).x + b_y - b_j| / ||w_y - w_j||_dual: the multi-class closed form."""
    flat = images.flatten(1)
    best = torch.full((len(predictions),), float("inf"))
    for j in range(K):
        w = weight[predictions] - weight[j]
        value = ((flat * w).sum(1) + bias[predictions] - bias[j]).abs()
        value = value / (w.abs().sum(1) if dual == "l1" else w.norm(dim=1))
        best = torch.minimum(best, torch.where(predictions == j, torch.full_like(value, float("inf")), value))
    return best


@pytest.mark.parametrize("norm, dual", [("linf", "l1"), ("l2", "l2")])
@pytest.mark.parametrize("seed", [0, 1])
def test_input_margins_match_the_closed_form_on_linear_models(norm, dual, seed):
    model, weight, bias, images = _linear_problem(seed)
    estimate = InputMarginEstimator(norm=norm)(model, images)
    predictions = model.logits(images).argmax(1)
    truth = exact_margin(weight, bias, images, predictions, dual)
    assert torch.equal(estimate.predictions, predictions) and bool(estimate.found.all())
    ratio = estimate.margins / truth
    assert torch.all(ratio >= 0.995) and torch.all(ratio <= 1.05), ratio  # an upper bound, within 5% of the truth
    assert torch.all(model.logits(estimate.adversarial_images).argmax(1) != predictions)
    delta = (estimate.adversarial_images - images).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert torch.all(size <= estimate.margins + 1e-5)


def test_free_scores_on_a_known_linear_model():
    model, weight, bias, images = _linear_problem()
    labels = torch.zeros(len(images), dtype=torch.long)
    scores = margin_scores(model, images, labels, batch_size=7)
    logits = model.logits(images)
    top = logits.topk(2, dim=1)
    torch.testing.assert_close(scores.logit_margin, top.values[:, 0] - top.values[:, 1])
    gap = (weight[top.indices[:, 0]] - weight[top.indices[:, 1]]).abs().sum(1)
    torch.testing.assert_close(scores.feature_margin, (top.values[:, 0] - top.values[:, 1]) / gap)
    others = logits[:, 1:].max(1).values
    torch.testing.assert_close(scores.true_class_margin, logits[:, 0] - others)
    assert torch.all(scores.max_probability >= 1 / K) and torch.all(scores.probability_margin >= 0)


def test_consistency_and_detection_metrics_known_values():
    margins = torch.linspace(0.01, 0.2, 100)
    assert consistency(margins, margins ** 2)["kendall_tau"] == pytest.approx(1.0)
    assert consistency(margins, -margins)["pearson"] == pytest.approx(-1.0)
    perfect = detection_metrics(margins, -margins, eps=0.1)  # negative margin as the score: a perfect detector
    assert perfect.auroc == pytest.approx(1.0) and perfect.aupr == pytest.approx(1.0) and perfect.fpr_at_95_tpr == 0.0
    reversed_ = detection_metrics(margins, margins, eps=0.1)
    assert reversed_.auroc == pytest.approx(0.0) and reversed_.fpr_at_95_tpr == 1.0
    noise = detection_metrics(margins, torch.rand(100, generator=torch.Generator().manual_seed(0)), eps=0.1)
    assert 0.3 < noise.auroc < 0.7
    degenerate = detection_metrics(margins, -margins, eps=1.0)  # everything non-robust: undefined, not a crash
    assert np.isnan(degenerate.auroc) and degenerate.negatives == 0


def test_roc_curve_handles_ties():
    fpr, tpr, _ = roc_curve(np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.5, 0.5]))
    assert fpr.tolist() == [0.0, 1.0] and tpr.tolist() == [0.0, 1.0]


def test_binned_median_curve_is_monotone_for_a_consistent_score():
    margins = torch.linspace(0, 1, 500)
    curve = binned_median_curve(margins, 3 * margins + 1, bins=10)
    assert len(curve["centers"]) == 10 and curve["median"] == sorted(curve["median"])
    assert min(curve["median"]) >= 0 and max(curve["median"]) <= 1


def test_pseudo_margin_learns_a_monotone_target_from_inputs():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(400, 5, generator=generator)
    margins = (inputs[:, 0] - inputs[:, 0].min() + 0.01) ** 2 * 0.01  # depends on feature 0 only
    scrambled_logit_margin = torch.rand(200, generator=generator)     # a useless "logit margin"
    from sia_core.margins import fit_pseudo_margin

    result = fit_pseudo_margin(inputs[:200], margins[:200], inputs[200:], margins[200:], scrambled_logit_margin,
                               eps=float(margins.median()), epochs=200)
    assert result.kendall_tau_after > 0.8 > abs(result.kendall_tau_before) + 0.5
    assert result.auroc_after > 0.9


def test_sample_efficient_estimate_matches_a_consistent_score():
    from sia_core.margins import robust_accuracy_from_margins, sample_efficient_robust_accuracy

    generator = torch.Generator().manual_seed(1)
    margins = torch.rand(1000, generator=generator) * 0.1
    logit_margin = margins * 50  # perfectly consistent
    correct = torch.rand(1000, generator=generator) > 0.1
    attacked = torch.randperm(1000, generator=generator)[:200]
    estimate, _ = sample_efficient_robust_accuracy(logit_margin, correct, attacked, margins[attacked], eps=0.03)
    assert abs(estimate - robust_accuracy_from_margins(margins, correct, 0.03)) < 0.03
