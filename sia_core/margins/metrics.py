"""How well a free score stands in for the input margin: rank consistency (Kendall τ, Pearson r), detection of
non-robust inputs (AUROC, AUPR, FPR at 95% TPR, by scikit-learn's definitions) and the binned median curve
(Ngnawé et al. 2024)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sia_core.numerics import TINY
from sia_core.rank_statistics import average_precision, kendall_tau_b, pearson_r, roc_auc, roc_points


@dataclass(frozen=True)
class DetectionMetrics:
    """Detecting non-robust samples (input margin <= eps) with a score; higher score = more non-robust."""

    eps: float
    positives: int
    negatives: int
    auroc: float
    aupr: float  # average precision, scikit-learn's step-wise definition (no interpolation; ties form one step)
    fpr_at_95_tpr: float
    roc_fpr: np.ndarray  # one point per distinct score, from (0, 0)
    roc_tpr: np.ndarray


def consistency(input_margins: torch.Tensor, score: torch.Tensor) -> dict[str, float]:
    """Kendall τ and Pearson r between the input margin and a score (Ngnawé et al. 2024)."""
    a, b = input_margins.double().numpy(), score.double().numpy()
    if len(a) < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return {"kendall_tau": 0.0, "pearson": 0.0}
    return {"kendall_tau": kendall_tau_b(a, b), "pearson": pearson_r(a, b)}


def detection_metrics(input_margins: torch.Tensor, score: torch.Tensor, eps: float) -> DetectionMetrics:
    """AUROC, AUPR (non-robust = positive) and FPR at 95% TPR of `score` for input margin <= eps.

    With only one class present the metrics are undefined: NaN, not an error.
    """
    labels = (input_margins <= eps).numpy().astype(np.int64)
    scores = score.double().numpy()
    positives, negatives = int(labels.sum()), int(len(labels) - labels.sum())
    if positives == 0 or negatives == 0:
        nan = float("nan")
        return DetectionMetrics(eps, positives, negatives, nan, nan, nan, np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    # every distinct score keeps its point, so the plotted curve and FPR@95 see each threshold
    fpr, tpr, _ = roc_points(labels, scores)
    fpr_at_95 = float(fpr[np.argmax(tpr >= 0.95)])
    return DetectionMetrics(eps, positives, negatives, roc_auc(labels, scores), average_precision(labels, scores),
                            fpr_at_95, fpr, tpr)


def binned_median_curve(input_margins: torch.Tensor, logit_margins: torch.Tensor, bins: int = 20) -> dict[str, list]:
    """Ngnawé et al. 2024's main figure: drop the 5%/95% tails, min-max normalize the logit margin, then the median
    and standard error per equal-width input-margin bin."""
    a, b = input_margins.double().numpy(), logit_margins.double().numpy()
    low, high = np.percentile(a, [5, 95])
    keep = (a >= low) & (a <= high)
    a, b = a[keep], b[keep]
    if len(a) == 0 or high <= low:
        return {"centers": [], "median": [], "stderr": [], "count": []}
    b = (b - b.min()) / max(b.max() - b.min(), TINY)
    edges = np.linspace(low, high, bins + 1)
    which = np.clip(np.digitize(a, edges) - 1, 0, bins - 1)
    centers, medians, errors, counts = [], [], [], []
    for k in range(bins):
        values = b[which == k]
        if len(values):
            centers.append(float((edges[k] + edges[k + 1]) / 2))
            medians.append(float(np.median(values)))
            errors.append(float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0)
            counts.append(int(len(values)))
    return {"centers": centers, "median": medians, "stderr": errors, "count": counts}
