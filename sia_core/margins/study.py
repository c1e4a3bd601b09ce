"""The whole margin study for one model, norm and eps, as the page and the CLI report it: free scores and input
margins timed side by side, their summary, and the pseudo-margin learned on held-out images."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Optional

import torch

from sia_core.attacks.base import NORMS, Norm
from sia_core.data.base import ImageDataset
from sia_core.distributed import current_shard, slowest
from sia_core.errors import DataError
from sia_core.margins.input_margins import InputMarginEstimator, InputMargins
from sia_core.margins.metrics import consistency, detection_metrics
from sia_core.margins.pseudo_margin import (PSEUDO_INPUTS, PseudoInput, PseudoMarginResult, fit_pseudo_margin,
                                            model_inputs_for_pseudo_margin, pseudo_margin_fit_images)
from sia_core.margins.robust_accuracy import robust_accuracy_from_margins, sample_efficient_robust_accuracy
from sia_core.margins.scores import MarginScores, margin_scores
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.numerics import TINY
from sia_core.progress import ProgressCallback
from sia_core.validation import non_negative, one_of, positive_int, require

MIN_PSEUDO_FIT_IMAGES = 20  # fewer held-out images cannot teach the pseudo-margin network anything


@dataclass(frozen=True)
class MarginSummary:
    """The figures of one margin study at one eps (the CLI's JSON, the page's table)."""

    model: str
    dataset: str
    n: int
    norm: str
    eps: float
    kendall_tau: float                # between the input margin and the logit margin
    pearson: float
    auroc: float                      # detecting input margin <= eps with the negative logit margin
    aupr: float
    fpr_at_95_tpr: float
    non_robust_share: float           # share of images with input margin <= eps
    seconds_logit_margins: float
    seconds_input_margins: float
    speedup: float                    # seconds_input_margins / seconds_logit_margins
    robust_accuracy_attack: float     # correct and input margin > eps, every image attacked
    robust_accuracy_estimate: float   # from the logit margin, with only `estimate_attacked_samples` attacked
    estimate_attacked_samples: int
    estimate_logit_threshold: float

    def to_dict(self) -> dict:
        return asdict(self)


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

    def without_adversarial_images(self) -> "MarginStudy":
        """The same study without the images at the margin, most of a saved study's size (3 KB per CIFAR-10
        image); `adversarial_at_margin` finds one again when a page shows it."""
        return replace(self, input=replace(self.input, adversarial_images=self.input.adversarial_images[:0]))

    def summary(self, eps: Optional[float] = None, attacked: int = 100, seed: int = 0) -> MarginSummary:
        """The study's figures at `eps` (default: the study's); the robust-accuracy estimate attacks a seeded
        random subset of `attacked` images."""
        eps = self.eps if eps is None else eps
        non_negative("eps", eps)
        positive_int("attacked", attacked)
        detection = detection_metrics(self.input.margins, -self.scores.logit_margin, eps)
        generator = torch.Generator().manual_seed(seed)
        subset = torch.randperm(len(self.labels), generator=generator)[:min(attacked, len(self.labels))]
        estimate, threshold = sample_efficient_robust_accuracy(self.scores.logit_margin, self.correct, subset,
                                                               self.input.margins[subset], eps)
        rank = consistency(self.input.margins, self.scores.logit_margin)
        return MarginSummary(
            model=self.model_id, dataset=self.dataset, n=len(self.labels), norm=self.norm, eps=eps,
            kendall_tau=rank["kendall_tau"], pearson=rank["pearson"], auroc=detection.auroc, aupr=detection.aupr,
            fpr_at_95_tpr=detection.fpr_at_95_tpr, non_robust_share=detection.positives / max(len(self.labels), 1),
            seconds_logit_margins=self.seconds_logit_margins, seconds_input_margins=self.seconds_input_margins,
            speedup=self.seconds_input_margins / max(self.seconds_logit_margins, TINY),
            robust_accuracy_attack=robust_accuracy_from_margins(self.input.margins, self.correct, eps),
            robust_accuracy_estimate=estimate, estimate_attacked_samples=len(subset),
            estimate_logit_threshold=threshold)


def adversarial_at_margin(model: ClassifierWrapper, image: torch.Tensor, norm: Norm = "linf",
                          estimator: Optional[InputMarginEstimator] = None) -> torch.Tensor:
    """The flip at the input margin of one image (C, H, W), as a study finds it (the estimator works image by
    image, so this is the study's image up to float rounding)."""
    estimator = estimator or InputMarginEstimator(norm=norm)
    return estimator(model, image.unsqueeze(0)).adversarial_images[0]


def margin_study(model: ClassifierWrapper, images: torch.Tensor, labels: torch.Tensor, *, norm: Norm = "linf",
                 eps: float = 8 / 255, estimator: Optional[InputMarginEstimator] = None, dataset: str = "",
                 indices: Optional[torch.Tensor] = None, progress: Optional[ProgressCallback] = None) -> MarginStudy:
    """Free scores and input margins for the same images, each timed (the "for free" claim, measured).

    Under torchrun the input margins (the expensive part) are shared among the processes by whole batches and
    gathered on each, so every figure but the timings equals the one-process study; the input-margin time is
    the slowest process's."""
    one_of("norm", norm, NORMS)
    non_negative("eps", eps)
    require(len(images) > 0 and len(images) == len(labels),
            f"The margin study needs images and as many labels, got {len(images)} images and {len(labels)} labels.")
    estimator = estimator or InputMarginEstimator(norm=norm)
    require(estimator.norm == norm, f"The estimator measures {estimator.norm} margins, the study asks for {norm}.")
    started = time.perf_counter()
    scores = margin_scores(model, images, labels)
    seconds_logit = time.perf_counter() - started
    shard = current_shard()
    started = time.perf_counter()
    margins = estimator.sharded(model, images, shard, progress=progress)
    seconds_input = slowest(time.perf_counter() - started, shard)
    return MarginStudy(model_id=model.model_id, dataset=dataset, norm=norm, eps=eps,
                       indices=indices if indices is not None else torch.arange(len(labels)), labels=labels.cpu(),
                       scores=scores, input=margins, seconds_logit_margins=seconds_logit,
                       seconds_input_margins=seconds_input)


@dataclass(frozen=True)
class PseudoMarginStudy:
    """A pseudo-margin learned on held-out images and scored on a margin study's images."""

    fit_split: str  # where the held-out images came from
    fit_n: int
    eps: float
    result: PseudoMarginResult


def pseudo_margin_study(model: ClassifierWrapper, study: MarginStudy, test_images: torch.Tensor, *,
                        train_set: Optional[ImageDataset], estimator: InputMarginEstimator, fit_n: int,
                        source: PseudoInput, eps: float) -> PseudoMarginStudy:
    """Input margins of `fit_n` held-out images, a pseudo-margin network fitted to them, and its Kendall τ and
    AUROC against the logit margin's on the study's images.

    Args:
        test_images: the test images the study ran on first (its first `len(study.labels)`), then any more;
            without a `train_set`, the held-out images are taken from those after the study's.
        train_set: the model's training split, or None where it cannot be loaded.
    """
    evaluated = len(study.labels)
    fit_images, split = pseudo_margin_fit_images(train_set, fit_n, test_images, skip=evaluated)
    if len(fit_images) < MIN_PSEUDO_FIT_IMAGES:
        raise DataError(f"Only {len(fit_images)} held-out images ({split}); the pseudo-margin needs at least "
                        f"{MIN_PSEUDO_FIT_IMAGES}. Load the training split, or study fewer images.")
    fit_margins = estimator.sharded(model, fit_images, current_shard()).margins
    result = fit_pseudo_margin(model_inputs_for_pseudo_margin(model, fit_images, source), fit_margins,
                               model_inputs_for_pseudo_margin(model, test_images[:evaluated], source),
                               study.input.margins, study.scores.logit_margin, eps, source=source)
    return PseudoMarginStudy(fit_split=split, fit_n=len(fit_images), eps=eps, result=result)


@dataclass(frozen=True)
class MarginsConfig:
    """The margin lens's settings: the first `n` test images, the norm, the radius below which an image counts as
    non-robust, the estimator's search (None: by image size), the sample-efficient estimate's `attacked` images and
    the pseudo-margin's held-out images (`pseudo_fit_n`, 0 to skip) and input."""

    n: int = 1000
    norm: Norm = "linf"
    eps: float = 8 / 255
    bisection_steps: Optional[int] = None
    pgd_steps: Optional[int] = None
    attacked: int = 100
    seed: int = 0
    pseudo_fit_n: int = 0
    pseudo_source: PseudoInput = "logits"

    def __post_init__(self) -> None:
        positive_int("n", self.n)
        one_of("norm", self.norm, NORMS)
        non_negative("eps", self.eps)
        positive_int("attacked", self.attacked)
        one_of("pseudo_source", self.pseudo_source, PSEUDO_INPUTS)
        require(isinstance(self.pseudo_fit_n, int) and self.pseudo_fit_n >= 0,
                f"pseudo_fit_n must be a whole number >= 0, got {self.pseudo_fit_n!r}.")
        InputMarginEstimator(norm=self.norm, bisection_steps=self.bisection_steps, pgd_steps=self.pgd_steps)

    @property
    def estimator(self) -> InputMarginEstimator:
        return InputMarginEstimator(norm=self.norm, bisection_steps=self.bisection_steps, pgd_steps=self.pgd_steps)


@dataclass(frozen=True)
class MarginsReport:
    """The margin lens on one model: the study's figures at the config's eps, and the pseudo-margin when asked."""

    config: MarginsConfig
    summary: MarginSummary
    pseudo: Optional[PseudoMarginStudy] = None


def margins_study(model: ClassifierWrapper, test_set: ImageDataset, train_set: Optional[ImageDataset],
                  config: MarginsConfig, progress: Optional[ProgressCallback] = None) -> MarginsReport:
    """The margin study of the first `config.n` images of `test_set`, summarized at `config.eps`, and the
    pseudo-margin learned on `config.pseudo_fit_n` held-out images (of `train_set`, else of the test images after
    the first n)."""
    require(len(test_set) >= 1, f"{test_set.name} has no images.")
    estimator = config.estimator
    study = margin_study(model, test_set.images[:config.n], test_set.labels[:config.n], norm=config.norm,
                         eps=config.eps, estimator=estimator, dataset=test_set.name, progress=progress)
    pseudo = None
    if config.pseudo_fit_n > 0:
        pseudo = pseudo_margin_study(model, study, test_set.images[:config.n + config.pseudo_fit_n],
                                     train_set=train_set, estimator=estimator, fit_n=config.pseudo_fit_n,
                                     source=config.pseudo_source, eps=config.eps)
    return MarginsReport(config=config, summary=study.summary(attacked=config.attacked, seed=config.seed),
                         pseudo=pseudo)
