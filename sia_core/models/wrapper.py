"""The one model wrapper: it owns normalization, input shape, class names and device.

Every engine function hands it images in [0, 1] and gets (N, C) logits back.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator, Sequence, TypeVar

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from sia_core.data.base import ImageDataset
from sia_core.errors import ConfigError
from sia_core.models.architectures import SplitClassifier
from sia_core.scaling import batch_size_for


def default_device() -> torch.device:
    """`cuda` when a GPU is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class ClassifierWrapper(nn.Module):
    """A classifier that takes images in [0, 1] and returns (N, num_classes) logits.

    Args:
        network: a `SplitClassifier` that expects normalized inputs.
        mean, std: per-channel normalization applied inside `forward`.
        input_shape: (C, H, W) the network expects.
        class_names: one name per logit.
        model_id: registry id, for display and cache keys.
    """

    def __init__(self, network: SplitClassifier, *, mean: Sequence[float], std: Sequence[float],
                 input_shape: tuple[int, int, int], class_names: Sequence[str], model_id: str = "") -> None:
        super().__init__()
        channels = input_shape[0]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean/std need {channels} values, one per channel")
        self.network = network
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.input_shape = tuple(input_shape)
        self.class_names = tuple(class_names)
        self.model_id = model_id

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _check(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if tuple(images.shape[1:]) != self.input_shape:
            raise ValueError(f"{self.model_id or 'model'} expects images of shape (N, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(images.shape)}")
        return images.to(self.device, self.mean.dtype)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (self._check(images) - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(self.normalize(images))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate representation (the input of the final linear layer)."""
        return self.network.features(self.normalize(images))

    @property
    def head(self) -> nn.Linear:
        return self.network.head

    def with_class_names(self, class_names: Sequence[str]) -> "ClassifierWrapper":
        """A wrapper around the same network and normalization tensors, with other class names (one per logit).

        Nothing of this model is copied, moved or switched, so it is safe on a model other threads are using;
        the new wrapper is in this one's mode.
        """
        if len(class_names) != self.num_classes:
            raise ValueError(f"need {self.num_classes} class names, one per logit, got {len(class_names)}")
        return self._rewrapped(tuple(class_names), self.model_id)

    def with_model_id(self, model_id: str) -> "ClassifierWrapper":
        """A wrapper around the same network under another id (the id keys shared caches), as safe as
        `with_class_names`."""
        return self._rewrapped(self.class_names, model_id)

    def _rewrapped(self, class_names: Sequence[str], model_id: str) -> "ClassifierWrapper":
        renamed = ClassifierWrapper(self.network, mean=self.mean.flatten().tolist(), std=self.std.flatten().tolist(),
                                    input_shape=self.input_shape, class_names=class_names, model_id=model_id)
        renamed.register_buffer("mean", self.mean)  # the same tensors, already on this model's device
        renamed.register_buffer("std", self.std)
        renamed.training = self.training  # the wrapper's own flag: the network's flags are shared
        return renamed

    def predict_proba(self, images: torch.Tensor, batch_size: int = 512,
                      progress: Callable[[int, int, dict], None] | None = None) -> torch.Tensor:
        """Softmax probabilities on the CPU, computed without autograd in eval mode (batches capped by
        `batch_size_for`: 512 small images, 16 at 224 px); `progress` hears each batch."""
        return torch.softmax(self.logits(images, batch_size, progress), dim=1)

    def logits(self, images: torch.Tensor, batch_size: int = 512,
               progress: Callable[[int, int, dict], None] | None = None) -> torch.Tensor:
        """Logits on the CPU, batched (capped by `batch_size_for`), without autograd in eval mode; `progress` hears
        each batch (step, batches, {"images": done})."""
        batch_size = batch_size_for(self.input_shape, batch_size)
        starts = range(0, images.shape[0], batch_size)
        chunks = []
        with frozen_eval(self), torch.inference_mode():
            for number, start in enumerate(starts, start=1):
                chunks.append(self(images[start:start + batch_size]).cpu())
                if progress is not None:
                    progress(number, len(starts), {"images": min(start + batch_size, images.shape[0])})
        return torch.cat(chunks) if chunks else torch.empty(0, self.num_classes)



def require_fit(model: ClassifierWrapper, dataset: ImageDataset) -> None:
    """Refuse a dataset the model cannot classify: other image shape, or labels beyond the model's classes."""
    if dataset.image_shape != model.input_shape or dataset.num_classes != model.num_classes:
        raise ConfigError(f"{model.model_id or 'The model'} takes {model.input_shape} images in {model.num_classes} "
                          f"classes; {dataset.name} has {dataset.image_shape} images in {dataset.num_classes} classes.")


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def freeze_for_inference(model: ModuleT) -> ModuleT:
    """Put `model` in eval mode with every parameter's gradient off, once, and return it.

    A model loaded for serving is shared by every session thread (`st.cache_resource`); frozen, it is never
    switched again: `frozen_eval` leaves it alone, so overlapping calls cannot restore each other's flags.
    Training turns the gradients of the model it trains back on.
    """
    model.eval()
    model.requires_grad_(False)
    return model


def is_frozen(model: nn.Module) -> bool:
    """In eval mode (the top module's flag, which `eval()` sets on every submodule; an exported program inside
    keeps the mode it was exported in), and no parameter requires a gradient."""
    return not model.training and not any(parameter.requires_grad for parameter in model.parameters())


def register_own_thread_hook(module: nn.Module,
                             hook: Callable[[nn.Module, tuple[Any, ...], Any], Any]) -> RemovableHandle:
    """`module.register_forward_hook(hook)`, except that `hook` runs only for the forward passes of the thread
    that registers it.

    A shared model's modules see every thread's forward passes; a plain hook would record another session's
    activations, or replace its outputs. Remove the handle in a `finally` (or use it in a `with` block).
    """
    owner = threading.get_ident()

    def own_thread_only(hooked: nn.Module, inputs: tuple[Any, ...], output: Any) -> Any:
        return hook(hooked, inputs, output) if threading.get_ident() == owner else None

    return module.register_forward_hook(own_thread_only)


@contextlib.contextmanager
def frozen_eval(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode with parameter gradients off; restores both on exit, even on error.

    Attacks need gradients w.r.t. the input only; freezing parameters saves that work and
    keeps BatchNorm/Dropout from changing behaviour mid-attack. A model already frozen (`freeze_for_inference`,
    as every loaded model is) is yielded untouched: other threads may be using it, and a flag set and restored
    here would be restored under them.
    """
    if is_frozen(model):
        yield model
        return
    was_training = model.training
    grad_flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for parameter, _ in grad_flags:
        parameter.requires_grad_(False)
    try:
        yield model
    finally:
        for parameter, flag in grad_flags:
            parameter.requires_grad_(flag)
        model.train(was_training)
