"""Margins: free scores, input margins against the closed form on linear models, detection metrics against
hand-computed and scikit-learn values, the pseudo-margin, the whole study, and configs that refuse bad values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sia_core.data.base import ImageDataset
from sia_core.errors import ConfigError, DataError
from sia_core.margins import (InputMarginEstimator, MarginSummary, adversarial_at_margin, binned_median_curve, consistency, detection_metrics,
                              fit_pseudo_margin, margin_scores, margin_study, pseudo_margin_fit_images,
                              pseudo_margin_study, robust_accuracy_from_margins, sample_efficient_robust_accuracy)
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
    # every margin is a found flip, so never below the truth (float rounding aside), and on a plane it meets it
    assert torch.all(ratio >= 1 - 1e-5) and torch.all(ratio <= 1.05), ratio
    assert float(ratio.median()) <= 1.001, ratio
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


def test_detection_metrics_with_tied_scores_match_hand_computed_and_sklearn_values():
    """Six samples, positives (margin <= eps) at 0, 2, 3; scores tie at 0.9 (one positive, one negative) and at 0.6
    (two positives, one negative). By hand, thresholds 0.9 / 0.6 / 0.1 give (recall, precision) = (1/3, 1/2),
    (1, 3/5), (1, 1/2), so AP = 1/3 * 1/2 + 2/3 * 3/5 = 17/30; AUROC counts a tie as half a win: 5.5 / 9; the
    first threshold reaching 95% TPR is 0.6, at FPR 2/3. Ranking tied samples one by one in index order (the old
    hand-written AP) gives (1 + 2/3 + 3/4) / 3 = 0.806 instead."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    margins = torch.tensor([0.01, 0.5, 0.01, 0.01, 0.5, 0.5])
    score = torch.tensor([0.9, 0.9, 0.6, 0.6, 0.6, 0.1])
    metrics = detection_metrics(margins, score, eps=0.1)
    labels = np.array([1, 0, 1, 1, 0, 0])
    assert metrics.positives == 3 and metrics.negatives == 3
    assert metrics.aupr == pytest.approx(17 / 30) == pytest.approx(average_precision_score(labels, score.numpy()))
    assert metrics.auroc == pytest.approx(5.5 / 9) == pytest.approx(roc_auc_score(labels, score.numpy()))
    assert metrics.fpr_at_95_tpr == pytest.approx(2 / 3)
    # one ROC point per distinct score, from (0, 0): the tie at 0.9 is one diagonal step, not two
    np.testing.assert_allclose(metrics.roc_fpr, [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(metrics.roc_tpr, [0, 1 / 3, 1, 1])


def test_roc_curve_of_all_tied_scores_is_the_diagonal():
    metrics = detection_metrics(torch.tensor([0.0, 1.0, 0.0, 1.0]), torch.full((4,), 0.5), eps=0.5)
    assert metrics.roc_fpr.tolist() == [0.0, 1.0] and metrics.roc_tpr.tolist() == [0.0, 1.0]
    assert metrics.auroc == 0.5 and metrics.aupr == 0.5 and metrics.fpr_at_95_tpr == 1.0


def test_binned_median_curve_is_monotone_for_a_consistent_score():
    margins = torch.linspace(0, 1, 500)
    curve = binned_median_curve(margins, 3 * margins + 1, bins=10)
    assert len(curve["centers"]) == 10 and curve["median"] == sorted(curve["median"])
    # evenly spread margins and a linear score: each bin's median is its centre, placed in the kept 5%-95% range
    low, high = np.percentile(margins.numpy(), [5, 95])
    expected = [(center - low) / (high - low) for center in curve["centers"]]
    assert curve["median"] == pytest.approx(expected, abs=0.01)


def test_pseudo_margin_learns_a_monotone_target_from_inputs():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(400, 5, generator=generator)
    margins = (inputs[:, 0] - inputs[:, 0].min() + 0.01) ** 2 * 0.01  # depends on feature 0 only
    scrambled_logit_margin = torch.rand(200, generator=generator)     # a useless "logit margin"
    torch.manual_seed(123)
    server_state = torch.random.get_rng_state()
    result = fit_pseudo_margin(inputs[:200], margins[:200], inputs[200:], margins[200:], scrambled_logit_margin,
                               eps=float(margins.median()), epochs=200)
    assert torch.equal(torch.random.get_rng_state(), server_state)  # the global generator is left alone
    assert result.kendall_tau_after > 0.8 > abs(result.kendall_tau_before) + 0.5
    assert result.auroc_after > 0.9
    again = fit_pseudo_margin(inputs[:200], margins[:200], inputs[200:], margins[200:], scrambled_logit_margin,
                              eps=float(margins.median()), epochs=200)
    assert torch.equal(again.predicted, result.predicted)  # the seed alone decides the network


def test_sample_efficient_estimate_matches_a_consistent_score():
    generator = torch.Generator().manual_seed(1)
    margins = torch.rand(1000, generator=generator) * 0.1
    logit_margin = margins * 50  # perfectly consistent
    correct = torch.rand(1000, generator=generator) > 0.1
    attacked = torch.randperm(1000, generator=generator)[:200]
    estimate, _ = sample_efficient_robust_accuracy(logit_margin, correct, attacked, margins[attacked], eps=0.03)
    assert abs(estimate - robust_accuracy_from_margins(margins, correct, 0.03)) < 0.03


def test_margin_study_summary_on_a_linear_model():
    model, weight, bias, images = _linear_problem()
    labels = model.logits(images).argmax(1)
    labels[:5] = (labels[:5] + 1) % K  # five wrong labels
    estimator = InputMarginEstimator(norm="l2", bisection_steps=4)
    study = margin_study(model, images, labels, norm="l2", eps=0.05, estimator=estimator, dataset="toy")
    summary = study.summary(attacked=10)
    assert isinstance(summary, MarginSummary)
    truth = exact_margin(weight, bias, images, study.scores.predictions, "l2")
    assert summary.n == 30 and summary.norm == "l2" and summary.eps == 0.05 and summary.dataset == "toy"
    assert summary.non_robust_share == pytest.approx(float((study.input.margins <= 0.05).float().mean()))
    assert summary.robust_accuracy_attack == pytest.approx(float((study.correct & (study.input.margins > 0.05))
                                                                 .float().mean()))
    assert summary.robust_accuracy_attack <= 25 / 30 and summary.estimate_attacked_samples == 10
    assert summary.kendall_tau == pytest.approx(consistency(study.input.margins, study.scores.logit_margin)["kendall_tau"])
    assert torch.allclose(study.input.margins, truth, rtol=0.05)
    assert summary.to_dict()["auroc"] == summary.auroc and list(summary.to_dict())[:5] == ["model", "dataset", "n",
                                                                                          "norm", "eps"]
    assert study.summary(eps=1e9).non_robust_share == 1.0


def test_a_study_saved_without_its_images_finds_each_one_again():
    model, _, _, images = _linear_problem()
    estimator = InputMarginEstimator(norm="linf", bisection_steps=4)
    study = margin_study(model, images, model.logits(images).argmax(1), estimator=estimator)
    slim = study.without_adversarial_images()
    assert slim.input.adversarial_images.shape == (0, 1, SIDE, SIDE) and slim.summary() == study.summary()
    for index in (0, 7, 29):  # the estimator works image by image: the same flip as in the batch
        again = adversarial_at_margin(model, images[index], estimator=estimator)
        assert torch.allclose(again, study.input.adversarial_images[index], atol=1e-6)


def test_pseudo_margin_study_falls_back_on_test_images_and_refuses_too_few():
    model, _, _, images = _linear_problem()
    more = torch.rand(60, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(5)) * 0.4 + 0.3
    test_images = torch.cat([images, more])
    estimator = InputMarginEstimator(norm="linf", bisection_steps=2)
    study = margin_study(model, images, model.logits(images).argmax(1), estimator=estimator)
    pseudo = pseudo_margin_study(model, study, test_images, train_set=None, estimator=estimator, fit_n=50,
                                 source="logits", eps=float(study.input.margins.median()))
    assert pseudo.fit_split == "test images 30..79 (no training split here)" and pseudo.fit_n == 50
    assert pseudo.result.predicted.shape == (30,)
    with pytest.raises(DataError, match="Only 10 held-out images"):
        pseudo_margin_study(model, study, test_images[:40], train_set=None, estimator=estimator, fit_n=50,
                            source="logits", eps=0.1)
    train = ImageDataset("toy-train", more, torch.zeros(60, dtype=torch.long), tuple(f"c{i}" for i in range(K)))
    fit_images, split = pseudo_margin_fit_images(train, 20, test_images, skip=30)
    order = torch.randperm(60, generator=torch.Generator().manual_seed(1380))[:20]  # the paper's code's seed
    assert torch.equal(fit_images, more[order]) and split == "20 random images of toy-train"


@pytest.mark.parametrize("options", [dict(norm="l1"), dict(norm="L2"), dict(bisection_steps=-1),
                                     dict(bisection_steps=1.5), dict(pgd_steps=0), dict(max_eps=0.0),
                                     dict(max_eps=-1.0), dict(batch_size=0)])
def test_input_margin_estimator_refuses_bad_values(options):
    with pytest.raises(ConfigError):
        InputMarginEstimator(**options)


def test_margin_functions_refuse_bad_values():
    model, _, _, images = _linear_problem()
    labels = torch.zeros(len(images), dtype=torch.long)
    with pytest.raises(ConfigError, match="norm"):
        margin_study(model, images, labels, norm="l1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="eps"):
        margin_study(model, images, labels, eps=-0.1)
    with pytest.raises(ConfigError, match="images"):
        margin_study(model, images[:0], labels[:0])
    with pytest.raises(ConfigError, match="estimator measures l2"):
        margin_study(model, images, labels, norm="linf", estimator=InputMarginEstimator(norm="l2"))
    inputs, margins = torch.randn(10, 3), torch.rand(10)
    for options in (dict(epochs=0), dict(learning_rate=0.0), dict(learning_rate=-1e-3)):
        with pytest.raises(ConfigError):
            fit_pseudo_margin(inputs, margins, inputs, margins, margins, 0.5, **options)
    with pytest.raises(ConfigError, match="count"):
        pseudo_margin_fit_images(None, 0, images, skip=0)
    study = margin_study(model, images[:4], labels[:4], estimator=InputMarginEstimator(bisection_steps=0, pgd_steps=1))
    for options in (dict(attacked=0), dict(eps=-0.1)):
        with pytest.raises(ConfigError):
            study.summary(**options)


@pytest.mark.parametrize("norm, dual", [("linf", "l1"), ("l2", "l2")])
def test_the_boundary_walk_shrinks_a_far_flip_to_the_closed_form_margin(norm, dual):
    """Started from flips twice as far as DeepFool's, the walk alone comes back to the exact margin from above."""
    model, weight, bias, images = _linear_problem(3)
    estimator = InputMarginEstimator(norm=norm)
    predictions = model.logits(images).argmax(1)
    near = estimator(model, images).adversarial_images
    far = (images + 2 * (near - images)).clamp(0, 1)
    assert torch.all(model.logits(far).argmax(1) != predictions)
    truth = exact_margin(weight, bias, images, predictions, dual)
    distance, walked = estimator._walk(model, images, predictions, far, steps=100)
    assert torch.all(model.logits(walked).argmax(1) != predictions)
    ratio = distance / truth
    assert torch.all(ratio >= 1 - 1e-5) and float(ratio.median()) <= 1.01, ratio


def test_fab_from_the_library_and_ours_both_meet_a_linear_models_margin_and_ours_is_not_looser():
    from sia_core.margins.reference import compare_with_fab

    model, weight, bias, images = _linear_problem(0)
    for norm, dual in (("linf", "l1"), ("l2", "l2")):
        comparison = compare_with_fab(model, images[:12], norm, fab_steps=20, turns=2)
        truth = exact_margin(weight, bias, images[:12], model.logits(images[:12]).argmax(1), dual)
        ours, fab = torch.tensor(comparison.ours), torch.tensor(comparison.fab)
        assert comparison.found_ours == comparison.found_fab == 12
        assert torch.all(ours >= truth * (1 - 1e-5)) and torch.all(fab >= truth * (1 - 1e-4))  # both upper bounds
        assert comparison.median_ratio <= 1.0 + 1e-3 and comparison.speedup > 0
