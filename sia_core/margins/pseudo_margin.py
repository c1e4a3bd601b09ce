"""The pseudo-margin (Ngnawé et al. 2024): for weakly consistent models, a small network learns √(input margin) from
the logits or the penultimate features, and ranks inputs in place of the logit margin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, get_args

import torch
import torch.nn.functional as F

from sia_core.data.base import ImageDataset
from sia_core.margins.metrics import consistency, detection_metrics
from sia_core.models.architectures import reinitialize
from sia_core.models.wrapper import ClassifierWrapper, frozen_eval
from sia_core.numerics import TINY
from sia_core.scaling import batch_size_for
from sia_core.validation import one_of, positive, positive_int

PseudoInput = Literal["logits", "features"]
PSEUDO_INPUTS: tuple[PseudoInput, ...] = get_args(PseudoInput)
FIT_SPLIT_SEED = 1380  # the paper's code draws its held-out training images with this seed


def pseudo_margin_network(in_features: int, generator: torch.Generator) -> torch.nn.Sequential:
    """The paper's CNET: Linear(in, 512) -> Linear(512, 512) -> ReLU -> Linear(512, 512) -> ReLU -> Linear(512, 1) -> sigmoid.
    (No ReLU after the first layer: a quirk of the released code, kept.) Initialized as nn.Linear initializes itself,
    but from `generator`: seeding the global generator would reseed every other session of the server."""
    def linear(fan_in: int, fan_out: int) -> torch.nn.Linear:
        return torch.nn.utils.skip_init(torch.nn.Linear, fan_in, fan_out)  # draws nothing from the global generator

    network = torch.nn.Sequential(linear(in_features, 512), linear(512, 512), torch.nn.ReLU(), linear(512, 512),
                                  torch.nn.ReLU(), linear(512, 1), torch.nn.Sigmoid())
    return reinitialize(network, generator)  # layer by layer, weight then bias: the draws of nn.Linear's own init


def model_inputs_for_pseudo_margin(model: ClassifierWrapper, images: torch.Tensor, source: PseudoInput,
                                   batch_size: int = 512) -> torch.Tensor:
    """(N, D) logits or penultimate features of `images`, on the CPU."""
    one_of("source", source, PSEUDO_INPUTS)
    batch_size = batch_size_for(images.shape, batch_size)
    with frozen_eval(model), torch.inference_mode():
        parts = [(model(x) if source == "logits" else model.features(x)).cpu()
                 for x in (images[i:i + batch_size].to(model.device) for i in range(0, len(images), batch_size))]
    return torch.cat(parts)


def pseudo_margin_fit_images(train_set: Optional[ImageDataset], count: int, test_images: torch.Tensor,
                             skip: int) -> tuple[torch.Tensor, str]:
    """Images to learn the pseudo-margin on, and where they came from: a random part of the training split
    (seed 1380, as in the paper's code) when there is one, else the test images after the first `skip`
    (disjoint from those)."""
    positive_int("count", count)
    if train_set is None:
        return test_images[skip:skip + count], f"test images {skip}..{skip + count - 1} (no training split here)"
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(FIT_SPLIT_SEED))
    return train_set.images[order[:count]], f"{count} random images of {train_set.name}"


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
    positive_int("epochs", epochs)
    positive("learning_rate", learning_rate)
    mean, std = fit_inputs.mean(0), fit_inputs.std(0).clamp_min(1e-6)  # standardize: logits vary in scale
    scale = float(fit_margins.sqrt().max().clamp_min(TINY))  # sigmoid output: targets in [0, 1]
    target = (fit_margins.sqrt() / scale).unsqueeze(1)
    inputs = (fit_inputs - mean) / std
    network = pseudo_margin_network(fit_inputs.shape[1], generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
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
