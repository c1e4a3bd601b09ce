"""Margin consistency (PAPERS.md §4): free scores from one forward pass, the input-space margin they stand
in for, and how well one ranks and detects like the other.

Input margins are estimated against the model's *predicted* label, as in the paper's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau, pearsonr

from sia_core.attacks.base import Norm
from sia_core.progress import ProgressCallback
from sia_core.attacks.deepfool import DeepFool
from sia_core.attacks.pgd import ascent_direction as _ascent_direction, project
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval

_TINY = 1e-12


@dataclass(frozen=True)
class MarginScores:
    """Scores from one forward pass, each (N,) on the CPU (PAPERS.md §4.2)."""

    logit_margin: torch.Tensor        # top-1 minus top-2 logit
    probability_margin: torch.Tensor  # top-1 minus top-2 softmax probability
    max_probability: torch.Tensor
    true_class_margin: torch.Tensor   # logit of the label minus the best other logit (negative when wrong)
    feature_margin: torch.Tensor      # |z1 - z2| / ||w1 - w2||_1 over the top-2 classes: the L∞ distance in feature space
    predictions: torch.Tensor

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in ("logit_margin", "probability_margin", "max_probability",
                                                       "true_class_margin", "feature_margin")}


def margin_scores(model: ClassifierWrapper, images: torch.Tensor, labels: torch.Tensor,
                  batch_size: int = 512) -> MarginScores:
    """All the free scores, batched, in one forward pass per batch."""
    parts: list[tuple[torch.Tensor, ...]] = []
    weight = model.head.weight.detach()
    with frozen_eval(model), torch.inference_mode():
        for start in range(0, len(labels), batch_size):
            x = images[start:start + batch_size].to(model.device)
            y = labels[start:start + batch_size].to(model.device)
            logits = model.head(model.features(x))
            top = logits.topk(2, dim=1)
            probabilities = torch.softmax(logits, 1)
            top_probabilities = probabilities.topk(2, dim=1).values
            own = logits.gather(1, y.view(-1, 1)).squeeze(1)
            others = logits.scatter(1, y.view(-1, 1), float("-inf")).max(1).values
            w_gap = (weight[top.indices[:, 0]] - weight[top.indices[:, 1]]).abs().sum(1)
            parts.append(((top.values[:, 0] - top.values[:, 1]).cpu(),
                          (top_probabilities[:, 0] - top_probabilities[:, 1]).cpu(),
                          top_probabilities[:, 0].cpu(), (own - others).cpu(),
                          ((top.values[:, 0] - top.values[:, 1]) / w_gap.clamp_min(_TINY)).cpu(),
                          top.indices[:, 0].cpu()))
    columns = [torch.cat(column) for column in zip(*parts)] if parts else [torch.empty(0)] * 6
    return MarginScores(*columns)


@dataclass(frozen=True)
class InputMargins:
    """Estimated input-space margins to the predicted label, with the adversarial example at the margin."""

    norm: Norm
    margins: torch.Tensor            # (N,)
    adversarial_images: torch.Tensor  # (N, C, H, W), the flip found at the final radius
    predictions: torch.Tensor        # (N,) the labels the margins are measured to
    found: torch.Tensor              # (N,) bool: a flip was found below max_eps (else the margin is max_eps, a lower bound)


def _pgd_at_radius(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor, norm: Norm,
                   steps: int) -> torch.Tensor:
    """PGD with a per-sample radius `eps` (N,), started at the clean image (deterministic)."""
    radius = eps.view(-1, *[1] * (x.ndim - 1))
    step = 2.5 * radius / max(steps, 1)
    delta = torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model(x + delta), y)
        (gradient,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = delta + step * _ascent_direction(gradient, norm)
            delta = project(delta, norm, radius) if norm == "linf" else _project_l2(delta, radius)
            delta = (x + delta).clamp(0, 1) - x
    return (x + delta).detach()


def _project_l2(delta: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    norms = delta.flatten(1).norm(dim=1).view_as(radius[:, :1, :1, :1] if radius.ndim == 4 else radius)
    return delta * (radius / norms.clamp_min(_TINY)).clamp(max=1.0)


@dataclass(frozen=True, kw_only=True)
class InputMarginEstimator:
    """Smallest L∞ or L2 perturbation that changes the predicted label: DeepFool start, then PGD bisection.

    Why this method: DeepFool in the chosen norm (L2 step, or the L∞ step along sign(w) with the dual
    L1 norm), shrunk along its direction to the smallest flipping scale, is exact on a linear model and
    close on a deep one; bisection on the radius with PGD (PAPERS.md §4.8's cheapest robust option)
    then searches below it, each radius certified by an actual flip. The margin is the smaller of the
    two upper bounds, and the example at that radius is kept.

    Args:
        norm: "linf" or "l2".
        bisection_steps: halvings of the bracket (each costs `pgd_steps` gradient steps).
        pgd_steps: PGD steps per radius.
        max_eps: the largest radius searched; samples without a flip below it report max_eps (found = False).
        batch_size: images per batch.
    """

    norm: Norm = "linf"
    bisection_steps: int = 8
    pgd_steps: int = 20
    max_eps: Optional[float] = None
    batch_size: int = 256

    @property
    def radius_limit(self) -> float:
        return self.max_eps if self.max_eps is not None else (0.5 if self.norm == "linf" else 10.0)

    def _flips(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor):
        adversarial = _pgd_at_radius(model, x, y, eps, self.norm, self.pgd_steps)
        with torch.no_grad():
            return model(adversarial).argmax(1) != y, adversarial

    def _deepfool(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
        """DeepFool's flip, its distance in the chosen norm (inf where it failed), and a bracket just above it."""
        adversarial = DeepFool(norm=self.norm, steps=50, overshoot=0.02).perturb(model, x, y)
        with torch.no_grad():
            flipped = model(adversarial).argmax(1) != y
            # shrink along DeepFool's direction to the smallest flipping scale: removes its overshoot
            direction = adversarial - x
            low, high = torch.zeros(len(y), device=x.device), torch.ones(len(y), device=x.device)
            for _ in range(10):
                middle = (low + high) / 2
                candidate = (x + middle.view(-1, 1, 1, 1) * direction).clamp(0, 1)
                success = flipped & (model(candidate).argmax(1) != y)
                high, low = torch.where(success, middle, high), torch.where(success, low, middle)
            adversarial = (x + high.view(-1, 1, 1, 1) * direction).clamp(0, 1)
            delta = (adversarial - x).flatten(1)
            distance = delta.abs().amax(1) if self.norm == "linf" else delta.norm(dim=1)
        distance = torch.where(flipped, distance, torch.full_like(distance, float("inf")))
        bracket = torch.where(flipped, (distance * 1.05).clamp(max=self.radius_limit),
                              torch.full_like(distance, self.radius_limit))
        return adversarial, distance, bracket

    def __call__(self, model: ClassifierWrapper, images: torch.Tensor,
                 progress: Optional[ProgressCallback] = None) -> InputMargins:
        margins, adversarial_parts, predictions, found_parts = [], [], [], []
        batches = max(1, -(-len(images) // self.batch_size))
        with frozen_eval(model):
            for batch_index, start in enumerate(range(0, len(images), self.batch_size)):
                x = images[start:start + self.batch_size].to(model.device)
                with torch.no_grad():
                    y = model(x).argmax(1)
                deepfool_images, deepfool_distance, high = self._deepfool(model, x, y)
                flipped, adversarial = self._flips(model, x, y, high)
                # where PGD cannot confirm DeepFool's bracket, widen to the limit before bisecting
                if not flipped.all():
                    high = torch.where(flipped, high, torch.full_like(high, self.radius_limit))
                    flipped_again, adversarial_again = self._flips(model, x, y, high)
                    adversarial = torch.where((~flipped).view(-1, 1, 1, 1), adversarial_again, adversarial)
                    flipped = flipped | flipped_again
                low = torch.zeros_like(high)
                for _ in range(self.bisection_steps):
                    middle = (low + high) / 2
                    success, candidate = self._flips(model, x, y, middle)
                    success = success & flipped
                    high = torch.where(success, middle, high)
                    low = torch.where(success, low, middle)
                    adversarial = torch.where(success.view(-1, 1, 1, 1), candidate, adversarial)
                # DeepFool's own flip is a certified upper bound too (exact on linear models): keep the smaller
                deepfool_wins = deepfool_distance < torch.where(flipped, high, torch.full_like(high, float("inf")))
                high = torch.where(deepfool_wins, deepfool_distance, high)
                adversarial = torch.where(deepfool_wins.view(-1, 1, 1, 1), deepfool_images, adversarial)
                flipped = flipped | deepfool_wins
                margins.append(torch.where(flipped, high, torch.full_like(high, self.radius_limit)).cpu())
                adversarial_parts.append(adversarial.cpu())
                predictions.append(y.cpu())
                found_parts.append(flipped.cpu())
                if progress is not None:
                    progress(batch_index + 1, batches, {"images": min(start + self.batch_size, len(images))})
        return InputMargins(norm=self.norm, margins=torch.cat(margins), adversarial_images=torch.cat(adversarial_parts),
                            predictions=torch.cat(predictions), found=torch.cat(found_parts))


# --- metrics ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DetectionMetrics:
    """Detecting non-robust samples (input margin <= eps) with a score; higher score = more non-robust."""

    eps: float
    positives: int
    negatives: int
    auroc: float
    aupr: float
    fpr_at_95_tpr: float
    roc_fpr: np.ndarray
    roc_tpr: np.ndarray


def consistency(input_margins: torch.Tensor, score: torch.Tensor) -> dict[str, float]:
    """Kendall τ and Pearson r between the input margin and a score (PAPERS.md §4.2)."""
    a, b = input_margins.double().numpy(), score.double().numpy()
    if len(a) < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return {"kendall_tau": 0.0, "pearson": 0.0}
    return {"kendall_tau": float(kendalltau(a, b).statistic), "pearson": float(pearsonr(a, b).statistic)}


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FPR, TPR and thresholds, one point per distinct score, highest threshold first (ties handled)."""
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    distinct = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    true_positives = np.cumsum(sorted_labels)[distinct]
    false_positives = 1 + distinct - true_positives
    tpr = np.r_[0.0, true_positives / max(true_positives[-1], 1)]
    fpr = np.r_[0.0, false_positives / max(false_positives[-1], 1)]
    return fpr, tpr, np.r_[np.inf, sorted_scores[distinct]]


def detection_metrics(input_margins: torch.Tensor, score: torch.Tensor, eps: float) -> DetectionMetrics:
    """AUROC, AUPR (non-robust = positive) and FPR at 95% TPR of `score` for input margin <= eps."""
    labels = (input_margins <= eps).numpy().astype(np.int64)
    scores = score.double().numpy()
    positives, negatives = int(labels.sum()), int(len(labels) - labels.sum())
    if positives == 0 or negatives == 0:
        nan = float("nan")
        return DetectionMetrics(eps, positives, negatives, nan, nan, nan, np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    fpr, tpr, _ = roc_curve(labels, scores)
    auroc = float(np.trapezoid(tpr, fpr))
    # average precision: precision at each positive, in descending score order
    order = np.argsort(-scores, kind="mergesort")
    hits = labels[order]
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    aupr = float((precision_at * hits).sum() / positives)
    fpr_at_95 = float(fpr[np.argmax(tpr >= 0.95)])
    return DetectionMetrics(eps, positives, negatives, auroc, aupr, fpr_at_95, fpr, tpr)


def binned_median_curve(input_margins: torch.Tensor, logit_margins: torch.Tensor, bins: int = 20) -> dict[str, list]:
    """PAPERS.md §4.7's main figure: drop the 5%/95% tails, min-max normalize the logit margin, then the median
    and standard error per equal-width input-margin bin."""
    a, b = input_margins.double().numpy(), logit_margins.double().numpy()
    low, high = np.percentile(a, [5, 95])
    keep = (a >= low) & (a <= high)
    a, b = a[keep], b[keep]
    if len(a) == 0 or high <= low:
        return {"centers": [], "median": [], "stderr": [], "count": []}
    b = (b - b.min()) / max(b.max() - b.min(), _TINY)
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


# --- pseudo-margin (PAPERS.md §4.5) -----------------------------------------------------------------

PseudoInput = Literal["logits", "features"]


def pseudo_margin_network(in_features: int) -> torch.nn.Sequential:
    """The paper's CNET: Linear(in, 512) -> Linear(512, 512) -> ReLU -> Linear(512, 512) -> ReLU -> Linear(512, 1) -> sigmoid.
    (No ReLU after the first layer: a quirk of the released code, kept.)"""
    return torch.nn.Sequential(torch.nn.Linear(in_features, 512), torch.nn.Linear(512, 512), torch.nn.ReLU(),
                               torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 1), torch.nn.Sigmoid())


def model_inputs_for_pseudo_margin(model: ClassifierWrapper, images: torch.Tensor, source: PseudoInput,
                                   batch_size: int = 512) -> torch.Tensor:
    with frozen_eval(model), torch.inference_mode():
        parts = [(model(x) if source == "logits" else model.features(x)).cpu()
                 for x in (images[i:i + batch_size].to(model.device) for i in range(0, len(images), batch_size))]
    return torch.cat(parts)


def pseudo_margin_fit_images(dataset_name: str, count: int, test_images: torch.Tensor, skip: int,
                             root: Optional[str] = None) -> tuple[torch.Tensor, str]:
    """Images to learn the pseudo-margin on: a random held-out part of the training split (seed 1380, as in the
    paper's code) when it can be loaded, else the test images after the first `skip` (disjoint from those)."""
    from sia_core.data.catalog import load_dataset
    from sia_core.errors import SiaError

    try:
        train = load_dataset(dataset_name, "train", root=root)
    except SiaError:
        return test_images[skip:skip + count], f"test images {skip}..{skip + count - 1} (no training split here)"
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(1380))
    return train.images[order[:count]], f"{count} random images of {train.name}"


@dataclass(frozen=True)
class PseudoMarginResult:
    source: str
    epochs: int
    kendall_tau_before: float
    kendall_tau_after: float
    auroc_before: float
    auroc_after: float
    predicted: torch.Tensor  # (N,) pseudo-margins on the evaluation set


def fit_pseudo_margin(fit_inputs: torch.Tensor, fit_margins: torch.Tensor, eval_inputs: torch.Tensor,
                      eval_margins: torch.Tensor, eval_logit_margins: torch.Tensor, eps: float, *,
                      source: str = "logits", epochs: int = 300, learning_rate: float = 1e-3,
                      seed: int = 0) -> PseudoMarginResult:
    """Learn sqrt(input margin) from logits or features on a fit split (MSE, Adam, full batch), then
    compare Kendall τ and AUROC before (logit margin) and after (pseudo-margin) on the evaluation split.

    The paper uses lr 1e-4 for 500 epochs on 5k points; a larger rate converges in fewer epochs here.
    """
    torch.manual_seed(seed)
    mean, std = fit_inputs.mean(0), fit_inputs.std(0).clamp_min(1e-6)  # standardize: logits vary in scale
    network = pseudo_margin_network(fit_inputs.shape[1])
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    scale = float(fit_margins.sqrt().max().clamp_min(_TINY))  # sigmoid output: targets in [0, 1]
    target = (fit_margins.sqrt() / scale).unsqueeze(1)
    inputs = (fit_inputs - mean) / std
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = F.mse_loss(network(inputs), target)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = network((eval_inputs - mean) / std).squeeze(1) * scale
    before = detection_metrics(eval_margins, -eval_logit_margins, eps)
    after = detection_metrics(eval_margins, -predicted, eps)
    return PseudoMarginResult(source=source, epochs=epochs,
                              kendall_tau_before=consistency(eval_margins, eval_logit_margins)["kendall_tau"],
                              kendall_tau_after=consistency(eval_margins, predicted)["kendall_tau"],
                              auroc_before=before.auroc, auroc_after=after.auroc, predicted=predicted)


# --- sample-efficient robust accuracy (PAPERS.md §4.4) -----------------------------------------------

def robust_accuracy_from_margins(input_margins: torch.Tensor, correct: torch.Tensor, eps: float) -> float:
    """Correct and farther than eps from the boundary."""
    return float((correct & (input_margins > eps)).float().mean()) if len(correct) else 0.0


def sample_efficient_robust_accuracy(logit_margins: torch.Tensor, correct: torch.Tensor, attacked: torch.Tensor,
                                     attacked_margins: torch.Tensor, eps: float,
                                     tpr_targets: tuple[float, ...] = tuple(np.round(np.arange(0.80, 1.0, 0.01), 2))
                                     ) -> tuple[float, float]:
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


# --- the whole study ------------------------------------------------------------------------------

@dataclass(frozen=True)
class MarginStudy:
    """Everything the page and the CLI report for one model, norm and eps."""

    model_id: str
    dataset: str
    norm: str
    eps: float
    indices: torch.Tensor
    labels: torch.Tensor
    scores: MarginScores
    input: InputMargins
    seconds_logit_margins: float
    seconds_input_margins: float

    @property
    def correct(self) -> torch.Tensor:
        return self.scores.predictions == self.labels

    def summary(self, eps: Optional[float] = None, attacked: int = 100, seed: int = 0) -> dict:
        eps = self.eps if eps is None else eps
        detection = detection_metrics(self.input.margins, -self.scores.logit_margin, eps)
        generator = torch.Generator().manual_seed(seed)
        subset = torch.randperm(len(self.labels), generator=generator)[:min(attacked, len(self.labels))]
        estimate, threshold = sample_efficient_robust_accuracy(self.scores.logit_margin, self.correct, subset,
                                                               self.input.margins[subset], eps)
        return {"model": self.model_id, "dataset": self.dataset, "n": len(self.labels), "norm": self.norm, "eps": eps,
                **consistency(self.input.margins, self.scores.logit_margin),
                "auroc": detection.auroc, "aupr": detection.aupr, "fpr_at_95_tpr": detection.fpr_at_95_tpr,
                "non_robust_share": detection.positives / max(len(self.labels), 1),
                "seconds_logit_margins": self.seconds_logit_margins,
                "seconds_input_margins": self.seconds_input_margins,
                "speedup": self.seconds_input_margins / max(self.seconds_logit_margins, _TINY),
                "robust_accuracy_attack": robust_accuracy_from_margins(self.input.margins, self.correct, eps),
                "robust_accuracy_estimate": estimate, "estimate_attacked_samples": len(subset),
                "estimate_logit_threshold": threshold}


def margin_study(model: ClassifierWrapper, images: torch.Tensor, labels: torch.Tensor, *, norm: Norm = "linf",
                 eps: float = 8 / 255, estimator: Optional[InputMarginEstimator] = None, dataset: str = "",
                 indices: Optional[torch.Tensor] = None, progress: Optional[ProgressCallback] = None) -> MarginStudy:
    """Free scores and input margins for the same images, each timed (the "for free" claim, measured)."""
    import time

    started = time.perf_counter()
    scores = margin_scores(model, images, labels)
    seconds_logit = time.perf_counter() - started
    started = time.perf_counter()
    margins = (estimator or InputMarginEstimator(norm=norm))(model, images, progress=progress)
    seconds_input = time.perf_counter() - started
    return MarginStudy(model_id=model.model_id, dataset=dataset, norm=norm, eps=eps,
                       indices=indices if indices is not None else torch.arange(len(labels)), labels=labels.cpu(),
                       scores=scores, input=margins, seconds_logit_margins=seconds_logit,
                       seconds_input_margins=seconds_input)
