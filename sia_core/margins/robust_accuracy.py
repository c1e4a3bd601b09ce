"""Robust accuracy from input margins, and its sample-efficient estimate from the logit margin with only a few
samples attacked (Ngnawé et al. 2024)."""

from __future__ import annotations

import numpy as np
import torch

# the TPR targets the paper's code scans when choosing the logit-margin threshold: 0.80, 0.81, ..., 0.99
TPR_TARGETS: tuple[float, ...] = tuple(float(t) for t in np.round(np.arange(0.80, 1.0, 0.01), 2))


def robust_accuracy_from_margins(input_margins: torch.Tensor, correct: torch.Tensor, eps: float) -> float:
    """Correct and farther than eps from the boundary."""
    return float((correct & (input_margins > eps)).float().mean()) if len(correct) else 0.0


def sample_efficient_robust_accuracy(logit_margins: torch.Tensor, correct: torch.Tensor, attacked: torch.Tensor,
                                     attacked_margins: torch.Tensor, eps: float,
                                     tpr_targets: tuple[float, ...] = TPR_TARGETS) -> tuple[float, float]:
    """Estimate robust accuracy on the whole set from attacking only the `attacked` subset (indices).

    On the subset, choose the logit-margin threshold λ (from TPR targets) whose implied robust accuracy
    best matches the subset's attack-based one; then count correct samples with logit margin > λ.
    Returns (estimate, λ).
    """
    subset_logit, subset_correct = logit_margins[attacked], correct[attacked]
    true_subset = robust_accuracy_from_margins(attacked_margins, subset_correct, eps)
    non_robust = attacked_margins <= eps
    best, best_gap = float(subset_logit.median()), float("inf")
    if non_robust.any():
        for target in tpr_targets:
            threshold = float(torch.quantile(subset_logit[non_robust], float(target)))
            implied = float((subset_correct & (subset_logit > threshold)).float().mean())
            if abs(implied - true_subset) < best_gap:
                best, best_gap = threshold, abs(implied - true_subset)
    return float((correct & (logit_margins > best)).float().mean()), best


def sample_efficient_sweep(logit_margins: torch.Tensor, correct: torch.Tensor, input_margins: torch.Tensor,
                           eps: float, sizes: tuple[int, ...], repeats: int, seed: int = 0) -> dict[int, list[float]]:
    """The paper's sweep: for each subset size, `repeats` random subsets attacked (their input margins known) and
    the estimate each gives for the whole set. One seeded generator draws every subset, size after size."""
    generator = torch.Generator().manual_seed(seed)
    sweep: dict[int, list[float]] = {}
    for size in sizes:
        sweep[size] = []
        for _ in range(repeats):
            subset = torch.randperm(len(correct), generator=generator)[:size]
            estimate, _ = sample_efficient_robust_accuracy(logit_margins, correct, subset, input_margins[subset], eps)
            sweep[size].append(round(estimate, 6))
    return sweep
