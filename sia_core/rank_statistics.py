"""Rank statistics in NumPy: average ranks, Kendall's τ-b, Pearson's r, the ROC curve, AUROC and average precision.

Written here rather than imported from SciPy and scikit-learn because those two imports cost about two seconds at
every server start, for five small functions. Each one follows its reference definition (the tests check them
against `scipy.stats` and `sklearn.metrics` on tied and untied data).
"""

from __future__ import annotations

import numpy as np


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks (1-based) along the last axis, tied values sharing the mean of their ranks (`scipy.stats.rankdata`)."""
    values = np.asarray(values)
    rows = values.reshape(-1, values.shape[-1]) if values.ndim else values.reshape(1, 1)
    length = rows.shape[1]
    order = np.argsort(rows, axis=1, kind="stable")
    ordered = np.take_along_axis(rows, order, axis=1)
    starts_group = np.ones(ordered.shape, dtype=bool)
    starts_group[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    flat_starts = np.flatnonzero(starts_group)  # every row's first element starts a group
    sizes = np.diff(np.append(flat_starts, starts_group.size))
    mean_rank = flat_starts % length + (sizes + 1) / 2.0  # a group at positions s..s+k-1 holds ranks s+1..s+k
    ranks_in_order = np.repeat(mean_rank, sizes).reshape(rows.shape)
    ranks = np.empty(rows.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, ranks_in_order, axis=1)
    return ranks.reshape(values.shape)


def _dense_ranks(values: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... by increasing value; equal values share one."""
    return np.unique(values, return_inverse=True)[1].reshape(-1)


def _tied_pairs(dense: np.ndarray) -> int:
    counts = np.bincount(dense).astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def _inversions(sequence: np.ndarray) -> int:
    """Pairs i < j with sequence[i] > sequence[j], by bottom-up merging: at each width, every left block is sorted,
    so a right element's inversions with it are the left elements above it (one searchsorted for all blocks, the
    blocks kept apart by an offset)."""
    n = len(sequence)
    if n < 2:
        return 0
    top = int(sequence.max()) + 1
    padded_length = 1 << (n - 1).bit_length()
    blocks = np.full(padded_length, top, dtype=np.int64)  # padding sits last and is largest: no inversions
    blocks[:n] = sequence
    separation = top + 1
    count, width = 0, 1
    while width < padded_length:
        pairs = blocks.reshape(-1, 2, width)
        offsets = np.arange(len(pairs), dtype=np.int64)[:, None] * separation
        left = (pairs[:, 0] + offsets).reshape(-1)  # sorted within each block, and blocks in increasing order
        right = pairs[:, 1] + offsets
        at_or_below = np.searchsorted(left, right, side="right") - (np.arange(len(pairs)) * width)[:, None]
        count += int((width - at_or_below).sum())
        blocks = np.sort(pairs.reshape(len(pairs), 2 * width), axis=1).reshape(-1)
        width *= 2
    return count


def kendall_tau_b(first: np.ndarray, second: np.ndarray) -> float:
    """Kendall's τ-b (ties in either variable accounted for; `scipy.stats.kendalltau`'s default), in O(n log n):
    order by the first variable (ties by the second), then discordant pairs are the inversions of the second."""
    x, y = _dense_ranks(np.asarray(first)), _dense_ranks(np.asarray(second))
    n = len(x)
    order = np.lexsort((y, x))
    x, y = x[order], y[order]
    discordant = _inversions(y)
    new_pair = np.ones(n + 1, dtype=bool)
    new_pair[1:n] = (x[1:] != x[:-1]) | (y[1:] != y[:-1])
    joint_sizes = np.diff(np.flatnonzero(new_pair)).astype(np.int64)
    joint_ties = int((joint_sizes * (joint_sizes - 1) // 2).sum())
    x_ties, y_ties = _tied_pairs(x), _tied_pairs(y)
    total = n * (n - 1) // 2
    if total == x_ties or total == y_ties:
        return float("nan")
    concordant_minus_discordant = total - x_ties - y_ties + joint_ties - 2 * discordant
    return float(concordant_minus_discordant / np.sqrt(total - x_ties) / np.sqrt(total - y_ties))


def pearson_r(first: np.ndarray, second: np.ndarray) -> float:
    a = np.asarray(first, dtype=np.float64) - np.mean(first)
    b = np.asarray(second, dtype=np.float64) - np.mean(second)
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def _counts_at_each_score(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholding at each distinct score, highest first: (threshold, true positives, samples predicted positive)."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    ordered = scores[order]
    last_of_each_score = np.append(np.flatnonzero(np.diff(ordered)), len(ordered) - 1)
    true_positives = np.cumsum(np.asarray(labels)[order].astype(np.int64))[last_of_each_score]
    return ordered[last_of_each_score], true_positives, last_of_each_score + 1


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, threshold) at every distinct score, from (0, 0); a higher score means
    positive (`sklearn.metrics.roc_curve(..., drop_intermediate=False)`, its first threshold +inf)."""
    thresholds, true_positives, predicted = _counts_at_each_score(labels, scores)
    false_positives = predicted - true_positives
    fpr = np.append(0.0, false_positives / max(false_positives[-1], 1))
    tpr = np.append(0.0, true_positives / max(true_positives[-1], 1))
    return fpr, tpr, np.append(np.inf, thresholds)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the trapezoid rule (a tie counts half a win)."""
    fpr, tpr, _ = roc_points(labels, scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Σ (R_k − R_{k−1}) P_k over the distinct scores, highest first: scikit-learn's step-wise definition, where
    tied scores form one step (no interpolation)."""
    _, true_positives, predicted = _counts_at_each_score(labels, scores)
    precision = true_positives / predicted
    recall = true_positives / max(true_positives[-1], 1)
    return float(np.sum(np.diff(np.append(0.0, recall)) * precision))
