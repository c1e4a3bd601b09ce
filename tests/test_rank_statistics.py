"""The NumPy rank statistics against their references (SciPy, scikit-learn) and against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau, pearsonr, rankdata
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from sia_core.rank_statistics import average_precision, average_ranks, kendall_tau_b, pearson_r, roc_auc, roc_points


def _samples(seed: int, n: int, tied: bool) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    first = generator.normal(size=n)
    second = first + generator.normal(scale=1.5, size=n)
    if tied:  # coarse values: many ties in each variable and joint ties
        first, second = np.round(first * 2) / 2, np.round(second)
    return first, second


def test_average_ranks_by_hand_and_against_scipy_along_rows():
    assert average_ranks(np.array([10.0, 20.0, 10.0, 30.0, 20.0, 20.0])).tolist() == [1.5, 4.0, 1.5, 6.0, 4.0, 4.0]
    rows = np.random.default_rng(0).integers(0, 5, size=(7, 40)).astype(np.float32)
    np.testing.assert_array_equal(average_ranks(rows), rankdata(rows, axis=1))
    np.testing.assert_array_equal(average_ranks(np.full((2, 5), 3.0)), np.full((2, 5), 3.0))


def test_kendall_tau_b_by_hand():
    assert kendall_tau_b(np.arange(6), np.arange(6)) == pytest.approx(1.0)
    assert kendall_tau_b(np.arange(6), -np.arange(6)) == pytest.approx(-1.0)
    # pairs: (1,2)(1,3)(2,3) with x = 1, 2, 2 and y = 1, 1, 2: one concordant pair (1,3), one tie in x (2,3), one
    # tie in y (1,2): tau_b = 1 / sqrt((3 - 1)(3 - 1)) = 1/2
    assert kendall_tau_b(np.array([1, 2, 2]), np.array([1, 1, 2])) == pytest.approx(0.5)
    assert np.isnan(kendall_tau_b(np.ones(4), np.arange(4)))


@pytest.mark.parametrize("seed, n, tied", [(0, 2, False), (1, 3, True), (2, 37, False), (3, 64, True),
                                           (4, 1000, True), (5, 5001, False), (6, 5001, True)])
def test_kendall_tau_b_and_pearson_match_scipy(seed, n, tied):
    first, second = _samples(seed, n, tied)
    assert kendall_tau_b(first, second) == pytest.approx(kendalltau(first, second).statistic, abs=1e-12)
    assert pearson_r(first, second) == pytest.approx(pearsonr(first, second).statistic, abs=1e-12)


@pytest.mark.parametrize("seed, n, tied", [(0, 10, False), (1, 50, True), (2, 2000, True), (3, 999, False)])
def test_roc_auroc_and_average_precision_match_scikit_learn(seed, n, tied):
    scores, noisy = _samples(seed, n, tied)
    labels = (noisy > 0.3).astype(np.int64)
    fpr, tpr, thresholds = roc_points(labels, scores)
    reference_fpr, reference_tpr, reference_thresholds = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, reference_fpr)
    np.testing.assert_allclose(tpr, reference_tpr)
    np.testing.assert_array_equal(thresholds[1:], reference_thresholds[1:])
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
