"""Robust vs non-robust features at scale (Ilyas et al. 2019, Tables 1 and 7): every constructed set built from the
world's training split, a fresh network trained on each and on as many original images ("D"), each scored on the
original test set with its 95% interval. One script for every tier; the stages resume where a run stopped:

    .venv/bin/python scripts/features_at_scale.py plan  --world cifar10            # throughput and success, first
    .venv/bin/python scripts/features_at_scale.py success --world cifar10 --n 500 --source FOLDER  # another source
    nohup .venv/bin/python scripts/features_at_scale.py run --world cifar10 --tier cpu --only d_det,d_rand,d &
    .venv/bin/python scripts/features_at_scale.py write --world cifar10 --tier cpu   # -> assets/precomputed/

On a GPU machine (the device tool: nothing to download there, so the data travels in the working tree), one call
of scripts/gpu_features.sh runs the gpu tier under a time budget and exports what finished:

    cp -r ../shared/data/cifar10-jpg artifacts/   # then, on the GPU machine, carrying artifacts/cifar10-jpg:
    bash scripts/gpu_features.sh 540              # -> $OUT: gpu.txt, run.log, features-results.json, -weights.tar
    # back here: import --out <the files> --world cifar10 --tier gpu, then write --world cifar10 --tier gpu

Under torchrun (gloo on CPU, one thread a process) the processes share each set's build by whole batches, and rank 0
then trains and scores on the saved set:

    nohup env OMP_NUM_THREADS=1 .venv/bin/torchrun --nproc-per-node 2 scripts/features_at_scale.py run \
      --world cifar10 --tier cpu --only d_r &

Tiers: "cpu" (this machine, one thread a run: relabelled sets from 28,000 attempts keeping the targeted successes,
the robust-source control's from 20,000 attempts keeping all, D̂_R at 10,000 and D̂_NR at 5,000), "gpu" (the
paper's scale: 50,000 images, the paper's steps; mixed precision on CUDA), "tiny" (the same code at a toy size, for
the tests). Stages write into --work (default $SIA_EXPLORER_HOME/features-<world>-<tier>): sets/<kind>.npz (built
batch by batch), checkpoints/<kind>.pt (every epoch), results/<stage>.json (when a stage ends),
weights/<kind>.safetensors. `write` gathers the results into the world's study file (`features` key) in
assets/precomputed/.

What follows the paper and what does not (said on the features page too): targeted L2 PGD at the paper's ε 0.5,
step 0.1, 100 steps (CIFAR-10); D̂_R / D̂_NR by normalized-gradient steps of 0.1 from a random
other image, as many as the measured error curve needs; D̂_det trained without augmentation, the others with random
crops and flips (the paper's Table 3). Ours, not the paper's: ResNet9-slim (the paper: ResNet-50), Adam with a
one-cycle schedule (the paper: SGD 0.1 with drops), D̂_rand's targets t ≠ y (the paper's text: drawn from all
classes), fewer images on the CPU tier, and keeping only the images the
standard source model sends to their target where the radius does not reach 95% targeted success (the robust
source's sets keep every attempt, as the paper's construction).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sia_core import resolve as resolver  # noqa: E402
from sia_core.attacks.carlini_wagner import cw_margin  # noqa: E402
from sia_core.attacks.pgd import PGD, projected_gradient_ascent  # noqa: E402
from sia_core.data.base import ImageDataset  # noqa: E402
from sia_core.data.cifar10 import CIFAR10_CLASSES  # noqa: E402
from sia_core.distributed import current_shard, init_from_environment, shutdown  # noqa: E402
from sia_core.errors import DataError  # noqa: E402
from sia_core.features import (KINDS, PAPER_CIFAR10, PAPER_ROBUST_SOURCE, ConstructedSet,  # noqa: E402
                               FeatureTrainingConfig, FeatureTransferConfig, made_alike, transfer_study)
from sia_core.features.build import (build_constructed_set, build_plan, representation_error_curve,  # noqa: E402
                                    targeted_success_by_class)
from sia_core.features.training import fresh_model, score_on_test  # noqa: E402
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval  # noqa: E402
from sia_core.models.measured import user_folder  # noqa: E402
from sia_core.runtime import keep_freed_memory_for_reuse  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PRECOMPUTED = ROOT / "assets/precomputed"
SHARED = ROOT.parent / "shared/data"
CIFAR10_JPEG = os.environ.get("SIA_CIFAR10_DIR") or str(SHARED / "cifar10-jpg")
RELABELLED = ("d_det", "d_rand")
MATCHED = ("d_r", "d_nr")
# plain training on original images: "d" as many as the relabelled sets keep, "d_small" as many as D̂_R / D̂_NR hold
# (each constructed set's control at its own N)
# "d_matched_nr": D̂_NR's control at similar clean accuracy (the fewest original images, of N/8, N/4, N/2 and N with N
# D̂_NR's, whose plain model reaches D̂_NR's clean accuracy): where D̂_NR's model is far less accurate than D at the
# same N, a low robust accuracy might only mean a weak model; against a plain model as accurate, it cannot
ACCURACY_MATCHED = "d_matched_nr"
PLAIN = ("d", "d_small", ACCURACY_MATCHED)
# the robust-source control (the paper's Tables 9 and 10): D̂_det and D̂_rand built from the robust model instead
ROBUST_SOURCE = ("d_det_robust", "d_rand_robust")
STAGES = ("d", *RELABELLED, "d_small", *MATCHED, ACCURACY_MATCHED, *ROBUST_SOURCE)
# the tiers whose D̂_R / D̂_NR hold as many images as D (D is their control) and whose D̂_NR is about as accurate as D
FULL_SIZE_STAGES = tuple(stage for stage in STAGES if stage not in ("d_small", ACCURACY_MATCHED))
# the transfer study (Figure 3) on the D̂_det set: a separate result, not a row
TRANSFER = "transfer"


def base_kind(stage: str) -> str:
    """The engine's construction kind of a stage ("d_det_robust" builds a D̂_det)."""
    return stage.removesuffix("_robust")


@dataclass(frozen=True)
class World:
    """Where a world's study draws from: its source models, splits, radius and network."""

    standard: str                  # the source of D̂_det, D̂_rand and D̂_NR
    robust: str                    # the source of D̂_R
    data: str                      # the dataset spec (training and test splits)
    eps_l2: float                  # the relabelled sets' radius
    architecture: str
    augment: str                   # the augmentation of D, D̂_rand, D̂_R, D̂_NR (D̂_det trains without: Table 3)
    eval_eps_l2: tuple[float, ...]  # the radii of the robust columns (the first is the training config's)
    study_file: Optional[str]      # assets/precomputed/<study_file>: where `write` puts the rows
    paper: dict                    # the paper's numbers per set, where it has them


@dataclass(frozen=True)
class Tier:
    relabelled_n: int   # attempts per relabelled set
    keep: str           # "successful" or "all": the standard source's relabelled sets (the robust source's keep all)
    matched_n: int      # D̂_NR's images (and D̂_R's unless robust_matched_n says otherwise)
    matched_steps: int
    pgd_steps: int
    epochs: int
    eval_n: int         # robust accuracy on the first eval_n test images
    curve_n: int        # images of the error curve
    batch_size: int = 128  # training
    build_batch: int = 250  # images attacked together while building
    test_n: Optional[int] = None  # the first test_n test images (all when None)
    stages: tuple[str, ...] = STAGES  # what the tier runs by default (and the page expects)
    transfer_n: int = 20_000          # D̂_det images each architecture of the transfer study trains on
    transfer_architectures: tuple[str, ...] = ("mlp", "tiny-cnn", "small-cnn", "resnet9-slim", "vgg-slim")
    # the transfer study's training seeds (each trains every architecture twice; seed 0's is the headline) and the
    # further radii its y-axis is scored at, beside the world's
    transfer_seeds: tuple[int, ...] = (0,)
    transfer_sensitivity_eps_l2: tuple[float, ...] = ()
    # each transfer network's epochs; None: as many as the sets' networks (`epochs`), so the x-axis of the study reads
    # D̂_det learned as long as D̂_det's own row
    transfer_epochs: Optional[int] = None
    # D̂_R's images where they differ from D̂_NR's: D̂_R's robustness over plain training at the same N is the
    # measure that needs the most images, so it gets them first; "d_small" (its control) follows it
    robust_matched_n: Optional[int] = None
    # attempts of the robust-source control's sets where they differ from relabelled_n: every attempt is kept, so
    # this is its N, set near the N the standard source's sets keep (the control compares sets of similar size)
    robust_source_n: Optional[int] = None

    @property
    def transfer_training_epochs(self) -> int:
        return self.transfer_epochs or self.epochs

    def relabelled_n_of(self, stage: str) -> int:
        return (self.robust_source_n or self.relabelled_n) if stage in ROBUST_SOURCE else self.relabelled_n

    def matched_n_of(self, stage: str) -> int:
        """The images of a matched stage (d_r, d_nr) or of d_small, D̂_R's control."""
        return (self.robust_matched_n or self.matched_n) if stage in ("d_r", "d_small") else self.matched_n


# the paper's CIFAR-10 numbers per set (Tables 1, 7 and 10), labelled "paper" wherever they are shown
PAPER_ROWS = {"d": PAPER_CIFAR10["d"], "d_small": None, "d_rand": PAPER_CIFAR10["d_rand"], "d_r": PAPER_CIFAR10["d_r"],
              "d_nr": PAPER_CIFAR10["d_nr"], "d_det": {**PAPER_CIFAR10["d_det"], "relabelled_test_accuracy": 0.162,
                                                       "source": "Table 1 / Table 10"},
              "d_det_robust": {**PAPER_ROBUST_SOURCE["d_det"], "source": "Table 9 / Table 10"},
              "d_rand_robust": {**PAPER_ROBUST_SOURCE["d_rand"], "source": "Table 9"}}

WORLDS = {
    # the standard source trained until D̂_det's targeted attack succeeds on 95% of the images tried (the shipped
    # sets came from cifar10-standard, 77%; each row names the source it was built from)
    "cifar10": World(standard="cifar10-standard-long", robust="cifar10-robust-l2", data=f"cifar10:{CIFAR10_JPEG}",
                     eps_l2=0.5, architecture="resnet9-slim", augment="crop-flip", eval_eps_l2=(0.25, 0.5),
                     study_file="cifar10-study.json", paper=PAPER_ROWS),
    # no paper numbers on Fashion-MNIST; its radius is our choice (see `plan`: the tiny CNN needs a larger one)
    "fashion-mnist": World(standard="fmnist-standard", robust="fmnist-robust", data="fashion-mnist", eps_l2=2.0,
                           architecture="tiny-cnn", augment="none", eval_eps_l2=(0.5, 1.0),
                           study_file="fashion-mnist-study.json", paper={}),
    "shapes": World(standard="shapes-standard", robust="shapes-robust", data="shapes", eps_l2=2.0,
                    architecture="tiny-cnn", augment="none", eval_eps_l2=(0.5,), study_file=None, paper={}),
}
TIERS = {
    "cpu": Tier(relabelled_n=28_000, keep="successful", matched_n=5_000, matched_steps=1000, pgd_steps=100,
                epochs=20, eval_n=1000, curve_n=200, robust_matched_n=10_000, robust_source_n=20_000,
                transfer_seeds=(0, 1), transfer_sensitivity_eps_l2=(0.25, 1.0, 2.0)),
    # D̂_R holds as many images as D here, so D is its control (no "d_small")
    "gpu": Tier(relabelled_n=50_000, keep="all", matched_n=50_000, matched_steps=1000, pgd_steps=100, epochs=40,
                eval_n=2000, curve_n=1000, batch_size=512, build_batch=12_500, transfer_epochs=20,  # the 9-minute plan
                stages=FULL_SIZE_STAGES),
    "tiny": Tier(relabelled_n=64, keep="all", matched_n=32, matched_steps=6, pgd_steps=3, epochs=1, eval_n=16,
                 curve_n=8, test_n=200, transfer_architectures=("mlp", "tiny-cnn"),
                 transfer_seeds=(0, 1), transfer_sensitivity_eps_l2=(1.0, 4.0),
                 build_batch=16),  # several batches a set, so a torchrun build splits them
}
# Fashion-MNIST's full training split is cheap with the tiny CNN: the CPU tier takes all of it (so D̂_R and D̂_NR hold
# as many images as D, and D is their control: no "d_small"); D̂_NR's model is less accurate than D, so the plain
# model as accurate ("d_matched_nr") is its control, as on CIFAR-10
WORLD_TIERS = {("fashion-mnist", "cpu"): dataclasses.replace(
    TIERS["cpu"], relabelled_n=60_000, matched_n=60_000, epochs=10, curve_n=500, robust_source_n=None,
    stages=tuple(stage for stage in STAGES if stage != "d_small"), transfer_sensitivity_eps_l2=(1.0, 4.0))}


def tier_of(world: str, tier: str) -> Tier:
    return WORLD_TIERS.get((world, tier), TIERS[tier])


def work_dir(world: str, tier: str, given: Optional[str]) -> Path:
    path = Path(given) if given else user_folder() / f"features-{world}-{tier}"
    for sub in ("sets", "checkpoints", "results", "weights"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def construction(stage: str, world: World, tier: Tier, matched_steps: Optional[int] = None):
    kind = base_kind(stage)
    if kind in RELABELLED:
        # The paper adds every attempt, relabelled with its target. Our standard source reaches the target on about
        # 77% (the paper's on nearly all), so its sets keep those that do. The robust source reaches it on under a
        # tenth: keeping only those would keep exactly the images whose robust features the attack did move, the
        # opposite of the control (Tables 9 and 10: mostly images that still look like y, labelled t), so it keeps all.
        keep = "all" if stage in ROBUST_SOURCE else tier.keep
        return KINDS.build(kind, n=tier.relabelled_n_of(stage), eps_l2=world.eps_l2, steps=tier.pgd_steps,
                           step_size=0.1, keep=keep, batch_size=tier.build_batch)
    return KINDS.build(kind, n=tier.matched_n_of(kind), steps=matched_steps or tier.matched_steps, step_size=0.1,
                       batch_size=tier.build_batch)


def training_config(stage: str, world: World, tier: Tier) -> FeatureTrainingConfig:
    kind = base_kind(stage)
    return FeatureTrainingConfig(architecture=world.architecture, epochs=tier.epochs, learning_rate=2e-3,
                                 eval_eps_l2=world.eval_eps_l2[0], eval_steps=20, eval_n=tier.eval_n,
                                 augment="none" if kind == "d_det" else world.augment, batch_size=tier.batch_size,
                                 weight_decay=5e-4)


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def source(model_id: str, world: World) -> ClassifierWrapper:
    """A source model, on CUDA when present (the wrapper's default)."""
    return resolver.resolve(model_id, world.data, n=1).model


def splits(world: World, model: ClassifierWrapper, test_n: Optional[int] = None
           ) -> tuple[ImageDataset, ImageDataset]:
    train = resolver.training_split(world.data, image_shape=model.input_shape, required=True)
    test = resolver.test_split(world.data, image_shape=model.input_shape, n=test_n)
    return train, test


def source_success(world_name: str, n: int, source_spec: Optional[str], split: str = "train",
                   work: Optional[Path] = None, to: Optional[str] = None) -> dict:
    """D̂_det's construction (targeted L2 PGD at the world's radius, step 0.1, the cpu tier's steps, target y + 1)
    against a source model on the first `n` training images: its targeted success with its 95% interval, so another
    source (e.g. one trained longer: `python -m sia_core train ... --out FOLDER`) can be weighed before a rebuild.
    `split="test"` runs it on images the source never trained on, to see whether fitting them is what resists.

    `to`: another model the same images are shown to (a stage whose weights `work` holds, e.g. d: the model trained
    on the original images, or a shipped id or model folder): on the images both classify correctly when clean, how
    many it sends to the target too, and how many it misclassifies. D̂_det teaches the true labels only through what
    the attack plants for the target and models other than the source read as the target too (the paper's Figure 3
    ties D̂_det's accuracy to transfer across architectures; this measures it across sources)."""
    world, tier = WORLDS[world_name], TIERS["cpu"]
    model = source(source_spec or world.standard, world)
    train, test = splits(world, model)
    images = train if split == "train" else test
    x, y = images.images[:n], images.labels[:n]
    target = (y + 1) % images.num_classes
    attack = PGD(eps=world.eps_l2, norm="l2", steps=tier.pgd_steps, step_size=0.1, random_start=False)
    started = time.perf_counter()
    found = attack(model, x, y, target=target)  # the attack chunks the images itself
    measured = {"source": source_spec or world.standard, "split": split, "n": len(x), "eps_l2": world.eps_l2,
                "steps": tier.pgd_steps, **_rate_with_interval("targeted_success", found.success.cpu().numpy())}
    if to is not None:
        receiver, described = _receiving_model(world_name, to, work, test)
        with torch.no_grad():
            clean, shown = (receiver.logits(batch, batch_size=512).argmax(1).cpu() for batch in (x, found.images))
            source_clean = found.clean_logits.argmax(1).cpu()
        counted = ((clean == y) & (source_clean == y)).numpy()
        measured["transfer"] = {"to": to, "to_model": described,
                                "counted": int(counted.sum()),
                                **_rate_with_interval("targeted", (shown == target).numpy()[counted]),
                                **_rate_with_interval("fooled", (shown != y).numpy()[counted])}
    return {**measured, "seconds": round(time.perf_counter() - started, 1)}


def record_source_transfer(world_name: str, measured: dict, command: str) -> Path:
    """`success --to --save`: the measurement into the world's study file, under features.source_transfer (one entry
    per source, split, image count and receiving model, so a stage trained again replaces its entry), with its
    command and date."""
    world = WORLDS[world_name]
    if world.study_file is None or "transfer" not in measured:
        raise SystemExit(f"--save records a transfer (--to) into a study file; the {world_name} world has "
                         + ("none." if world.study_file is None else "one, but nothing was shown to another model."))
    path = PRECOMPUTED / world.study_file
    study = json.loads(path.read_text()) if path.is_file() else {"dataset": world.data}
    features = study.setdefault("features", {})

    def key(entry: dict) -> tuple:
        return entry["source"], entry["split"], entry["n"], entry["transfer"]["to"]

    entry = {**measured, "command": command, "created": time.strftime("%Y-%m-%d")}
    features["source_transfer"] = [*(old for old in features.get("source_transfer", ()) if key(old) != key(entry)),
                                   entry]
    _save_json(path, study)
    return path


def _receiving_model(world_name: str, to: str, work: Optional[Path], test: ImageDataset
                     ) -> tuple[ClassifierWrapper, str]:
    """The model `success --to` shows the source's images to, and which it is in words a reader of the study file can
    place: a stage's trained weights in `work` (normalized by the test split of the tier that trained it, as the
    stage's model was), else a shipped id or model folder."""
    world = WORLDS[world_name]
    if to not in STAGES:
        return source(to, world), to
    folder = work or work_dir(world_name, "cpu", None)
    weights, finished = folder / "weights" / f"{to}.safetensors", folder / "results" / f"{to}.json"
    if not weights.is_file() or not finished.is_file():
        raise SystemExit(f"{weights} is missing: run the {to} stage first, or name a model instead.")
    stage = json.loads(finished.read_text())
    tier = tier_of(world_name, stage["tier"])  # the tier that trained it
    model = fresh_model(f"{world_name}-trained-on-{to}", world.architecture,
                        test.subset(slice(0, tier.test_n)) if tier.test_n else test, seed=0)
    _load_weights(model, weights)
    n_train = (stage.get("result") or {}).get("n_train")
    trained_on = f" {n_train:,}" if n_train else ""
    described = (f"{world.architecture} trained on{trained_on} original images with their true labels, the D row's "
                 "model" if to == "d" else f"{world.architecture} trained on the {to} stage's set{trained_on}")
    return model.eval(), described


def plan(world_name: str, n: int) -> None:
    """Measure before running: seconds per image-step of the attack and of training, and the targeted success of
    L2 PGD against the standard source at a few radii, on `n` training images."""
    world = WORLDS[world_name]
    model = source(world.standard, world)
    train, _ = splits(world, model)
    x, y = train.images[:n], train.labels[:n]
    target = (y + 1) % train.num_classes
    for eps in sorted({world.eps_l2 / 2, world.eps_l2, world.eps_l2 * 1.5, world.eps_l2 * 2}):
        started = time.perf_counter()
        adversarial = PGD(eps=eps, norm="l2", steps=100, step_size=0.1, random_start=False).perturb(
            model, x, y, target=target)
        seconds = time.perf_counter() - started
        success = float((model.logits(adversarial).argmax(1) == target).float().mean())
        print(json.dumps({"eps_l2": eps, "steps": 100, "targeted_success": round(success, 4),
                          "ms_per_image_step": round(1000 * seconds / n / 100, 3)}), flush=True)
    # another objective at the world's radius: where cross-entropy saturates below 95%, does the margin to the target
    # (Carlini-Wagner's, clipped at 5 so reached images stop pulling) reach more?
    goal = target.to(model.device)
    with frozen_eval(model):
        adversarial = projected_gradient_ascent(x.to(model.device),
                                                lambda images: cw_margin(model(images), goal, 5.0, True).sum(),
                                                norm="l2", steps=100, step_size=0.1, radius=world.eps_l2)
    success = float((model.logits(adversarial).argmax(1) == target).float().mean())
    print(json.dumps({"eps_l2": world.eps_l2, "steps": 100, "objective": "margin to the target",
                      "targeted_success": round(success, 4)}), flush=True)
    student = fresh_model("probe", world.architecture, train, seed=0)
    config = dataclasses.replace(training_config("d", world, TIERS["cpu"]), epochs=1)
    from sia_core.training import train as train_model

    started = time.perf_counter()
    train_model(student, train.subset(slice(0, 4 * n)), config.train_config())
    print(json.dumps({"training_ms_per_image_epoch": round(1000 * (time.perf_counter() - started) / (4 * n), 3)}))


# an H200's datasheet: dense bfloat16 tensor throughput and memory bandwidth, for the floors no run can beat
H200_PEAK_BF16_FLOPS = 989e12
H200_MEMORY_BYTES_PER_SECOND = 4.8e12


def estimate(world_name: str, tier_name: str) -> dict:
    """The tier's work in counted FLOPs (torch's FLOP counter on one forward pass; a backward costs about two) and
    counted activation bytes, the minutes it takes at a few sustained rates, and the two floors of an H200 (its peak
    throughput, its memory bandwidth): an estimate to plan a run, not a measurement."""
    from torch.utils.flop_counter import FlopCounterMode

    world, tier = WORLDS[world_name], tier_of(world_name, tier_name)
    model = source(world.standard, world)
    activations = []  # each leaf module's output: written once and read once per pass
    hooks = [module.register_forward_hook(lambda _m, _i, out: activations.append(out.numel()))
             for module in model.modules() if not list(module.children())]
    try:
        with FlopCounterMode(display=False) as counter:
            model.logits(torch.zeros(1, *model.input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    forward = counter.get_total_flops()
    bytes_per_image_step = 3 * 2 * 2 * sum(activations)  # forward + backward, write + read, two bytes in bfloat16
    built = [stage for stage in tier.stages if stage not in PLAIN]
    relabelled = [stage for stage in built if base_kind(stage) in RELABELLED]
    passes = {f"{' + '.join(relabelled)} (targeted PGD)": sum(map(tier.relabelled_n_of, relabelled)) * tier.pgd_steps,
              "d_r + d_nr (representation matching, at most)": sum(
                  tier.matched_n_of(stage) for stage in built if stage in MATCHED) * tier.matched_steps,
              f"training {len(tier.stages)} networks": (sum(map(tier.relabelled_n_of, relabelled))
                                                        + ("d" in tier.stages) * tier.relabelled_n
                                                        + sum(tier.matched_n_of(stage) for stage in tier.stages
                                                              if stage in (*MATCHED, "d_small"))
                                                        # its ladder: N/8 + N/4 + N/2 + N at most
                                                        + (2 * tier.matched_n_of("d_nr") if ACCURACY_MATCHED
                                                           in tier.stages else 0)) * tier.epochs,
              "transfer study (2 networks per architecture and seed)":
                  2 * len(tier.transfer_architectures) * len(tier.transfer_seeds) * tier.transfer_n
                  * tier.transfer_training_epochs}
    total = 3 * forward * sum(passes.values())  # forward + backward
    moved = bytes_per_image_step * sum(passes.values())
    return {"world": world_name, "tier": tier_name, "forward_flops_per_image": forward,
            "activation_bytes_per_image_step": bytes_per_image_step,
            "image_steps": passes, "total_pflop": round(total / 1e15, 2), "activation_terabytes": round(moved / 1e12),
            "minutes_at_sustained_tflops": {rate: round(total / (rate * 1e12) / 60, 1) for rate in (50, 100, 200)},
            "h200_floor_minutes": {"peak bfloat16 throughput": round(total / H200_PEAK_BF16_FLOPS / 60, 2),
                                   "memory bandwidth": round(moved / H200_MEMORY_BYTES_PER_SECOND / 60, 2)}}


def _save_json(path: Path, payload: dict) -> None:
    partial = path.with_suffix(f".partial-{os.getpid()}")  # two processes writing one file never share the scratch
    partial.write_text(json.dumps(payload, indent=1, default=list) + "\n")
    partial.replace(path)


def run(world_name: str, tier_name: str, work: Path, only: tuple[str, ...],
        seeds: Optional[tuple[int, ...]] = None) -> None:
    """Each stage of `only` not yet done: build its set (resuming), train a fresh network on it (resuming), score it;
    the transfer study at each of `seeds` (default: the tier's)."""
    world, tier = WORLDS[world_name], tier_of(world_name, tier_name)
    standard = source(world.standard, world)
    train, test = splits(world, standard, tier.test_n)
    log(f"{world_name}/{tier_name}: {len(train)} training images, {len(test)} test images, device {standard.device}")
    shard, shared_build = current_shard(), {}
    if shard.is_distributed:
        # under torchrun the processes share the builds by whole batches; then the group ends, because training and
        # scoring are not sharded (their evaluation would gather across it), and rank 0 runs them on the saved sets
        for kind in only:
            if kind in PLAIN or kind == TRANSFER or (work / "results" / f"{kind}.json").is_file():
                continue
            started = time.perf_counter()
            with _mixed_precision(standard.device):
                _build(kind, world, tier, work, standard, train)
            shared_build[kind] = {"build": round(time.perf_counter() - started, 1),
                                  "build_processes": shard.world_size}
        shutdown()
        if not shard.is_main:
            return
    for kind in only:
        with _mixed_precision(standard.device):
            if kind == TRANSFER:
                for seed in seeds or tier.transfer_seeds:
                    _run_transfer(world_name, world, tier, work, standard, train, test, seed)
            else:
                _run_stage(kind, world_name, tier_name, world, tier, work, standard, train, test,
                           shared_build.get(kind))


def build_only(world_name: str, tier_name: str, work: Path, only: tuple[str, ...]) -> None:
    """The constructed sets of `only` (resuming; the plain stages and the transfer study have none), not trained on:
    under torchrun the processes share each build by whole batches, as in `run`."""
    world, tier = WORLDS[world_name], tier_of(world_name, tier_name)
    standard = source(world.standard, world)
    train, _ = splits(world, standard, test_n=1)
    for kind in only:
        if kind in PLAIN or kind == TRANSFER:
            continue
        started = time.perf_counter()
        with _mixed_precision(standard.device):
            built, _ = _build(kind, world, tier, work, standard, train)
        if current_shard().is_main:
            log(f"{kind}: {len(built)} images in {work / 'sets'} ({time.perf_counter() - started:.0f} s), "
                f"{built.metric}")


def _mixed_precision(device: torch.device):
    """bfloat16 autocast on CUDA (no loss scaling needed), plain float32 elsewhere: the same code on both."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def _build(kind: str, world: World, tier: Tier, work: Path, standard: ClassifierWrapper, train: ImageDataset
           ) -> tuple[ConstructedSet, Optional[dict]]:
    """A stage's constructed set (resuming its saved batches) and, for D̂_R / D̂_NR, the error curve that set its
    steps."""
    model = source(world.robust, world) if _robust_source(kind) else standard
    curve = _error_curve(work, kind, model, train, world, tier) if kind in MATCHED else None
    config = construction(kind, world, tier, curve and curve["steps_used"])
    built = build_constructed_set(model, train, config, out=work / "sets" / f"{kind}.npz",
                                  progress=lambda done, total, info: log(f"{kind}: batch {done}/{total}"))
    return built, curve


def _run_stage(kind: str, world_name: str, tier_name: str, world: World, tier: Tier, work: Path,
               standard: ClassifierWrapper, train: ImageDataset, test: ImageDataset,
               shared_build: Optional[dict] = None) -> None:
    result_path = work / "results" / f"{kind}.json"
    if result_path.is_file():
        stored = json.loads(result_path.read_text()).get("construction")
        if base_kind(kind) in RELABELLED and stored != _as_json(construction(kind, world, tier)):
            # a set built by other settings (an older construction, say) must not pass for this one
            raise SystemExit(f"{result_path} was built by another construction ({stored}); move it, with "
                             f"sets/{kind}.npz and checkpoints/{kind}.pt, out of {work} to rebuild the stage.")
        log(f"{kind}: done ({result_path})")
        return
    started = time.perf_counter()
    build_seconds, metric, curve, by_class = 0.0, {}, None, None
    checkpoint = work / "checkpoints" / f"{kind}.pt"
    if kind in PLAIN:
        # original images in the relabelled sets' seeded order: as many as they keep (d), or as D̂_R holds (d_small),
        # or the fewest that reach D̂_NR's clean accuracy (d_matched_nr)
        order = build_plan(train, construction("d_det", world, tier)).order
        if kind == ACCURACY_MATCHED:
            found = _accuracy_matched_n(world_name, tier_name, world, tier, work, train.subset(order), test)
            if found is None:
                return
            n_d, metric = found
            checkpoint = work / "checkpoints" / f"{kind}-{n_d}.pt"  # the ladder's run: already trained
        else:
            n_d = (_kept_or(work, "d_det", default=len(order)) if kind == "d" else
                   min(tier.matched_n_of("d_small"), len(order)))
        dataset = train.subset(order[:n_d])
    else:
        built, curve = _build(kind, world, tier, work, standard, train)
        build_seconds = time.perf_counter() - started
        metric = dict(built.metric)
        dataset = built.as_dataset()
        by_class = _success_by_class(kind, built, train)
        log(f"{kind}: built {len(built)} in {build_seconds:.0f} s, {metric}")
    trained_at = time.perf_counter()
    config = training_config(kind, world, tier)
    trained_kind = "d" if kind in PLAIN else base_kind(kind)  # plain training on original images is the engine's "d"
    from sia_core.features.training import train_on_constructed

    model, result = train_on_constructed(
        dataset, test, dataclasses.replace(config, eval_n=tier.eval_n), kind=trained_kind,
        checkpoint=checkpoint, model_id=f"{world_name}-trained-on-{kind}",
        progress=lambda epoch, total, info: log(f"{kind}: epoch {epoch}/{total} {info}"))
    extra = {}
    for eps in world.eval_eps_l2[1:]:
        extra[f"{eps:g}"] = score_on_test(model, test, dataclasses.replace(config, eval_eps_l2=eps), kind=trained_kind,
                                          n_train=len(dataset))
    _save_weights(model, work / "weights" / f"{kind}.safetensors")
    _save_json(result_path, {"kind": kind, "world": world_name, "tier": tier_name, "device": str(standard.device),
                             "source": None if kind in PLAIN else (world.robust if _robust_source(kind) else
                                                                   world.standard),
                             "construction": None if kind in PLAIN else dataclasses.asdict(
                                 construction(kind, world, tier, curve and curve["steps_used"])),
                             "training": dataclasses.asdict(config), "metric": metric, "curve": curve,
                             "success_by_class": by_class,
                             "result": dataclasses.asdict(result),
                             "extra": {eps: dataclasses.asdict(r) for eps, r in extra.items()},
                             "seconds": {"build": round(build_seconds, 1),
                                         "train": round(time.perf_counter() - trained_at, 1),
                                         **(shared_build or {})}})
    log(f"{kind}: test accuracy {result.test_accuracy:.4f} {result.test_accuracy_ci95}, robust "
        f"{result.robust_accuracy:.4f}; {time.perf_counter() - started:.0f} s")


def _accuracy_matched_n(world_name: str, tier_name: str, world: World, tier: Tier, work: Path,
                        ordered: ImageDataset, test: ImageDataset) -> Optional[tuple[int, dict]]:
    """The first N of N/8, N/4, N/2, N (N: D̂_NR's images) whose plain model, trained on the first N of `ordered`,
    reaches D̂_NR's clean test accuracy (else N), and the ladder as the stage's metric; None until D̂_NR is scored."""
    goal = _finished_test_accuracy(world_name, tier_name, work, "d_nr")
    if goal is None:
        log(f"{ACCURACY_MATCHED}: skipped until d_nr is scored (its clean accuracy is the one to match)")
        return None
    top = min(tier.matched_n_of("d_nr"), len(ordered))
    ladder = sorted({max(1, top >> shift) for shift in (3, 2, 1, 0)})
    parts = work / "results" / f"{ACCURACY_MATCHED}-parts"
    parts.mkdir(parents=True, exist_ok=True)
    config = training_config("d", world, tier)
    tried = []
    from sia_core.evaluation import evaluate
    from sia_core.training import train as train_model

    for n in ladder:
        part = parts / f"{n}.json"
        if not part.is_file():
            model = fresh_model(f"{world_name}-trained-on-{n}-original-images", config.architecture, test,
                                seed=config.seed)
            train_model(model, ordered.subset(slice(0, n)), config.train_config(),
                        checkpoint=work / "checkpoints" / f"{ACCURACY_MATCHED}-{n}.pt",
                        progress=lambda epoch, total, info: log(f"{ACCURACY_MATCHED}: {n} images, epoch {epoch}/"
                                                                f"{total}"))
            _save_json(part, {"n": n, "test_accuracy": evaluate(model, test).clean_accuracy})
        tried.append(json.loads(part.read_text()))
        log(f"{ACCURACY_MATCHED}: {n} images reach {tried[-1]['test_accuracy']:.4f} (D̂_NR: {goal:.4f})")
        if tried[-1]["test_accuracy"] >= goal:
            break
    return tried[-1]["n"], {"matched_to": "d_nr", "matched_test_accuracy": goal, "ladder": tried}


def _finished_test_accuracy(world_name: str, tier_name: str, work: Path, kind: str) -> Optional[float]:
    """A scored stage's clean test accuracy: from this work folder, else from the row the study file keeps for it at
    this tier (a stage finished in another work folder)."""
    path = work / "results" / f"{kind}.json"
    if path.is_file():
        return json.loads(path.read_text())["result"]["test_accuracy"]
    study_file = WORLDS[world_name].study_file
    study = PRECOMPUTED / study_file if study_file else None
    features = json.loads(study.read_text()).get("features") if study is not None and study.is_file() else None
    row = _rows_of_tier(features, tier_name).get(kind)
    return row["test_accuracy"] if row else None


def _rows_of_tier(features: Optional[dict], tier_name: str) -> dict[str, dict]:
    """A study file's `features` rows by set, when they were written at `tier_name` (else none)."""
    features = features if isinstance(features, dict) else {}
    return {row["set"]: row for row in features.get("rows", [])} if features.get("tier") == tier_name else {}


def _as_json(config) -> dict:
    """A config as a result file stores it (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=list))


def _robust_source(stage: str) -> bool:
    return stage == "d_r" or stage in ROBUST_SOURCE


def _success_by_class(kind: str, built: ConstructedSet, train: ImageDataset) -> Optional[list[dict]]:
    """A relabelled set's targeted success per true class (None for the other kinds, and for a set that kept every
    attempt but was saved before its flags were): where the source's attack at the set's radius falls short."""
    if base_kind(kind) not in RELABELLED:
        return None
    try:
        return [row.to_dict() for row in targeted_success_by_class(train, built)]
    except DataError as error:
        log(f"{kind}: no success per class ({error})")
        return None


def backfill_success_by_class(world_name: str, work: Path, kept_rows: Optional[dict[str, dict]] = None) -> list[str]:
    """Results of relabelled stages written before they carried `success_by_class` (and `kept_rows`, rows a study
    file keeps for stages finished in another work folder), completed from their sets saved in `work` when the saved
    set is the one the row was trained on (same construction, source and outcome): the construction's plan says
    which attempts a set lacks. Returns the stages it completed."""
    world, done, loaded = WORLDS[world_name], [], {}

    def from_saved_set(kind: str, row: dict) -> Optional[list[dict]]:
        set_path = work / "sets" / f"{kind}.npz"
        if base_kind(kind) not in RELABELLED or not set_path.is_file():
            return None
        built = ConstructedSet.load(set_path)
        if (dataclasses.asdict(built.config), built.source_model, built.metric) != (
                row.get("construction"), row.get("source"), row.get("metric")):
            log(f"{kind}: its saved set is not the one its row was trained on (construction, source or outcome "
                "differ); left without classes")
            return None
        if not loaded:
            loaded["train"] = splits(world, source(world.standard, world), test_n=1)[0]
        return _success_by_class(kind, built, loaded["train"])

    for path in sorted((work / "results").glob("*.json")):
        stage = json.loads(path.read_text())
        if stage.get("success_by_class") or (classes := from_saved_set(stage.get("kind", ""), stage)) is None:
            continue
        stage["success_by_class"] = classes
        _save_json(path, stage)
        done.append(stage["kind"])
    for kind, row in (kept_rows or {}).items():
        finished_here = (work / "results" / f"{kind}.json").is_file()  # its row is made from the result above
        if finished_here or row.get("targeted_success_by_class"):
            continue
        if (classes := from_saved_set(kind, row)) is not None:
            row["targeted_success_by_class"] = classes
            done.append(kind)
    return done


def transfer_name(seed: int) -> str:
    """The transfer study's result name at a training seed: seed 0's is the headline's, "transfer"."""
    return TRANSFER if seed == 0 else f"{TRANSFER}-seed{seed}"


def transfer_config(world: World, tier: Tier, seed: int) -> FeatureTransferConfig:
    return FeatureTransferConfig(architectures=tier.transfer_architectures, epochs=tier.transfer_training_epochs,
                                 attack_eps_l2=world.eps_l2, attack_steps=20, attack_n=tier.eval_n, seed=seed,
                                 sensitivity_eps_l2=tier.transfer_sensitivity_eps_l2)


def _run_transfer(world_name: str, world: World, tier: Tier, work: Path, standard: ClassifierWrapper,
                  train: ImageDataset, test: ImageDataset, seed: int = 0) -> None:
    """The transfer study (the paper's Figure 3) at one training seed, on the first `transfer_n` images of the finished
    D̂_det set: each architecture trained on them and, apart, on the same source images with their true labels."""
    name = transfer_name(seed)
    path, config = work / "results" / f"{name}.json", transfer_config(world, tier, seed)
    parts = work / "results" / f"{name}-parts"
    built_path = work / "sets" / "d_det.npz"
    built = ConstructedSet.load(built_path) if built_path.is_file() else None
    if built is None or not built.metric:  # only a finished build carries its metric; training on it is not needed
        log(f"{name}: skipped until the d_det set is built here (it is not finished in {work / 'sets'})")
        return
    n = min(tier.transfer_n, len(built))

    def refuse(saved: Path) -> None:
        raise SystemExit(f"{saved} was made from another source, D̂_det set or transfer settings than the tier's now; "
                         f"move it aside to run the study again (it is not reused).")

    # a tier may name one more architecture: the finished ones are reused, so the architectures do not count here
    wanted = {"config": _as_json(config), "source": standard.model_id, "n_train": n}
    done = json.loads(path.read_text()) if path.is_file() else None
    if done is not None and not made_alike(done, wanted, ignoring=("architectures",)):
        refuse(path)
    if done is not None and [point["architecture"] for point in done["points"]] == list(tier.transfer_architectures):
        log(f"{name}: done ({path})")
        return  # else the tier names an architecture more: the finished ones' parts are reused below
    for part in sorted(parts.glob("*.json")):
        if not made_alike(json.loads(part.read_text()), wanted, ignoring=("architectures",)):
            refuse(part)
    head = built.head(n)
    parts.mkdir(parents=True, exist_ok=True)
    attack = config.attack(config.attack_eps_l2).description
    missing = tuple(a for a in config.architectures if not (parts / f"{a}.json").is_file())
    if missing:
        # each architecture's point is saved as it finishes, so a stopped run resumes at the next one; the first
        # part's seconds also count making the source's examples (a minute per radius, again on each resume)
        started = time.perf_counter()

        def keep_part(_number: int, _total: int, point: dict) -> None:
            nonlocal started
            log(f"{name}: {point}")
            _save_json(parts / f"{point['architecture']}.json", {
                "point": point, "attack": attack, **wanted, "seconds": round(time.perf_counter() - started, 1)})
            started = time.perf_counter()

        transfer_study(standard, head, train, test, dataclasses.replace(config, architectures=missing),
                       progress=keep_part)
    saved = [json.loads((parts / f"{a}.json").read_text()) for a in config.architectures]
    _save_json(path, {"kind": TRANSFER, "world": world_name, "device": str(standard.device), "n_train": n,
                      "seed": seed, "source": standard.model_id, "attack": attack, "test_n": len(test),
                      "config": _as_json(config), "points": [part["point"] for part in saved],
                      "seconds": round(sum(part["seconds"] for part in saved), 1)})


def _kept_or(work: Path, kind: str, default: int) -> int:
    path = work / "sets" / f"{kind}.npz"
    if path.is_file():
        built = ConstructedSet.load(path)
        if built.metric:
            return min(len(built), default)
    return default


def _error_curve(work: Path, kind: str, model: ClassifierWrapper, train: ImageDataset, world: World,
                 tier: Tier) -> dict:
    """The representation error against steps on the first `curve_n` samples, and the steps the build uses: the
    first count after which another 100 steps lower the mean error by less than 1% of its start (at most the
    tier's steps)."""
    path = work / "results" / f"curve-{kind}.json"
    if path.is_file():
        return json.loads(path.read_text())
    started = time.perf_counter()
    steps, errors = representation_error_curve(model, train, construction(kind, world, tier), n=tier.curve_n,
                                               every=max(1, tier.matched_steps // 20))
    used = steps[-1]
    per_100 = max(1, round(100 / max(1, steps[1] - steps[0])))
    for i in range(len(steps) - per_100):
        if errors[i] - errors[i + per_100] < 0.01 * errors[0]:
            used = steps[i]
            break
    curve = {"steps": list(steps), "relative_error": [round(e, 5) for e in errors], "n": tier.curve_n,
             "steps_used": max(used, 1), "rule": "the first step count after which 100 more steps lower the mean "
             "relative error by less than 1% of its value at the start",
             "seconds": round(time.perf_counter() - started, 1)}
    if current_shard().is_main:  # under torchrun every process computes the same curve; one writes it
        _save_json(path, curve)
    log(f"{kind}: error curve {curve['relative_error'][0]:.3f} -> {curve['relative_error'][-1]:.3f}, using "
        f"{curve['steps_used']} steps")
    return curve


def _save_weights(model: ClassifierWrapper, path: Path) -> None:
    from safetensors.torch import save_file

    save_file({name: tensor.detach().to("cpu", torch.float16).contiguous()
               for name, tensor in model.network.state_dict().items() if tensor.is_floating_point()}, str(path))


def rows(world_name: str, work: Path) -> list[dict]:
    """The study's table: one row per finished stage, in the order D, D̂_det, D̂_rand, D̂_R, D̂_NR."""
    world = WORLDS[world_name]
    table = []
    for kind in STAGES:
        path = work / "results" / f"{kind}.json"
        if not path.is_file():
            continue
        stage = json.loads(path.read_text())
        result = stage["result"]
        first = f"robust_accuracy_l2_{world.eval_eps_l2[0]:g}"
        row = {"set": kind, "n_train": result["n_train"], "source": stage["source"], "metric": stage["metric"],
               "test_accuracy": result["test_accuracy"], "test_accuracy_ci95": result["test_accuracy_ci95"],
               "test_n": result["test_n"], first: result["robust_accuracy"],
               f"{first}_ci95": result["robust_accuracy_ci95"], "robust_n": result["robust_n"]}
        for eps, extra in stage["extra"].items():
            row[f"robust_accuracy_l2_{eps}"] = extra["robust_accuracy"]
            row[f"robust_accuracy_l2_{eps}_ci95"] = extra["robust_accuracy_ci95"]
        if result.get("relabelled_test_accuracy") is not None:
            row["relabelled_test_accuracy"] = result["relabelled_test_accuracy"]
            row["relabelled_test_accuracy_ci95"] = result["relabelled_test_accuracy_ci95"]
        if stage["construction"] is not None:
            row["construction"] = stage["construction"]
        if stage.get("success_by_class"):
            row["targeted_success_by_class"] = stage["success_by_class"]
        if stage["curve"] is not None:
            row["error_curve"] = {key: stage["curve"][key] for key in ("steps", "relative_error", "n", "steps_used",
                                                                      "rule")}
        row.update({"training": stage["training"], "device": stage["device"], "seconds": stage["seconds"],
                    "paper": world.paper.get(kind)})
        table.append(row)
    return table


def write(world_name: str, tier_name: str, work: Path, command: str) -> Path:
    """The finished rows under the `features` key of the world's study file (the rest of the file is kept, and so are
    the rows of the same tier whose stages did not finish in `work`)."""
    world = WORLDS[world_name]
    if world.study_file is None:
        raise SystemExit(f"The {world_name} world has no study file.")
    path = PRECOMPUTED / world.study_file
    study = json.loads(path.read_text()) if path.is_file() else {"command": command, "dataset": world.data}
    if isinstance(study.get("features"), dict) and "tier" not in study["features"]:
        study["features_page_study"] = study["features"]  # the page's small study, kept beside the headline
    before = study.get("features") if isinstance(study.get("features"), dict) else {}
    # a stage finished in another work folder (an earlier machine's, say) keeps the row this command wrote for it
    # then, as long as the tier is the same; a stage finished here replaces it
    kept = _rows_of_tier(before, tier_name)
    for kind in backfill_success_by_class(world_name, work, kept):
        log(f"{kind}: targeted success per class added from its saved set")
    fresh = {row["set"]: row for row in rows(world_name, work)}
    merged = {**kept, **fresh}
    study["features"] = {"tier": tier_name, "command": command, "created": time.strftime("%Y-%m-%d"),
                         "architecture": world.architecture, "paper_architecture": "ResNet-50",
                         "standard_source": world.standard, "robust_source": world.robust,
                         "planned": list(tier_of(world_name, tier_name).stages),
                         "rows": [merged[kind] for kind in STAGES if kind in merged]}
    if earlier := earlier_source_rows(before if before.get("tier") == tier_name else {}, kept, fresh):
        study["features"]["earlier_source_rows"] = earlier
    transfer = work / "results" / f"{TRANSFER}.json"
    if transfer.is_file():
        # seed 0's study is the headline; the other seeds' finished ones ride along, to show the training's spread
        study["features"]["transfer"] = {**json.loads(transfer.read_text()), "other_seeds": [
            json.loads(other.read_text()) for seed in tier_of(world_name, tier_name).transfer_seeds if seed != 0
            and (other := work / "results" / f"{transfer_name(seed)}.json").is_file()]}
    elif before.get("tier") == tier_name and "transfer" in before:
        study["features"]["transfer"] = before["transfer"]
    if "source_transfer" in before:  # `success --to --save`'s measurements, of sources rather than of this tier
        study["features"]["source_transfer"] = before["source_transfer"]
    control = work / "results" / f"{JPEG_CONTROL}.json"
    if control.is_file():
        study["features"][JPEG_CONTROL] = json.loads(control.read_text())
    elif before.get("tier") == tier_name and JPEG_CONTROL in before:
        study["features"][JPEG_CONTROL] = rescore_replaced_models(world_name, tier_name, work, before[JPEG_CONTROL],
                                                                  sorted(fresh))
    _save_json(path, study)
    return path


def earlier_source_rows(before: dict, kept: dict[str, dict], fresh: dict[str, dict]) -> list[dict]:
    """The rows a rebuild from another source model replaced, kept beside the new ones (with those kept before, one
    per set and source): what the source changes is itself a result, so a rebuild does not erase it."""
    earlier = {(row["set"], row["source"]): row for row in before.get("earlier_source_rows", [])}
    for kind, row in fresh.items():
        old = kept.get(kind)
        if old is not None and old.get("source") and row.get("source") and old["source"] != row["source"]:
            earlier[kind, old["source"]] = old
    # a set rebuilt from a source it had before: the row is the current one, not an earlier one
    current = {(kind, row.get("source")) for kind, row in {**kept, **fresh}.items()}
    return [row for key, row in earlier.items() if key not in current]


JPEG_CONTROL = "jpeg_control"
EXACT_CIFAR10 = Path(os.environ.get("SIA_CIFAR10_EXACT_DIR") or SHARED / "cifar10-subset")


def _exact_cifar10() -> tuple[ImageDataset, ImageDataset, np.ndarray]:
    """The exact-pixel CIFAR-10 images at hand (5,085 training, 1,017 test) and the test images' places in the JPEG
    copy's test split (which orders class by class in turns: the r-th image of class c is at r * 10 + c)."""
    from sia_core.data.cifar10 import load_cifar10_npz

    train_file, test_file = (EXACT_CIFAR10 / "cifar10_train_first1017_of_each_batch.npz",
                             EXACT_CIFAR10 / "cifar10_test_first1017.npz")
    if not (train_file.is_file() and test_file.is_file()):
        raise SystemExit(f"The JPEG control needs the exact-pixel CIFAR-10 subset in {EXACT_CIFAR10} "
                         "(set SIA_CIFAR10_EXACT_DIR).")
    train, test = load_cifar10_npz(train_file, "train"), load_cifar10_npz(test_file, "test")
    with np.load(test_file, allow_pickle=False) as archive:
        if "y_all_10000" not in archive:
            raise SystemExit(f"{test_file} has no 'y_all_10000' (the whole test set's labels), which places its "
                             "images in the JPEG copy.")
        every_label = archive["y_all_10000"]
    places = np.array([int((every_label[:i] == every_label[i]).sum()) * len(CIFAR10_CLASSES) + int(every_label[i])
                       for i in range(len(test))])
    return train, test, places


def _load_weights(model: ClassifierWrapper, path: Path) -> None:
    """Weights `_save_weights` wrote (floating tensors, float16) into `model`'s network, strictly: the batch-norm step
    counters it leaves out come from the fresh network, and any other missing or unexpected key is an error."""
    from safetensors.torch import load_file

    from sia_core.models.user_models import load_weights_into

    saved = {name: tensor.float() for name, tensor in load_file(str(path)).items()}
    fresh = {name: tensor for name, tensor in model.network.state_dict().items() if not tensor.is_floating_point()}
    load_weights_into(model.network, {**fresh, **saved}, f"{path.name}'s network")


def _rate_with_interval(key: str, flags: np.ndarray) -> dict:
    """{key: the share of true flags, key_ci95: its 95% interval over the images}."""
    from sia_core.claims import proportion_ci

    rate = float(flags.mean())
    return {key: rate, f"{key}_ci95": list(proportion_ci(rate, len(flags)))}


def _trained_models_on_exact_pixels(world_name: str, tier_name: str, work: Path, exact_test: ImageDataset,
                                    test: ImageDataset, copy: torch.Tensor,
                                    kinds: tuple[str, ...] = STAGES) -> dict[str, dict]:
    """Each trained set's model (weights/<stage>.safetensors) scored on the exact pixels of the test images at hand
    and on the JPEG copy of the same images, paired by image: does the copy, which every row is scored on, hide
    features a model learned (D̂_det's non-robust ones, say)? Each model's accuracy on the tier's whole test split
    rides along, to set beside its row's: the weights scored here are the row's model."""
    from sia_core.claims import bootstrap_ci
    from sia_core.evaluation import evaluate

    world, tier = WORLDS[world_name], tier_of(world_name, tier_name)
    tier_test = test.subset(slice(0, tier.test_n)) if tier.test_n else test
    scored = {}
    for kind in kinds:
        weights = work / "weights" / f"{kind}.safetensors"
        if not weights.is_file():
            continue
        # normalized by the tier's test split, as the stage's model was
        model = fresh_model(f"{world_name}-trained-on-{kind}", world.architecture, tier_test, seed=0)
        _load_weights(model, weights)
        model.eval()
        with torch.no_grad():
            on_exact, on_copy = ((model.logits(images.to(model.device)).argmax(1).cpu() == exact_test.labels)
                                 .double().numpy() for images in (exact_test.images, copy))
        scored[kind] = {**_rate_with_interval("exact", on_exact), **_rate_with_interval("copy", on_copy),
                        "exact_minus_copy": float((on_exact - on_copy).mean()),
                        "exact_minus_copy_ci95": list(bootstrap_ci(on_exact - on_copy)), "n": len(on_exact),
                        "whole_test_accuracy": evaluate(model, tier_test).clean_accuracy,
                        "whole_test_n": len(tier_test)}
        log(f"{JPEG_CONTROL}: {kind}'s model: {scored[kind]['exact']:.1%} on exact pixels, "
            f"{scored[kind]['copy']:.1%} on the copy")
    return scored


def rescore_replaced_models(world_name: str, tier_name: str, work: Path, control: dict, replaced: list[str]) -> dict:
    """The JPEG control `write` keeps from the study file, with the exact-pixel scores of the sets whose rows `work`
    replaces made again from their weights here: the kept scores are of the models the replaced rows had. A replaced
    set without weights here, or without the exact pixels at hand, loses its score (listed as not scored), so no
    score of one model stands beside another model's row."""
    if not replaced:
        return control
    here = tuple(kind for kind in replaced if (work / "weights" / f"{kind}.safetensors").is_file())
    rescored = {}
    if here and world_name == "cifar10" and EXACT_CIFAR10.is_dir():
        _, exact_test, places = _exact_cifar10()
        test = resolver.test_split(WORLDS[world_name].data, image_shape=(3, 32, 32))
        rescored = _trained_models_on_exact_pixels(world_name, tier_name, work, exact_test, test,
                                                   test.images[torch.from_numpy(places)], kinds=here)
    scores = {**{kind: scored for kind, scored in (control.get("test_pixels") or {}).items() if kind not in replaced},
              **rescored}
    log(f"{JPEG_CONTROL}: exact-pixel scores made again for {', '.join(rescored) or 'no set'}; "
        f"dropped for {', '.join(kind for kind in replaced if kind not in rescored) or 'no set'}")
    updated = {**control, "test_pixels": {kind: scores[kind] for kind in STAGES if kind in scores},
               "test_pixels_not_scored": [kind for kind in STAGES if kind not in scores]}
    if rescored:
        updated["test_pixels_rescored"] = {"sets": [kind for kind in STAGES if kind in rescored],
                                           "created": time.strftime("%Y-%m-%d"),
                                           "command": f"python scripts/features_at_scale.py write --world {world_name} "
                                                      f"--tier {tier_name}"}
    return updated


def jpeg_control(world_name: str, tier_name: str, work: Path, arms: Optional[str]) -> Path:
    """The JPEG control (sia_core.features.jpeg_control): the source's network trained by its recipe on the exact
    pixels of the 5,085 training images at hand and on their JPEG re-encoding, each attacked as D̂_det's construction
    attacks; each finished network is a part, with the settings it ran with (a rerun skips it under the same ones,
    and a cut-off training resumes from its epoch); the summary covers every part there is, so run the command once
    more without --arms after processes that split the arms."""
    from sia_core.features.jpeg_control import (PIXELS, JpegControlArm, JpegControlConfig, in_pixels, summarize,
                                                train_arm)

    if world_name != "cifar10":
        raise SystemExit("The JPEG control is CIFAR-10's: only its full training split is a JPEG copy.")
    # the tiny tier: the tests' (one small network per arm, a few images attacked briefly)
    config = (JpegControlConfig(architecture="tiny-cnn", epochs=1, seeds=(0,), attacked_n=20, steps=5)
              if tier_name == "tiny" else JpegControlConfig())
    settings = _as_json(config)  # as a part's JSON holds them (lists, not tuples)
    wanted = [(pixels, seed) for seed in config.seeds for pixels in PIXELS]
    if arms:
        asked = [tuple(part.strip().split(":")) for part in arms.split(",") if part.strip()]
        if not all(len(part) == 2 and part[0] in PIXELS and part[1].isdigit() for part in asked):
            raise SystemExit(f"--arms takes pixels:seed pairs, e.g. exact:0,jpeg:0 (pixels: {', '.join(PIXELS)}); "
                             f"got {arms!r}.")
        wanted = [(pixels, int(seed)) for pixels, seed in asked]
    exact_train, exact_test, places = _exact_cifar10()
    test = resolver.test_split(WORLDS[world_name].data, image_shape=(3, 32, 32))
    copy = test.images[torch.from_numpy(places)]
    # each arm's pixels, made once: the JPEG arm's test images are also what the copy is checked against
    train_in, test_in = ({pixels: in_pixels(split, pixels, config.quality) for pixels in PIXELS}
                         for split in (exact_train, exact_test))
    reencoded = test_in["jpeg"].images
    error_to_copy = float((reencoded - copy).abs().mean()) * 255
    if not bool((test.labels[torch.from_numpy(places)] == exact_test.labels).all()) or error_to_copy > 2:
        raise SystemExit(f"The exact test images do not line up with the JPEG copy's (labels differ, or the re-encoding "
                         f"is {error_to_copy:.1f}/255 from the copy): is {CIFAR10_JPEG} the whole CIFAR-10 JPEG copy?")
    parts = work / "results" / f"{JPEG_CONTROL}-parts"
    parts.mkdir(parents=True, exist_ok=True)
    (work / "checkpoints").mkdir(parents=True, exist_ok=True)

    def finished(path: Path) -> Optional[JpegControlArm]:
        """The part's network, when it ran with this tier's settings (one run with others is redone)."""
        if not path.is_file():
            return None
        part = json.loads(path.read_text())
        return JpegControlArm.from_dict(part["arm"]) if part.get("config") == settings else None

    for pixels, seed in wanted:
        part = parts / f"{pixels}-{seed}.json"
        if finished(part) is not None:
            log(f"{JPEG_CONTROL}: {pixels}, seed {seed}: done")
            continue
        log(f"{JPEG_CONTROL}: {pixels}, seed {seed}: training on {len(exact_train):,} images")
        _, arm = train_arm(pixels, seed, train_in[pixels], test_in[pixels], config,
                           checkpoint=work / "checkpoints" / f"{JPEG_CONTROL}-{pixels}-{seed}.pt",
                           progress=lambda epoch, total, info: log(f"{JPEG_CONTROL} {pixels}/{seed}: epoch "
                                                                   f"{epoch}/{total} {info}"))
        _save_json(part, {"config": settings, "arm": arm.to_dict()})
        log(f"{JPEG_CONTROL}: {pixels}, seed {seed}: " + ", ".join(
            f"ε {radius}: {arm.success(radius):.1%}" for radius in arm.reached))
    found = tuple(arm for arm in map(finished, sorted(parts.glob("*.json"))) if arm is not None)
    report = summarize(config, found, source=f"{exact_train.source} and {exact_test.source} (exact pixels)",
                       reencoding_error_to_copy=round(error_to_copy, 2),
                       reencoding_error_to_exact=round(float((reencoded - exact_test.images).abs().mean()) * 255, 2))
    test_pixels = _trained_models_on_exact_pixels(world_name, tier_name, work, exact_test, test, copy)
    not_scored = [kind for kind in STAGES if kind not in test_pixels]
    path = work / "results" / f"{JPEG_CONTROL}.json"
    command = f"python scripts/features_at_scale.py jpeg-control --world {world_name} --tier {tier_name}"
    _save_json(path, {**report.to_dict(), "test_pixels": test_pixels, "test_pixels_not_scored": not_scored,
                      "command": command})
    return path


def export(work: Path, out: Path) -> list[Path]:
    """A work folder's results (one JSON) and weights (one tar) in `out`: what comes back from a GPU machine, which
    returns few, small files (the sets themselves stay there)."""
    import tarfile

    out.mkdir(parents=True, exist_ok=True)
    bundle = {path.stem: json.loads(path.read_text()) for path in sorted((work / "results").glob("*.json"))}
    results = out / "features-results.json"
    _save_json(results, bundle)
    weights = out / "features-weights.tar"
    with tarfile.open(weights, "w") as archive:
        for path in sorted((work / "weights").glob("*.safetensors")):
            archive.add(path, arcname=path.name)
    return [results, weights]


def import_export(source: Path, work: Path) -> None:
    """Unpack `export`'s two files into a work folder, so `write` makes the rows from them."""
    import tarfile

    for name, stage in json.loads((source / "features-results.json").read_text()).items():
        _save_json(work / "results" / f"{name}.json", stage)
    weights = source / "features-weights.tar"
    if weights.is_file():
        with tarfile.open(weights) as archive:
            archive.extractall(work / "weights", filter="data")


def main(argv: Optional[list[str]] = None) -> None:
    keep_freed_memory_for_reuse()  # fewer page faults per training and attack step
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("plan", "estimate", "run", "build", "write", "export", "import",
                                           "jpeg-control", "success"),
                        help="build: only the constructed sets of --only (resuming), no training: e.g. to save again "
                             "the set of a stage finished on another machine, so `write` counts its success per class")
    parser.add_argument("--out", help="export: the folder for the two files; import: the folder holding them")
    parser.add_argument("--world", choices=tuple(WORLDS), default="cifar10")
    parser.add_argument("--tier", choices=tuple(TIERS), default="cpu")
    parser.add_argument("--work", help="the folder of the stages (default: $SIA_EXPLORER_HOME/features-WORLD-TIER)")
    parser.add_argument("--only", help=f"stages, comma-separated, from {', '.join((*STAGES, TRANSFER))} (default: "
                                       "the tier's stages, then the transfer study)")
    parser.add_argument("--n", type=int, default=200, help="plan, success: images measured")
    parser.add_argument("--source", help="success: the source model (a shipped id or a model folder; default: the "
                                         "world's standard model)")
    parser.add_argument("--to", help="success: also show the attack's images to this model (a stage whose weights "
                                     "--work holds, e.g. d, or a shipped id or model folder): targeted transfer")
    parser.add_argument("--save", action="store_true",
                        help="success --to: record the measurement in the world's study file "
                             "(features.source_transfer)")
    parser.add_argument("--split", choices=("train", "test"), default="train",
                        help="success: the images attacked (test: ones the source never trained on)")
    parser.add_argument("--seeds", help="run: the transfer study's training seeds to run here, e.g. 1 (default: the "
                                        "tier's; seed 0's is the headline)")
    parser.add_argument("--arms", help="jpeg-control: the networks to train here, e.g. exact:0,jpeg:0 (default: "
                                       "both arms at every seed; the summary covers every finished one)")
    args = parser.parse_args(argv)
    if args.action == "plan":
        plan(args.world, args.n)
        return
    if args.action == "success":
        measured = source_success(args.world, args.n, args.source, args.split, Path(args.work) if args.work else None,
                                  args.to)
        print(json.dumps(measured))
        if args.save:
            command = " ".join(["python scripts/features_at_scale.py", *(argv if argv is not None else sys.argv[1:])])
            print(record_source_transfer(args.world, measured, command))
        return
    if args.action == "estimate":
        print(json.dumps(estimate(args.world, args.tier), indent=1))
        return
    work = work_dir(args.world, args.tier, args.work)
    if args.action == "export":
        print("\n".join(str(path) for path in export(work, Path(args.out or "."))))
        return
    if args.action == "jpeg-control":
        print(jpeg_control(args.world, args.tier, work, args.arms))
        return
    if args.action == "import":
        import_export(Path(args.out or "."), work)
        return
    if args.action in ("run", "build"):
        only = (tuple(stage.strip() for stage in args.only.split(",") if stage.strip()) if args.only else
                (*tier_of(args.world, args.tier).stages, TRANSFER))
        unknown = sorted(set(only) - {*STAGES, TRANSFER})
        if unknown:
            raise SystemExit(f"Unknown stages {unknown}; choose from {', '.join((*STAGES, TRANSFER))}.")
        # under torchrun (gloo on CPU) the processes share each set's build by whole batches; the rest runs on rank 0
        init_from_environment()
        try:
            if args.action == "build":
                build_only(args.world, args.tier, work, only)
            else:
                run(args.world, args.tier, work, only,
                    tuple(int(seed) for seed in args.seeds.split(",")) if args.seeds else None)
        finally:
            shutdown()
    else:
        print(write(args.world, args.tier, work, f"python scripts/features_at_scale.py run --world {args.world} "
                                                  f"--tier {args.tier}"))


if __name__ == "__main__":
    main()
