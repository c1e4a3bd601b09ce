"""Free scores from one forward pass (Ngnawé et al. 2024): logit, probability, true-class and feature margins, and
the top probability, each a stand-in for the expensive input margin."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sia_core.models.wrapper import ClassifierWrapper, frozen_eval
from sia_core.numerics import TINY
from sia_core.scaling import batch_size_for


@dataclass(frozen=True)
class MarginScores:
    """Scores from one forward pass, each (N,) on the CPU (Ngnawé et al. 2024)."""

    logit_margin: torch.Tensor        # top-1 minus top-2 logit
    probability_margin: torch.Tensor  # top-1 minus top-2 softmax probability
    max_probability: torch.Tensor
    true_class_margin: torch.Tensor   # logit of the label minus the best other logit (negative when wrong)
    feature_margin: torch.Tensor      # |z1 - z2| / ||w1 - w2||_1 over the top-2 classes: the L∞ distance in feature space
    predictions: torch.Tensor


def margin_scores(model: ClassifierWrapper, images: torch.Tensor, labels: torch.Tensor,
                  batch_size: int = 512) -> MarginScores:
    """All the free scores, batched (at most `batch_size_for` images), in one forward pass per batch."""
    batch_size = batch_size_for(images.shape, batch_size)
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
                          ((top.values[:, 0] - top.values[:, 1]) / w_gap.clamp_min(TINY)).cpu(),
                          top.indices[:, 0].cpu()))
    columns = [torch.cat(column) for column in zip(*parts)] if parts else [torch.empty(0)] * 6
    return MarginScores(*columns)
