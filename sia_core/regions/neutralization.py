"""Neutralization as a post-hoc defense: blank the vulnerable-but-unimportant region and re-classify.

Masks: the per-image oracle (RoA minus RoI from the image's own attack), a dataset-level mask and
class-level masks learned on a held-out split, and three controls (a random mask of the oracle's area, a random mask
of the deployable masks' area q, the RoI itself). Every mask is scored on adversarial *and* clean inputs, and against
an adaptive attack.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from sia_core.attacks import PGD
from sia_core.attacks.base import check_seed
from sia_core.data.base import ImageDataset
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval
from sia_core.progress import ProgressCallback, StageProgress
from sia_core.registry import Entry, Registry
from sia_core.regions.attack_maps import EffectWeightedMap
from sia_core.regions.fills import FILLS, fill_images
from sia_core.regions.importance import Occlusion
from sia_core.regions.overlap import normalize_maps, overlap_metrics, top_fraction_mask
from sia_core.distributed import map_batches
from sia_core.scaling import batch_size_for
from sia_core.validation import in_range, non_negative, non_negative_int, one_of, positive_int, require

__all__ = ["FILLS", "MASK_KINDS", "MaskInputs", "NeutralizationConfig", "NeutralizationRow", "NeutralizedClassifier",
           "RegionsReport", "fill_images", "neutralization_study"]

MaskProvider = Callable[[torch.Tensor], torch.Tensor]  # images -> (N, H, W) bool masks, for masks that read the input
Mask = MaskProvider | torch.Tensor


@dataclass(frozen=True)
class MaskInputs:
    """What every mask kind is built from: the evaluation split's maps and the scores learned on the fit split."""

    model: ClassifierWrapper
    importance: torch.Tensor      # (N, H, W) RoI maps of the evaluation images
    attack: torch.Tensor          # (N, H, W) RoA maps of the evaluation images
    dataset_score: torch.Tensor   # (H, W) mean normalized RoA - RoI on the fit split
    class_score: torch.Tensor     # (K, H, W) the same per true class
    seed: int


def _oracle_mask(inputs: MaskInputs, fraction: float) -> torch.Tensor:
    return top_fraction_mask(inputs.attack, fraction) & ~top_fraction_mask(inputs.importance, fraction)


def _dataset_mask(inputs: MaskInputs, fraction: float) -> torch.Tensor:
    return top_fraction_mask(inputs.dataset_score.unsqueeze(0), fraction)[0].expand(len(inputs.attack), -1, -1)


def _class_mask(inputs: MaskInputs, fraction: float) -> MaskProvider:
    class_masks = top_fraction_mask(inputs.class_score, fraction)

    def by_predicted_class(images: torch.Tensor) -> torch.Tensor:
        size = batch_size_for(images.shape, max(len(images), 1))
        with torch.no_grad():
            predicted = torch.cat([inputs.model(images[i:i + size].to(inputs.model.device)).argmax(1).cpu()
                                   for i in range(0, len(images), size)] or [torch.zeros(0, dtype=torch.long)])
        return class_masks[predicted]

    return by_predicted_class


def _random_mask(inputs: MaskInputs, fraction: float) -> torch.Tensor:
    area = _oracle_mask(inputs, fraction).flatten(1).sum(1)  # the oracle's area, image by image
    generator = torch.Generator().manual_seed(inputs.seed + 1)
    scores = torch.rand(inputs.attack.shape, generator=generator).flatten(1)
    ranks = scores.argsort(1).argsort(1)  # a random pixel order per image
    return (ranks < area.view(-1, 1)).view_as(inputs.attack)


def _random_q_mask(inputs: MaskInputs, fraction: float) -> torch.Tensor:
    # random pixels in the area the deployable masks blank (q of each image): their control, where the oracle's area
    # (RoA minus RoI, smaller) would compare a mask with a smaller one
    generator = torch.Generator().manual_seed(inputs.seed + 2)
    return top_fraction_mask(torch.rand(inputs.attack.shape, generator=generator), fraction)


def _roi_mask(inputs: MaskInputs, fraction: float) -> torch.Tensor:
    return top_fraction_mask(inputs.importance, fraction)


# each factory is called as `MASK_KINDS.build(kind, inputs=..., fraction=...)` and returns the masks or a provider
MASK_KINDS: Registry[Mask] = Registry("mask kind", [
    Entry("oracle", "oracle: RoA \\ RoI of the image's own attack",
          "The top-q attack region minus the top-q importance region of each image's own attack: not deployable "
          "(it needs the attack), the upper bound of the idea.", _oracle_mask),
    Entry("dataset", "dataset-level mask",
          "One mask for every image: where the held-out split's attack maps are high and importance maps low.",
          _dataset_mask),
    Entry("class", "class-level mask (by predicted class)",
          "One mask per class, learned like the dataset mask on each class; chosen by the model's prediction.",
          _class_mask),
    Entry("random", "random mask, the oracle's area (control)",
          "Random pixels, as many as the oracle blanks in each image: does the place matter, or only the area?",
          _random_mask),
    Entry("random_q", "random mask, q of the pixels (control)",
          "Random pixels, as many as the dataset, class and RoI masks blank (q of each image): the deployable "
          "masks' control.", _random_q_mask),
    Entry("roi", "the RoI itself (control)",
          "Blank the top-q importance region: what blanking where the model looks costs.", _roi_mask),
])


class NeutralizedClassifier(nn.Module):
    """model ∘ neutralize: the defended pipeline an adaptive attacker differentiates through.

    The mask comes from `mask_for(images)` without gradient (a straight-through choice): gradients
    flow through the pixels that stay.
    """

    def __init__(self, model: ClassifierWrapper, mask_for: MaskProvider, fill: str,
                 channel_mean: Optional[torch.Tensor]) -> None:
        super().__init__()
        FILLS[fill]  # an unknown fill fails here, not in the middle of an attack
        self.model = model
        self.mask_for = mask_for
        self.fill = fill
        self.channel_mean = channel_mean

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            masks = self.mask_for(images).to(images.device)
        return self.model(fill_images(images, masks, self.fill, self.channel_mean))


@dataclass(frozen=True)
class NeutralizationConfig:
    """One study: n evaluation images, a held-out split to learn the deployable masks, the mask area."""

    n: int = 256
    n_fit: int = 256
    fraction: float = 0.2
    eps_linf: float = 8 / 255  # the PGD attack's radius
    attack_steps: int = 10
    fill: str = "zero"  # a name of FILLS; Fashion-MNIST's background is black: zero is "nothing here"
    seed: int = 0
    curve_fractions: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)

    def __post_init__(self) -> None:
        positive_int("n", self.n)
        positive_int("n_fit", self.n_fit)
        in_range("fraction", self.fraction, 0, 1, low_open=True)
        non_negative("eps_linf", self.eps_linf)
        non_negative_int("attack_steps", self.attack_steps)
        one_of("fill", self.fill, FILLS.names())
        check_seed("seed", self.seed)
        require(isinstance(self.curve_fractions, tuple), f"curve_fractions must be a tuple, got {self.curve_fractions!r}.")
        for fraction in self.curve_fractions:
            in_range("each of curve_fractions", fraction, 0, 1, low_open=True)


@dataclass(frozen=True)
class NeutralizationRow:
    mask: str
    mean_area: float
    adversarial_accuracy_before: float
    adversarial_accuracy_after: float
    clean_accuracy_before: float
    clean_accuracy_after: float
    adaptive_accuracy: float
    # 1 where the evaluation image, attacked then masked, is classified correctly: the masks score the same images,
    # so a mask's gain over its control is paired (empty in a study from before 2026-12-07)
    adversarial_correct_after: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        """The row's rates (its per-image results are left to the results file)."""
        return {key: (round(value, 4) if isinstance(value, float) else value) for key, value in self.__dict__.items()
                if key != "adversarial_correct_after"}


RANDOM_CONTROLS = ("random", "random_q")


def random_control(rows: Sequence[NeutralizationRow], mask: str) -> Optional[NeutralizationRow]:
    """The random mask `mask` is judged against, at its own area: the oracle's own-area one for the oracle, the one
    of q for the deployable masks (a study from before 2026-12-06, without it: the oracle's); None for a control."""
    by_mask = {row.mask: row for row in rows}
    if mask in RANDOM_CONTROLS:
        return None
    return by_mask.get("random") if mask == "oracle" else by_mask.get("random_q") or by_mask.get("random")


@dataclass(frozen=True)
class RegionsReport:
    """What the dataset view shows: overlap statistics, class-averaged maps, the neutralization table and curve."""

    model_id: str
    dataset: str
    n: int
    fraction: float
    eps_linf: float
    fill: str
    overlap_means: dict[str, float]
    iou_per_image: torch.Tensor
    class_importance: torch.Tensor   # (K, H, W) mean normalized RoI per true class
    class_attack: torch.Tensor       # (K, H, W) mean normalized RoA per true class
    class_names: tuple[str, ...]
    rows: tuple[NeutralizationRow, ...]
    curve: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # kind -> [(mean area, adv. acc. after)]

    def to_dict(self) -> dict:
        return {"model": self.model_id, "dataset": self.dataset, "n": self.n, "fraction": self.fraction,
                "eps_linf": self.eps_linf, "fill": self.fill,
                "overlap": {k: round(v, 4) for k, v in self.overlap_means.items()},
                "neutralization": [row.to_dict() for row in self.rows],
                "curve": {k: [[round(a, 4), round(b, 4)] for a, b in v] for k, v in self.curve.items()}}


def _maps(model: ClassifierWrapper, images: torch.Tensor, labels: torch.Tensor, importance: Occlusion,
          attack_map: EffectWeightedMap, batch_size: int = 128):
    def maps_of(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = images[index], labels[index]
        result = attack_map(model, x, y)
        return importance(model, x, y).cpu(), result.maps.cpu(), result.attack.images.cpu()

    # under torchrun the batches are shared among the processes (sia_core.distributed)
    return map_batches(maps_of, len(labels), batch_size_for(images.shape, batch_size))


def _correct(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(N,) bool: which images the model classifies correctly."""
    size = batch_size_for(images.shape, max(len(images), 1))
    with torch.no_grad():
        return torch.cat([model(images[i:i + size].to(labels.device)).argmax(1) == labels[i:i + size]
                          for i in range(0, len(images), size)] or [torch.zeros(0, dtype=torch.bool)]).cpu()


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    if len(images) == 0:
        return float("nan")  # the mean of nothing, as before batching
    return float(_correct(model, images, labels).float().mean())


def _adaptive_accuracy(attack: PGD, model: ClassifierWrapper, mask: Mask, fill: str,
                       channel_mean: torch.Tensor, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy of the neutralizing pipeline under PGD through it, batch by batch (at most `batch_size_for` images:
    one batch up to 32 px): each batch's pipeline takes its own images' masks. Under torchrun the batches are
    shared among the processes (sia_core.distributed)."""
    if len(images) == 0:
        return float("nan")  # the mean of nothing, as before batching

    def defended(index: torch.Tensor) -> tuple[torch.Tensor]:
        def mask_for(batch: torch.Tensor) -> torch.Tensor:
            return mask(batch) if callable(mask) else mask[index.to(mask.device)]

        pipeline = NeutralizedClassifier(model, mask_for, fill, channel_mean)
        x, y = images[index].to(labels.device), labels[index.to(labels.device)]
        adversarial = attack.perturb(pipeline, x, y)  # type: ignore[arg-type]
        with torch.no_grad():
            return ((pipeline(adversarial).argmax(1) == y).cpu(),)

    correct = map_batches(defended, len(images), batch_size_for(images.shape, len(images)))[0]
    return float(correct.float().mean())


def neutralization_study(model: ClassifierWrapper, dataset: ImageDataset,
                         config: NeutralizationConfig = NeutralizationConfig(),
                         progress: Optional[ProgressCallback] = None) -> RegionsReport:
    """RoI (occlusion) and RoA (effect-weighted PGD) on a fit split and an evaluation split, then every mask kind."""
    require(len(dataset) > config.n_fit,
            f"{dataset.name} has {len(dataset)} images: too few to hold out n_fit = {config.n_fit} and still "
            "evaluate; lower n_fit.")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(config.seed))
    fit_index, eval_index = order[:config.n_fit], order[config.n_fit:config.n_fit + config.n]
    channel_mean = dataset.images.mean(dim=(0, 2, 3))
    importance = Occlusion(fill="mean", fill_value=tuple(channel_mean.tolist()))
    attack_map = EffectWeightedMap(eps=config.eps_linf, steps=config.attack_steps, seed=config.seed)
    tick = StageProgress(3 + len(MASK_KINDS), progress)

    fit_x, fit_y = dataset.images[fit_index], dataset.labels[fit_index]
    fit_roi, fit_roa, _ = _maps(model, fit_x, fit_y, importance, attack_map)
    tick("maps on the held-out split")
    x, y = dataset.images[eval_index], dataset.labels[eval_index]
    roi, roa, x_adv = _maps(model, x, y, importance, attack_map)
    tick("maps on the evaluation split")

    # deployable masks: where the held-out attack maps are high and the importance maps low
    fit_roi_n, fit_roa_n = normalize_maps(fit_roi), normalize_maps(fit_roa)
    dataset_score = fit_roa_n.mean(0) - fit_roi_n.mean(0)
    classes = dataset.num_classes
    class_score = torch.stack([(fit_roa_n[fit_y == c].mean(0) - fit_roi_n[fit_y == c].mean(0))
                               if (fit_y == c).any() else dataset_score for c in range(classes)])
    roi_n, roa_n = normalize_maps(roi), normalize_maps(roa)

    mask_inputs = MaskInputs(model=model, importance=roi, attack=roa, dataset_score=dataset_score,
                             class_score=class_score, seed=config.seed)

    def masks_at(fraction: float) -> dict[str, Mask]:
        return {entry.name: entry.build(inputs=mask_inputs, fraction=fraction) for entry in MASK_KINDS}

    def resolve(mask: Mask, images: torch.Tensor) -> torch.Tensor:
        return mask(images) if callable(mask) else mask

    device_y = y.to(model.device)
    rows = []
    with frozen_eval(model):
        adversarial_before = _accuracy(model, x_adv, device_y)
        clean_before = _accuracy(model, x, device_y)
        tick("baseline accuracies")
        for kind, mask in masks_at(config.fraction).items():
            adversarial_masks, clean_masks = resolve(mask, x_adv), resolve(mask, x)
            adaptive_accuracy = _adaptive_accuracy(PGD(eps=config.eps_linf, steps=config.attack_steps, seed=config.seed),
                                                   model, mask, config.fill, channel_mean, x, device_y)
            correct_after = _correct(model, fill_images(x_adv, adversarial_masks, config.fill, channel_mean), device_y)
            rows.append(NeutralizationRow(
                mask=kind, mean_area=float(adversarial_masks.float().mean()),
                adversarial_accuracy_before=adversarial_before,
                adversarial_accuracy_after=float(correct_after.float().mean()) if len(correct_after) else float("nan"),
                adversarial_correct_after=tuple(int(c) for c in correct_after),
                clean_accuracy_before=clean_before,
                clean_accuracy_after=_accuracy(model, fill_images(x, clean_masks, config.fill, channel_mean), device_y),
                adaptive_accuracy=adaptive_accuracy))
            tick(f"mask: {kind}")
        curve: dict[str, list[tuple[float, float]]] = {kind: [] for kind in MASK_KINDS.names()}
        for fraction in config.curve_fractions:
            for kind, mask in masks_at(fraction).items():
                masks = resolve(mask, x_adv)
                after = _accuracy(model, fill_images(x_adv, masks, config.fill, channel_mean), device_y)
                curve[kind].append((float(masks.float().mean()), after))

    class_importance = torch.stack([roi_n[y == c].mean(0) if (y == c).any() else torch.zeros_like(roi_n[0])
                                    for c in range(classes)])
    class_attack = torch.stack([roa_n[y == c].mean(0) if (y == c).any() else torch.zeros_like(roa_n[0])
                                for c in range(classes)])
    metrics = overlap_metrics(roi, roa, config.fraction)
    return RegionsReport(model_id=model.model_id, dataset=dataset.name, n=len(y), fraction=config.fraction,
                         eps_linf=config.eps_linf, fill=config.fill, overlap_means=metrics.means(), iou_per_image=metrics.iou,
                         class_importance=class_importance, class_attack=class_attack, class_names=dataset.class_names,
                         rows=tuple(rows), curve=curve)


@dataclass(frozen=True)
class FillComparison:
    """The same neutralization study (images, masks, attack) with each fill: fill -> its table's rows."""

    config: NeutralizationConfig
    rows: dict[str, tuple[NeutralizationRow, ...]]


def fill_comparison(model: ClassifierWrapper, dataset: ImageDataset, config: NeutralizationConfig,
                    fills: tuple[str, ...], done: Optional[RegionsReport] = None) -> FillComparison:
    """`neutralization_study` with `config` under each fill of `fills`; `done`, a report already run with one of
    them, is reused."""
    rows = {}
    for fill in fills:
        one_of("fill", fill, FILLS.names())
        report = done if done is not None and done.fill == fill else neutralization_study(
            model, dataset, dataclasses.replace(config, fill=fill))
        rows[fill] = report.rows
    return FillComparison(config=config, rows=rows)
