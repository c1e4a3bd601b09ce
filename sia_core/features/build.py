"""Building a constructed set (Ilyas et al. 2019) from a source model and its training split.

D_rand / D_det: targeted L2 PGD from each image to a random other class / to (y + 1) mod C, relabelled with the target.
D_R / D_NR: from a random other image, match a robust / standard model's penultimate representation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from sia_core.attacks.pgd import PGD, projected_gradient_ascent
from sia_core.data.base import ImageDataset
from sia_core.distributed import current_shard, map_batches
from sia_core.errors import DataError
from sia_core.features.constructed import KINDS, ConstructedSet, ConstructionConfig, relabel_targets
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval
from sia_core.numerics import TINY
from sia_core.progress import ProgressCallback
from sia_core.scaling import batch_size_for, budget_for
from sia_core.validation import positive_int, require

CHECKPOINT_EVERY_BATCHES = 8


def representation_error(model: ClassifierWrapper, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N,) ||g(images) - targets|| / ||targets|| with g the penultimate representation."""
    size = batch_size_for(images.shape, max(len(images), 1))
    with frozen_eval(model), torch.no_grad():
        features = torch.cat([model.features(images[i:i + size].to(model.device)).cpu()
                              for i in range(0, len(images), size)] or [targets[:0]])
    return (features - targets).norm(dim=1) / targets.norm(dim=1).clamp_min(TINY)


def match_representation(model: ClassifierWrapper, start: torch.Tensor, targets: torch.Tensor, *, steps: int,
                         step_size: float) -> torch.Tensor:
    """Normalized gradient descent on ||g(z) - target|| / ||target|| from `start`, unbounded but clipped to
    [0, 1] each step: the projected-gradient core with no radius, descending the error."""
    targets = targets.to(model.device)
    scale = targets.norm(dim=1).clamp_min(TINY)

    def objective(images: torch.Tensor) -> torch.Tensor:
        return -((model.features(images) - targets).norm(dim=1) / scale).sum()

    with frozen_eval(model):
        matched = projected_gradient_ascent(start.to(model.device), objective, norm="l2", steps=steps,
                                            step_size=step_size, radius=None)
    return matched.cpu()


@dataclass(frozen=True)
class BuildPlan:
    """Which training images a construction uses: `order` (the source images: label or representation), `starts`
    (where each search begins) and `targets` (the labels the set teaches)."""

    order: torch.Tensor
    starts: torch.Tensor
    targets: torch.Tensor


def build_plan(train_set: ImageDataset, config: ConstructionConfig) -> BuildPlan:
    """The seeded draw of `config`: the first `config.n` images of a permutation of the training split."""
    relabelled = KINDS[config.kind].traits["relabel"] is not None
    n = min(config.n, len(train_set))
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(config.seed))[:n]
    if relabelled:
        starts = order
    else:
        # a random *other* image to start from, independent of the label (derangement by a shifted permutation)
        starts = order[(torch.arange(n) + 1 + torch.randint(n - 1, (1,), generator=torch.Generator().manual_seed(
            config.seed + 1))) % n] if n > 1 else order
    targets = (relabel_targets(train_set.labels[order], config.kind, train_set.num_classes, config.seed)
               if relabelled else train_set.labels[order])
    return BuildPlan(order=order, starts=starts, targets=targets)


def build_constructed_set(model: ClassifierWrapper, train_set: ImageDataset, config: ConstructionConfig, *,
                          out: Optional[str | Path] = None, resume: bool = True,
                          progress: Optional[ProgressCallback] = None) -> ConstructedSet:
    """Build `config.n` samples batch by batch; with `out`, each finished batch is saved so a rerun resumes."""
    relabelled = KINDS[config.kind].traits["relabel"] is not None
    plan = build_plan(train_set, config)
    n, order, starts, targets = len(plan.order), plan.order, plan.starts, plan.targets
    done_images: list[torch.Tensor] = []
    if out is not None and resume and Path(out).is_file():
        previous = ConstructedSet.load(out)
        if previous.config == config and previous.source_model == model.model_id:
            if previous.metric:  # only the final save carries the metric: the set is complete
                return previous
            done_images = [previous.images]
    start = sum(len(part) for part in done_images)
    batch_size = batch_size_for(train_set.image_shape, config.batch_size, budget_elements=budget_for(model.device))
    batches = -(-n // batch_size)

    def built(positions: torch.Tensor) -> tuple[torch.Tensor]:
        """The constructed images of the samples at `positions` (one batch of the one-process run)."""
        index = order[positions]
        if relabelled:
            attack = PGD(eps=config.eps_l2, norm="l2", steps=config.steps, step_size=config.step_size, random_start=False)
            with frozen_eval(model):
                return (attack.perturb(model, train_set.images[index].to(model.device),
                                       train_set.labels[index].to(model.device),
                                       target=targets[positions].to(model.device)).cpu(),)
        with frozen_eval(model), torch.no_grad():
            goal = model.features(train_set.images[index].to(model.device))
        return (match_representation(model, train_set.images[starts[positions]], goal, steps=config.steps,
                                     step_size=config.step_size),)

    # Rounds of one batch per process (one process: one batch a round); under torchrun each process builds its
    # batch of the round and every process gets the round's images in order (sia_core.distributed)
    shard = current_shard()
    round_size = batch_size * shard.world_size
    saved_at = start // batch_size // CHECKPOINT_EVERY_BATCHES
    for round_start in range(start, n, round_size):
        round_n = min(round_size, n - round_start)
        done_images.append(map_batches(lambda local: built(round_start + local), round_n, batch_size)[0])
        batch_number = -(-(round_start + round_n) // batch_size)
        # checkpoint every few batches: re-saving the whole growing set after each one is quadratic work
        if out is not None and shard.is_main and batch_number // CHECKPOINT_EVERY_BATCHES > saved_at:
            saved_at = batch_number // CHECKPOINT_EVERY_BATCHES
            _assemble(model, train_set, config, torch.cat(done_images), order, starts, targets).save(out)
        if progress is not None:
            progress(batch_number, batches, {"built": sum(len(part) for part in done_images)})
    final = _assemble(model, train_set, config, torch.cat(done_images) if done_images else
                      torch.empty(0, *train_set.image_shape), order, starts, targets, final=True)
    if out is not None and shard.is_main:
        final.save(out)  # with its metric, which the partial saves do not compute
    return final


def _assemble(model: ClassifierWrapper, train_set: ImageDataset, config: ConstructionConfig, images: torch.Tensor,
              order: torch.Tensor, starts: torch.Tensor, targets: torch.Tensor, final: bool = False) -> ConstructedSet:
    count = len(images)
    index = order[:count]
    starts, targets = starts[:count], targets[:count]
    metric: dict[str, float] = {}
    reached_flags = None
    if count and final:
        if KINDS[config.kind].traits["relabel"] is not None:
            reached = model.logits(images, batch_size=batch_size_for(images.shape, 512)).argmax(1) == targets
            metric["targeted_success_rate"] = float(reached.float().mean())
            if config.keep == "successful":
                images, index, starts, targets = images[reached], index[reached], starts[reached], targets[reached]
                metric["kept"] = float(reached.sum())
            else:
                reached_flags = reached.cpu()  # which images the rate counted: the per-class count reads these
        else:
            size = batch_size_for(images.shape, 512)
            with frozen_eval(model), torch.no_grad():
                goal = torch.cat([model.features(train_set.images[index[i:i + size]].to(model.device)).cpu()
                                  for i in range(0, count, size)])
            before = representation_error(model, train_set.images[starts], goal)
            after = representation_error(model, images, goal)
            metric["relative_representation_error"] = float(after.mean())
            metric["relative_representation_error_at_start"] = float(before.mean())
    return ConstructedSet(config=config, source_model=model.model_id, images=images, labels=targets.clone(),
                          original_labels=train_set.labels[index].clone(), source_indices=index.clone(),
                          start_indices=starts.clone(), class_names=train_set.class_names, metric=metric,
                          reached=reached_flags)


@dataclass(frozen=True)
class ClassSuccess:
    """A relabelled construction's targeted success on the attempts from one true class: where the source model's
    targeted attack falls short, and so which images the set lacks."""

    source_class: str
    target_class: Optional[str]  # the target of every attempt from this class (D̂_det: (y + 1) mod C), else None
    attempts: int
    reached: int

    @property
    def rate(self) -> float:
        return self.reached / self.attempts if self.attempts else float("nan")

    def to_dict(self) -> dict:
        from sia_core.claims import proportion_ci

        return {"source_class": self.source_class, "target_class": self.target_class, "attempts": self.attempts,
                "reached": self.reached, "rate": round(self.rate, 4) if self.attempts else None,
                "rate_ci95": [round(bound, 4) for bound in proportion_ci(self.rate, self.attempts)]
                if self.attempts else None}


def targeted_success_by_class(train_set: ImageDataset, built: ConstructedSet) -> tuple[ClassSuccess, ...]:
    """Per true class, the attempts of a finished relabelled construction and how many reached their target. The
    attempts are the construction's seeded plan on `train_set` (the split it was built from); a set that kept only
    its successful images holds exactly those that reached, a set that kept all carries its `reached` flags (measured
    with its success rate, so the two always agree)."""
    require(KINDS[built.config.kind].traits["relabel"] is not None,
            f"{built.label} is not a relabelled set: it has no targeted success.")
    require(bool(built.metric), f"The {built.label} set's build has not finished (a partial save keeps every attempt).")
    plan = build_plan(train_set, built.config)
    mismatch = DataError(f"The {built.label} set does not match its construction's plan on {train_set.name}: it was "
                         "built from another training split or with other targets.")
    if built.config.keep == "successful":
        position = {int(index): i for i, index in enumerate(plan.order)}
        placed = [position.get(int(index)) for index in built.source_indices]
        if None in placed or not torch.equal(plan.targets[placed], built.labels):
            raise mismatch
        hit = torch.zeros(len(plan.order), dtype=torch.bool)
        hit[placed] = True
    else:
        if not (torch.equal(built.source_indices, plan.order) and torch.equal(built.labels, plan.targets)):
            raise mismatch
        if built.reached is None:
            raise DataError(f"The {built.label} set kept every attempt but was saved without the flags of those that "
                            "reached their target (sets built before they were recorded): build it again.")
        hit = built.reached
    true = train_set.labels[plan.order]
    names, deterministic = train_set.class_names, built.config.kind == "d_det"
    # D̂_det sends every image of class y to (y + 1) mod C; D̂_rand's targets are random, whatever a few draws share
    return tuple(ClassSuccess(source_class=name,
                              target_class=names[(label + 1) % len(names)] if deterministic else None,
                              attempts=int((true == label).sum()), reached=int(hit[true == label].sum()))
                 for label, name in enumerate(names))


def representation_error_curve(model: ClassifierWrapper, train_set: ImageDataset, config: ConstructionConfig, *,
                               n: int = 200, every: int = 50) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The mean relative representation error of a D̂_R / D̂_NR construction after 0, every, 2·every, ... up to
    `config.steps` steps, on its first `n` samples: where it stops falling, more steps buy nothing. Normalized
    gradient steps carry no state, so running the segments one after another equals one run of all the steps."""
    require(KINDS[config.kind].traits["relabel"] is None, "The error curve is for d_r / d_nr.")
    positive_int("every", every)
    sample = build_plan(train_set, dataclasses.replace(config, n=min(n, len(train_set))))
    with frozen_eval(model), torch.no_grad():
        goal = model.features(train_set.images[sample.order].to(model.device)).cpu()
    images = train_set.images[sample.starts]
    steps_done, errors = [0], [float(representation_error(model, images, goal).mean())]
    while steps_done[-1] < config.steps:
        segment = min(every, config.steps - steps_done[-1])
        images = match_representation(model, images, goal, steps=segment, step_size=config.step_size)
        steps_done.append(steps_done[-1] + segment)
        errors.append(float(representation_error(model, images, goal).mean()))
    return tuple(steps_done), tuple(errors)
