"""A controlled test of why the relabelled sets' construction falls short: does the source's *training data* decide
how far its targeted attack must go?

The only full CIFAR-10 training split at hand is a JPEG copy (quality about 75), and JPEG drops the fine,
high-frequency detail in which standard models find many of their non-robust features. The control trains the same
network by the same recipe on the same images twice, once on their exact pixels and once on their JPEG re-encoding,
and attacks each model on the same training images (in its own pixels) with the construction's targeted L2 PGD.
A gap in targeted success between the two arms is then the data's doing, not the network's or the recipe's.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch

from sia_core.attacks.pgd import PGD
from sia_core.data.base import ImageDataset
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.progress import ProgressCallback
from sia_core.validation import in_range, one_of, positive, positive_int, require

Pixels = Literal["exact", "jpeg"]
PIXELS: tuple[Pixels, ...] = ("exact", "jpeg")


def jpeg_reencode(images: torch.Tensor, quality: int = 75) -> torch.Tensor:
    """`images` (N, C, H, W) in [0, 1], each written as a JPEG of `quality` (PIL's standard IJG tables and 4:2:0
    chroma subsampling, as the CIFAR-10 JPEG copy) and read back; (N, C, H, W) in [0, 1]."""
    from PIL import Image

    as_bytes = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    mode = "L" if as_bytes.shape[-1] == 1 else "RGB"
    decoded = []
    for pixels in as_bytes:
        buffer = io.BytesIO()
        Image.fromarray(pixels.squeeze(-1) if mode == "L" else pixels, mode=mode).save(buffer, format="JPEG",
                                                                                       quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as image:
            decoded.append(np.asarray(image.convert(mode), dtype=np.uint8).reshape(pixels.shape))
    return torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).float().div(255).contiguous()


@dataclass(frozen=True)
class JpegControlConfig:
    """The control: `seeds` networks of `architecture` per arm, trained by the at-scale source's recipe (Adam,
    one-cycle, `epochs` over the few exact images), then attacked on `attacked_n` of their training images with
    targeted L2 PGD (`steps` of `step_size`, target (y + 1) mod C, as D̂_det) at each radius of `eps_l2`."""

    architecture: str = "resnet9-slim"
    quality: int = 75
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 0.004
    weight_decay: float = 5e-4
    augment: str = "crop-flip"
    seeds: tuple[int, ...] = (0, 1)
    attacked_n: int = 1000
    eps_l2: tuple[float, ...] = (0.5,)
    steps: int = 100
    step_size: float = 0.1
    sample_seed: int = 1

    def __post_init__(self) -> None:
        positive_int("epochs", self.epochs)
        positive_int("attacked_n", self.attacked_n)
        positive_int("steps", self.steps)
        positive_int("batch_size", self.batch_size)
        positive("learning_rate", self.learning_rate)
        positive("step_size", self.step_size)
        in_range("quality", self.quality, 1, 95)  # PIL's scale; above 95 its tables stop meaning "lossy as the copy"
        require(bool(self.seeds), "seeds must name at least one seed (one network per arm and seed).")
        require(bool(self.eps_l2) and all(eps > 0 for eps in self.eps_l2),
                f"eps_l2 must hold at least one radius, each > 0, got {self.eps_l2!r}.")


@dataclass(frozen=True)
class JpegControlArm:
    """One network of one arm: its clean accuracy on the test images (in its own pixels) and, per radius, which of
    the attacked training images its targeted attack moved to their target."""

    pixels: Pixels
    seed: int
    n_train: int
    train_accuracy: float
    test_accuracy: float
    test_n: int
    reached: dict[str, tuple[bool, ...]]   # radius ("0.5") -> one flag per attacked image, in the sample's order
    seconds: float = 0.0

    def __post_init__(self) -> None:
        one_of("pixels", self.pixels, PIXELS)

    def success(self, radius: str) -> float:
        return float(np.mean(self.reached[radius]))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "JpegControlArm":
        return cls(**{**data, "reached": {radius: tuple(flags) for radius, flags in data["reached"].items()}})


@dataclass(frozen=True)
class JpegControlReport:
    """Both arms over their seeds: targeted success per radius with 95% intervals (bootstrap over the attacked
    images, each image's flag averaged over seeds), the paired difference exact − JPEG, and how close the
    re-encoding comes to the JPEG copy the at-scale source was trained on."""

    config: JpegControlConfig
    arms: tuple[JpegControlArm, ...]
    reencoding_error_to_copy: Optional[float] = None    # mean |re-encoded − copy| per pixel, 0-255 scale
    reencoding_error_to_exact: Optional[float] = None   # mean |re-encoded − exact| per pixel, 0-255 scale
    source: str = ""
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["arms"] = [{key: value for key, value in arm.to_dict().items() if key != "reached"}
                        | {"targeted_success": {radius: arm.success(radius) for radius in arm.reached}}
                        for arm in self.arms]
        return data


def train_arm(pixels: Pixels, seed: int, train_set: ImageDataset, test_set: ImageDataset, config: JpegControlConfig,
              *, checkpoint: Optional[str | Path] = None, progress: Optional[ProgressCallback] = None
              ) -> tuple[ClassifierWrapper, JpegControlArm]:
    """Train one network of arm `pixels` on `train_set` (already in that arm's pixels) and attack it on the control's
    sample of its training images; `checkpoint` resumes the training after its last finished epoch."""
    import time

    from sia_core.evaluation import evaluate
    from sia_core.features.training import fresh_model
    from sia_core.training import TrainConfig, train

    started = time.perf_counter()
    model = fresh_model(f"cifar10-{pixels}-seed{seed}", config.architecture, test_set, seed=seed)
    train(model, train_set, TrainConfig(epochs=config.epochs, batch_size=config.batch_size,
                                        learning_rate=config.learning_rate, weight_decay=config.weight_decay,
                                        augment=config.augment, seed=seed), progress=progress, checkpoint=checkpoint)
    model.eval()
    model.requires_grad_(False)
    sample = attacked_sample(len(train_set), config)
    images, labels = train_set.images[sample], train_set.labels[sample]
    targets = (labels + 1) % train_set.num_classes
    reached = {f"{eps:g}": targeted_reached(model, images, labels, targets, eps, config) for eps in config.eps_l2}
    arm = JpegControlArm(pixels=pixels, seed=seed, n_train=len(train_set),
                         train_accuracy=evaluate(model, train_set).clean_accuracy,
                         test_accuracy=evaluate(model, test_set).clean_accuracy, test_n=len(test_set),
                         reached=reached, seconds=round(time.perf_counter() - started, 1))
    return model, arm


def attacked_sample(n_train: int, config: JpegControlConfig) -> torch.Tensor:
    """The training positions both arms attack (the same images, each in its arm's pixels), from a seeded
    generator: never the process's global one."""
    generator = torch.Generator().manual_seed(config.sample_seed)
    return torch.randperm(n_train, generator=generator)[:min(config.attacked_n, n_train)]


def targeted_reached(model: ClassifierWrapper, images: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor,
                     eps: float, config: JpegControlConfig) -> tuple[bool, ...]:
    """Per image: does the construction's targeted L2 PGD (no random start) at radius `eps` reach its target?"""
    attack = PGD(eps=eps, norm="l2", steps=config.steps, step_size=config.step_size, random_start=False)
    return tuple(bool(flag) for flag in attack(model, images, labels, target=targets).success.cpu())


def summarize(config: JpegControlConfig, arms: tuple[JpegControlArm, ...], *, source: str = "",
              reencoding_error_to_copy: Optional[float] = None,
              reencoding_error_to_exact: Optional[float] = None) -> JpegControlReport:
    """The report over the finished networks of the seeds both arms have (a seed only one arm finished waits for the
    other, so the pairs stay pairs): per arm and radius, the seeds' mean success with a 95% interval (a bootstrap
    over the attacked images of each image's seed-averaged flag: it holds these networks fixed, so it leaves out
    the spread between seeds), and exact − JPEG paired by image. With one arm alone, that arm's seeds."""
    from sia_core.claims import bootstrap_ci

    present = {pixels: {arm.seed for arm in arms if arm.pixels == pixels} for pixels in PIXELS}
    shared = present["exact"] & present["jpeg"]
    used = [arm for arm in arms if arm.seed in shared] if shared else list(arms)
    lengths = {len(flags) for arm in used for flags in arm.reached.values()}
    require(len(lengths) <= 1, f"The control's networks were attacked on different numbers of images "
                               f"({sorted(lengths)}); rerun them with one setting.")
    summary: dict = {"arms": {}, "difference": {}, "seeds_unpaired": sorted(present["exact"] ^ present["jpeg"])}
    per_image: dict[tuple[str, str], np.ndarray] = {}
    for pixels in PIXELS:
        mine = sorted((arm for arm in used if arm.pixels == pixels), key=lambda arm: arm.seed)
        if not mine:
            continue
        summary["arms"][pixels] = {"seeds": [arm.seed for arm in mine], "n_train": mine[0].n_train,
                                   "test_accuracy": float(np.mean([arm.test_accuracy for arm in mine])),
                                   "test_n": mine[0].test_n, "targeted_success": {},
                                   "targeted_success_by_seed": {}}
        for radius in mine[0].reached:
            flags = np.mean([np.asarray(arm.reached[radius], dtype=np.float64) for arm in mine], axis=0)
            per_image[pixels, radius] = flags
            summary["arms"][pixels]["targeted_success"][radius] = {
                "rate": float(flags.mean()), "ci95": list(bootstrap_ci(flags)), "attacked_n": len(flags)}
            summary["arms"][pixels]["targeted_success_by_seed"][radius] = [arm.success(radius) for arm in mine]
    for radius in sorted({radius for _, radius in per_image}, key=float):
        if ("exact", radius) in per_image and ("jpeg", radius) in per_image:
            gap = per_image["exact", radius] - per_image["jpeg", radius]
            summary["difference"][radius] = {"exact_minus_jpeg": float(gap.mean()), "ci95": list(bootstrap_ci(gap))}
    return JpegControlReport(config=config, arms=tuple(used), reencoding_error_to_copy=reencoding_error_to_copy,
                             reencoding_error_to_exact=reencoding_error_to_exact, source=source, summary=summary)


def in_pixels(dataset: ImageDataset, pixels: Pixels, quality: int) -> ImageDataset:
    """`dataset` as arm `pixels` sees it: unchanged ("exact") or JPEG re-encoded at `quality`."""
    if pixels == "exact":
        return dataset
    return replace(dataset, name=f"{dataset.name}-jpeg{quality}", images=jpeg_reencode(dataset.images, quality),
                   source=f"{dataset.source}, re-encoded as JPEG quality {quality}")
