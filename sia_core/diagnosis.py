"""Model diagnosis with the Semantic Image Attack: which attributes make a model fail (Luo et al. 2023).

Two histograms (sensitivity: one attribute at a time; dominance: who leads a joint attack), the
attack-success baselines at a matched pixel budget, globally and per class, and how each attack's success
trades against the SSIM of its images.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch

from sia_core.attacks import PGD
from sia_core.attacks.base import check_seed, concatenate_results
from sia_core.attacks.objective import objective_of
from sia_core.attacks.semantic import SemanticAttack, SemanticAttackResult
from sia_core.data.base import ImageDataset
from sia_core.errors import SiaError
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.progress import ProgressCallback, StageProgress
from sia_core.registry import Entry, Registry
from sia_core.distributed import sharded_attack_batches
from sia_core.scaling import batch_size_for
from sia_core.perceptual import ssim
from sia_core.semantics import ATTRIBUTES, undo_geometry
from sia_core.validation import non_negative, one_of, positive_int, require


@dataclass(frozen=True)
class DiagnosisConfig:
    """What a diagnosis runs: n images, the pixel budget shared by all attacks, steps, seed.

    `sensitivity_steps` serves the one-attribute searches: in one dimension a normalized step is
    0.1 of the range, so 10 steps already reach either bound from neutral.
    """

    n: int = 256
    eps_linf: float = 2 / 255
    steps: int = 30
    sensitivity_steps: int = 10
    sparsity_weight: float = 0.0
    perceptual_weight: float = 0.0  # the joint attack's SSIM term (SemanticAttack.perceptual_weight)
    attributes: Optional[tuple[str, ...]] = None
    seed: int = 0
    batch_size: int = 256  # images per attack call, capped by `batch_size_for` on large images

    def __post_init__(self) -> None:
        positive_int("n", self.n)
        non_negative("eps_linf", self.eps_linf)
        positive_int("steps", self.steps)
        positive_int("sensitivity_steps", self.sensitivity_steps)
        non_negative("sparsity_weight", self.sparsity_weight)
        non_negative("perceptual_weight", self.perceptual_weight)
        check_seed("seed", self.seed)
        positive_int("batch_size", self.batch_size)
        if self.attributes is not None:
            require(isinstance(self.attributes, tuple) and len(self.attributes) > 0,
                    f"attributes must be None (all) or a non-empty tuple of names, got {self.attributes!r}.")
            for name in self.attributes:
                one_of("each of attributes", name, ATTRIBUTES)


# The attacks a diagnosis compares at the same pixel budget; each factory is called with the config.
BASELINES: Registry[PGD | SemanticAttack] = Registry("diagnosis baseline", [
    Entry("pgd", "pixel-only PGD", "Pixel-only PGD (L∞) uses only the pixel change δ, within ε_img.",
          lambda config: PGD(eps=config.eps_linf, norm="linf", steps=config.steps, seed=config.seed)),
    Entry("attributes", "attributes only", "The attributes alone climb the loss, with no pixel change.",
          lambda config: SemanticAttack(attributes=config.attributes, steps=config.steps, eps_linf=0.0,
                                        sparsity_weight=config.sparsity_weight, seed=config.seed)),
    Entry("random_attributes_pgd", "random attributes + PGD",
          "A control: attributes drawn at random and left there, then PGD on the pixels within ε_img.",
          lambda config: SemanticAttack(attributes=config.attributes, steps=config.steps, eps_linf=config.eps_linf,
                                        random_init=True, optimize_attributes=False, seed=config.seed)),
    Entry("sia", "SIA (joint)", "The Semantic Image Attack: attributes and pixels (within ε_img) climb together.",
          lambda config: SemanticAttack(attributes=config.attributes, steps=config.steps, eps_linf=config.eps_linf,
                                        sparsity_weight=config.sparsity_weight,
                                        perceptual_weight=config.perceptual_weight, seed=config.seed)),
])


SSIM_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(11))  # 0.5, 0.55, .., 1.0


@dataclass(frozen=True)
class DiagnosisReport:
    """Per-attribute histograms and baseline success rates over `n` correctly classified images.

    sensitivity[k]: mean |p_y(x) - p_y(x_adv)| when attribute k alone is attacked (no pixel term); on a keypoint
        model, the mean |NME(x_adv) - NME(x)| against the reference points (moved with the image by a geometric
        edit).
    sensitivity_success[k]: share of those single-attribute attacks that flip the prediction (keypoints: that push
        the NME above the task's threshold).
    dominance[k]: among successful joint SIA attacks, the share in which k moved furthest
        (|alpha_k| over its largest allowed magnitude); dominance_magnitude[k]: mean of that
        normalized magnitude over successful attacks.
    The per_class_* tables are (num_classes, K), by true class.
    attack_success[a], attack_ssim[a]: (n,) per image, whether baseline `a` (a `BASELINES` name, "sia" the joint
        attack) fooled the model and the SSIM of its image to the original; empty in reports saved before SSIM
        was recorded. attack_ssim_aligned[a]: the SSIM after undoing the attack's own rotation, shift and zoom
        (`sia_core.semantics.undo_geometry`), which a person does when they see the same object turned or moved;
        equal to attack_ssim for pixel-only attacks.
    """

    model_id: str
    dataset: str
    n: int
    eps_linf: float
    steps: int
    attribute_names: tuple[str, ...]
    class_names: tuple[str, ...]
    success_rate: dict[str, float]
    sensitivity: torch.Tensor
    sensitivity_success: torch.Tensor
    dominance: torch.Tensor
    dominance_magnitude: torch.Tensor
    per_class_sensitivity: torch.Tensor
    per_class_dominance: torch.Tensor
    class_counts: torch.Tensor
    sample_indices: torch.Tensor
    attack_success: dict[str, torch.Tensor] = field(default_factory=dict)
    attack_ssim: dict[str, torch.Tensor] = field(default_factory=dict)
    joint: Optional[SemanticAttackResult] = field(default=None, repr=False)
    attack_ssim_aligned: dict[str, torch.Tensor] = field(default_factory=dict)
    # PGD with its radius raised until its images are as far from the originals as SIA's (mean SSIM matched)
    matched_pgd_eps: Optional[float] = None
    matched_pgd_success: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.bool))
    matched_pgd_ssim: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    task: str = "classification"
    # keypoints: what the points are judged against, "ground truth" or "model prediction" (the model's own on the
    # clean images, where the data has no landmarks)
    reference: str = "labels"

    @property
    def joint_successes(self) -> int:
        """How many of the n images the joint (SIA) attack fooled: the count the dominance shares are over."""
        return round(self.success_rate.get("sia", 0.0) * self.n)

    def by_attribute(self, values: torch.Tensor) -> dict[str, float]:
        """One of the per-attribute tensors (sensitivity, dominance, ...) as attribute name -> value."""
        return {name: float(value) for name, value in zip(self.attribute_names, values)}

    def ranking(self) -> list[str]:
        """Attributes by sensitivity, most harmful first."""
        order = torch.argsort(self.sensitivity, descending=True).tolist()
        return [self.attribute_names[k] for k in order]

    def mean_ssim_of_successes(self, *, aligned: bool = False) -> dict[str, Optional[float]]:
        """Per attack, the mean SSIM of the images it fooled the model with (None where none succeeded); after
        undoing the geometry when `aligned` (and recorded), as `similarity`."""
        similarity = self.similarity(aligned)
        means: dict[str, Optional[float]] = {}
        for name, success in self.attack_success.items():
            fooled = similarity[name][success]
            means[name] = float(fooled.mean()) if len(fooled) else None
        return means

    def similarity(self, aligned: bool) -> dict[str, torch.Tensor]:
        """Per attack, the per-image SSIM: after undoing the geometry when `aligned` (and recorded), else plain."""
        return self.attack_ssim_aligned if aligned and self.attack_ssim_aligned else self.attack_ssim

    def fooled_at_floor_difference(self, floor: float, first: str = "sia", second: str = "pgd", *,
                                   aligned: bool = False) -> Optional[tuple[float, tuple[float, float]]]:
        """Share of images `first` fooled with an image of SSIM >= `floor` (after undoing the geometry when
        `aligned`) minus `second`'s, on the same images, with its 95% paired bootstrap interval over images; None
        without per-image results for both."""
        from sia_core.claims import bootstrap_ci

        similarity = self.similarity(aligned)
        if first not in similarity or second not in similarity:
            return None
        close = [(self.attack_success[name] & (similarity[name] >= floor)).double() for name in (first, second)]
        difference = (close[0] - close[1]).numpy()
        return float(difference.mean()), bootstrap_ci(difference)

    def success_vs_ssim(self, thresholds: Sequence[float] = SSIM_THRESHOLDS, *, aligned: bool = False
                        ) -> dict[str, list[tuple[float, float]]]:
        """Per attack, (s, share of the n attacked images it fooled with an image of SSIM >= s) for each threshold
        s: the success rate an attack keeps when only images this close to the original count (SSIM after undoing
        each attack's geometry when `aligned` and recorded)."""
        curves: dict[str, list[tuple[float, float]]] = {}
        for name, success in self.attack_success.items():
            similarity = self.similarity(aligned)[name]
            curves[name] = [(float(s), float((success & (similarity >= s)).float().mean()) if len(success) else 0.0)
                            for s in thresholds]
        return curves

    def to_dict(self) -> dict:
        names = self.attribute_names
        mean_ssim = self.mean_ssim_of_successes()
        return {
            "model": self.model_id, "dataset": self.dataset, "n": self.n, "eps_linf": self.eps_linf,
            "steps": self.steps, "task": self.task, "reference": self.reference,
            "success_rate": {k: round(v, 4) for k, v in self.success_rate.items()},
            "sensitivity": {a: round(float(v), 4) for a, v in zip(names, self.sensitivity)},
            "sensitivity_success_rate": {a: round(float(v), 4) for a, v in zip(names, self.sensitivity_success)},
            "dominance": {a: round(float(v), 4) for a, v in zip(names, self.dominance)},
            "dominance_magnitude": {a: round(float(v), 4) for a, v in zip(names, self.dominance_magnitude)},
            "ranking": self.ranking(),
            **({"mean_ssim_of_successes": {k: round(v, 4) if v is not None else None for k, v in mean_ssim.items()}}
               if mean_ssim else {}),
        }

    def to_csv(self) -> str:
        """One row per (scope, attribute): scope is "all" or a class name; the joint attack's mean SSIM over its
        successes is a property of the scope "all", repeated on its rows (blank where unknown)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["scope", "n", "attribute", "sensitivity", "sensitivity_success_rate",
                         "dominance_share", "dominance_magnitude", "sia_mean_ssim_of_successes"])
        sia_ssim = self.mean_ssim_of_successes().get("sia")
        for k, name in enumerate(self.attribute_names):
            writer.writerow(["all", self.n, name, f"{float(self.sensitivity[k]):.5f}",
                             f"{float(self.sensitivity_success[k]):.5f}", f"{float(self.dominance[k]):.5f}",
                             f"{float(self.dominance_magnitude[k]):.5f}",
                             f"{sia_ssim:.5f}" if sia_ssim is not None else ""])
        for c, class_name in enumerate(self.class_names):
            for k, name in enumerate(self.attribute_names):
                writer.writerow([class_name, int(self.class_counts[c]), name,
                                 f"{float(self.per_class_sensitivity[c, k]):.5f}", "",
                                 f"{float(self.per_class_dominance[c, k]):.5f}", "", ""])
        return buffer.getvalue()


def references_of(model: ClassifierWrapper, dataset: ImageDataset) -> torch.Tensor:
    """What the attacks are judged against: the labels, or for a keypoint model the dataset's reference points."""
    if objective_of(model).task != "keypoints":
        return dataset.labels
    if dataset.keypoints is None:
        raise SiaError(f"{dataset.name} holds no reference points for the keypoint model "
                       f"{model.model_id or ''}: use a dataset with landmarks, or one the model labels itself.")
    return dataset.keypoints


def select_correct(model: ClassifierWrapper, dataset: ImageDataset, n: int, seed: int = 0) -> torch.Tensor:
    """Indices of up to `n` images the model classifies correctly (a keypoint model: whose NME is within the task's
    threshold), in a seeded random order.

    Attacks are scored on these only: an image already misclassified says nothing about an attack.
    """
    objective = objective_of(model)
    references = references_of(model, dataset)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    chosen: list[torch.Tensor] = []
    found = 0
    block_size = batch_size_for(dataset.image_shape, 1024)
    for start in range(0, len(order), block_size):
        block = order[start:start + block_size]
        if objective.task == "keypoints":
            correct = ~objective.success(model.points(dataset.images[block]), references[block], None)
        else:
            correct = model.logits(dataset.images[block], batch_size=batch_size_for(dataset.image_shape, 512)
                                   ).argmax(1) == dataset.labels[block]
        chosen.append(block[correct])
        found += int(correct.sum())
        if found >= n:
            break
    return torch.cat(chosen)[:n] if chosen else torch.empty(0, dtype=torch.long)


def _batched(attack, model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor, batch_size: int):
    """The attack's results batch by batch; under torchrun the batches are shared among the processes and every
    process gets the same results (`sia_core.distributed`)."""
    return sharded_attack_batches(attack, model, x, y, batch_size_for(x.shape, batch_size))


def diagnose(model: ClassifierWrapper, dataset: ImageDataset, config: DiagnosisConfig = DiagnosisConfig(),
             progress: Optional[ProgressCallback] = None) -> DiagnosisReport:
    """Run the sensitivity and joint attacks and the baselines on `config.n` correctly classified images."""
    objective = objective_of(model)
    indices = select_correct(model, dataset, config.n, config.seed)
    if len(indices) == 0:
        raise SiaError(f"{model.model_id or 'The model'} " + (
            "places the points of none" if objective.task == "keypoints" else "classifies none") +
            f" of the {len(dataset)} images of {dataset.name} correctly: there is nothing to attack.")
    # y: what the attacks are judged against (labels, or reference points); classes: for the per-class tables
    x, y, classes = dataset.images[indices], references_of(model, dataset)[indices], dataset.labels[indices]
    names = BASELINES.build("sia", config=config).attribute_names(x.shape[1])
    tick = StageProgress(len(names) + len(BASELINES) + 1, progress)

    sensitivity = torch.zeros(len(names))
    sensitivity_success = torch.zeros(len(names))
    per_sample_sensitivity = torch.zeros(len(y), len(names))
    for k, name in enumerate(names):
        single = SemanticAttack(attributes=(name,), steps=config.sensitivity_steps, eps_linf=0.0, seed=config.seed)
        parts = _batched(single, model, x, y, config.batch_size)
        change = torch.cat([(objective.score(r.clean_logits, r.labels)[1]
                             - objective.score(r.adversarial_logits, r.reference)[1]).abs() for r in parts])
        per_sample_sensitivity[:, k] = change
        sensitivity[k] = change.mean() if len(change) else 0.0
        sensitivity_success[k] = torch.cat([r.success for r in parts]).float().mean() if parts else 0.0
        tick(f"sensitivity to {ATTRIBUTES[name].label.lower()}")  # the sliders' names, not the code's

    success_rate: dict[str, float] = {}
    attack_success: dict[str, torch.Tensor] = {}
    attack_ssim: dict[str, torch.Tensor] = {}
    attack_ssim_aligned: dict[str, torch.Tensor] = {}
    joint: Optional[SemanticAttackResult] = None
    for baseline in BASELINES.names():
        parts = _batched(BASELINES.build(baseline, config=config), model, x, y, config.batch_size)
        attack_success[baseline] = torch.cat([r.success for r in parts])
        attack_ssim[baseline] = torch.cat([r.ssim for r in parts])
        attack_ssim_aligned[baseline] = torch.cat([_aligned_ssim(r) for r in parts])
        success_rate[baseline] = float(attack_success[baseline].float().mean())
        if baseline == "sia":
            joint = concatenate_results(parts)
        tick(BASELINES[baseline].label)

    assert joint is not None
    # the pixel-only baseline is PGD at the budget: the search's first point, not run twice
    matched_eps, matched_success, matched_ssim = _pgd_at_matched_ssim(
        model, x, y, config, float(attack_ssim_aligned["sia"].mean()), (attack_success["pgd"], attack_ssim["pgd"]))
    tick("pgd at SIA's SSIM")
    magnitudes = joint.normalized_magnitudes()
    successful = joint.success
    dominant = magnitudes.argmax(1)
    dominance = torch.zeros(len(names))
    dominance_magnitude = torch.zeros(len(names))
    if successful.any():
        dominance = torch.bincount(dominant[successful], minlength=len(names)).float() / successful.sum()
        dominance_magnitude = magnitudes[successful].mean(0)
    num_classes = dataset.num_classes
    class_counts = torch.bincount(classes, minlength=num_classes)
    per_class_sensitivity = torch.zeros(num_classes, len(names))
    per_class_dominance = torch.zeros(num_classes, len(names))
    for c in range(num_classes):
        members = classes == c
        if members.any():
            per_class_sensitivity[c] = per_sample_sensitivity[members].mean(0)
        winners = members & successful
        if winners.any():
            per_class_dominance[c] = torch.bincount(dominant[winners], minlength=len(names)).float() / winners.sum()
    return DiagnosisReport(
        model_id=model.model_id, dataset=dataset.name, n=len(y), eps_linf=config.eps_linf, steps=config.steps,
        attribute_names=names, class_names=dataset.class_names, success_rate=success_rate,
        sensitivity=sensitivity, sensitivity_success=sensitivity_success, dominance=dominance,
        dominance_magnitude=dominance_magnitude, per_class_sensitivity=per_class_sensitivity,
        per_class_dominance=per_class_dominance, class_counts=class_counts, sample_indices=indices,
        attack_success=attack_success, attack_ssim=attack_ssim, joint=joint, attack_ssim_aligned=attack_ssim_aligned,
        matched_pgd_eps=matched_eps, matched_pgd_success=matched_success, matched_pgd_ssim=matched_ssim,
        task=objective.task,
        reference=(dataset.keypoint_reference if objective.task == "keypoints" else "labels"),
    )


# the shipped diagnosis with the joint attack's weights above zero (our choice): μ 2 is the smallest perceptual weight
# that brings SIA's mean SSIM (geometry undone) to the 0.9 the claims scorecard counts at on fmnist-standard (0.89
# with λ 0.2; μ 10 and 30 only lower its success further), and λ 0.2 keeps the edit to few attributes, as a
# diagnosis that names the responsible attribute wants
WEIGHTED_DIAGNOSIS = {"sparsity_weight": 0.2, "perceptual_weight": 2.0}

MATCH_TOLERANCE = 0.005  # PGD's mean SSIM lands at most this far below SIA's, and never above it (never closer)
MATCH_RUNS = 7  # at most this many PGD runs beyond the budget's (a plain bisection of the radius took 7, landing up
# to 0.017 below SIA's SSIM on the shipped models)


def _log_log_radius(first: tuple[float, float], second: tuple[float, float], deficit: float) -> Optional[float]:
    """The radius at which the straight line through two (radius, 1 − mean SSIM) points in log-log space reaches
    `deficit`; None when the line does not rise (PGD's SSIM is noisy between close radii)."""
    (radius_a, deficit_a), (radius_b, deficit_b) = first, second
    if min(radius_a, radius_b, deficit_a, deficit_b) <= 0 or radius_a == radius_b:
        return None
    slope = (math.log(deficit_b) - math.log(deficit_a)) / (math.log(radius_b) - math.log(radius_a))
    if slope <= 0:
        return None
    return math.exp(math.log(radius_a) + (math.log(deficit) - math.log(deficit_a)) / slope)


def _pgd_at_matched_ssim(model: ClassifierWrapper, x: torch.Tensor, y: torch.Tensor, config: DiagnosisConfig,
                         target_ssim: float, at_budget: tuple[torch.Tensor, torch.Tensor]
                         ) -> tuple[float, torch.Tensor, torch.Tensor]:
    """PGD (the diagnosis's steps and seed) at the smallest L∞ radius found whose images have a mean SSIM at most
    `target_ssim` and within `MATCH_TOLERANCE` of it, so the two attacks are compared at one perceptual distance: the
    radius, and per image whether it fooled the model and its SSIM. `at_budget` is PGD's (success, SSIM) at the
    pixel budget, the search's lower end.

    1 − SSIM grows about as a power of the radius, so each next radius is read off a straight line in log-log space:
    beyond the closer points (with 20% to spare) until a radius reaches the target, then between the two radii that
    bracket it (kept inside the bracket), aiming at the middle of the accepted band."""
    def run(eps: float):
        parts = _batched(PGD(eps=eps, norm="linf", steps=config.steps, seed=config.seed), model, x, y,
                         config.batch_size)
        return torch.cat([r.success for r in parts]), torch.cat([r.ssim for r in parts])

    if float(at_budget[1].mean()) <= target_ssim:  # PGD at the pixel budget is already as visible as SIA
        return (config.eps_linf, *at_budget)
    aim = 1 - (target_ssim - MATCH_TOLERANCE / 2)  # the 1 − SSIM aimed at: the accepted band's middle
    closer = [(config.eps_linf, 1 - float(at_budget[1].mean()))]  # radii whose images are closer than the target
    farther: Optional[tuple[float, float]] = None  # the smallest radius found that reaches the target
    best = None
    for _ in range(MATCH_RUNS):
        low = closer[-1][0]
        if farther is None:
            # two closer points give the line; at first, a perturbation's variance: 1 − SSIM about ∝ radius²
            guess = (_log_log_radius(*closer[-2:], aim) if len(closer) > 1 else None) or low * math.sqrt(
                aim / max(closer[-1][1], 1e-6))
            eps = min(max(1.2 * guess, 1.5 * low), 1.0)
        else:
            high = farther[0]
            guess = _log_log_radius(closer[-1], farther, aim) or math.sqrt(low * high)
            margin = 0.1 * (math.log(high) - math.log(low))  # a tenth of the bracket from either end, so it shrinks
            eps = math.exp(min(max(math.log(guess), math.log(low) + margin), math.log(high) - margin))
        success, similarity = run(eps)
        mean = float(similarity.mean())
        if mean > target_ssim:
            closer.append((eps, 1 - mean))
            if eps >= 1.0:  # even the largest radius keeps the images closer than SIA's
                return eps, success, similarity
        else:
            farther, best = (eps, 1 - mean), (eps, success, similarity)
            if target_ssim - mean <= MATCH_TOLERANCE:
                break
    return best if best is not None else (1.0, *run(1.0))


def _aligned_ssim(result) -> torch.Tensor:
    """SSIM of each attacked image to its original after undoing the attack's own geometric edit."""
    names = getattr(result, "attribute_names", ())
    if not names:
        return result.ssim
    params = {name: result.attribute_values[:, k] for k, name in enumerate(names)}
    return ssim(undo_geometry(result.images, params), result.clean_images)
