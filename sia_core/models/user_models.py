"""Users' own classifiers: any `nn.Module` (from their Python file, a torchvision architecture, or an exported
program), fitted to the one `ClassifierWrapper` and checked before any lens sees it.

Security rule: Python code is imported only from a path given on the command line or in a config file by the
person who starts the server or the CLI, never from an upload. Exported programs (`.pt2`) are unpickled by
`torch.export.load`, so they are code too: command line only.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from sia_core.errors import CheckpointError
from sia_core.models.wrapper import register_own_thread_hook

STATE_PREFIXES = ("module.", "model.", "network.")


@dataclass(frozen=True)
class ModelOptions:
    """What a model spec may need beyond its name: the CLI flags (--weights, --input-shape, --mean, --std,
    --classes, --download, --random-init) and the keys of a model in sia_explorer.toml."""

    weights: Optional[Path] = None
    input_shape: Optional[tuple[int, int, int]] = None
    mean: Optional[tuple[float, ...]] = None
    std: Optional[tuple[float, ...]] = None
    class_names: Optional[tuple[str, ...]] = None
    download: bool = False
    random_init: bool = False

    @classmethod
    def parse(cls, *, weights: Optional[str | Path] = None, input_shape: Optional[str | Sequence[int]] = None,
              mean: Optional[str | Sequence[float]] = None, std: Optional[str | Sequence[float]] = None,
              classes: Optional[str | Sequence[str]] = None, download: bool = False,
              random_init: bool = False) -> "ModelOptions":
        """Options from command-line text ("1,28,28", "0.5", "a,b,c") or config-file lists alike."""
        shape = None
        if input_shape is not None:
            shape = parse_shape(input_shape if isinstance(input_shape, str) else ",".join(map(str, input_shape)))
        channels = shape[0] if shape else None
        names = None
        if classes is not None:
            names = tuple(name.strip() for name in (classes.split(",") if isinstance(classes, str) else classes))
            if len(names) < 2 or not all(names):
                raise CheckpointError(f"--classes needs two or more non-empty names separated by commas, got {classes!r}.")
        return cls(weights=None if weights in (None, "") else Path(weights).expanduser(), input_shape=shape,
                   mean=_channel_values(mean, channels, "mean"), std=_channel_values(std, channels, "std"),
                   class_names=names, download=bool(download), random_init=bool(random_init))

    def to_dict(self) -> dict[str, Any]:
        """The options as a card records them (paths as text, unset ones left out)."""
        values = {"weights": None if self.weights is None else str(self.weights), "input_shape": self.input_shape,
                  "mean": self.mean, "std": self.std, "classes": self.class_names,
                  "download": self.download or None, "random_init": self.random_init or None}
        return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()
                if value is not None}


def _channel_values(values: Optional[str | Sequence[float]], channels: Optional[int], what: str
                    ) -> Optional[tuple[float, ...]]:
    """Per-channel numbers; before the input shape is known, as many as given (checked again on load)."""
    if values is None:
        return None
    count = len(values.split(",")) if isinstance(values, str) else len(values)
    return parse_floats(values, channels or count, what)


class LogitsOnly(nn.Module):
    """A network seen only through its logits (an exported program): the lenses that need the penultimate
    layer say so instead of guessing one."""

    def __init__(self, network: nn.Module, what: str) -> None:
        super().__init__()
        self.network = network
        self.what = what

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def train(self, mode: bool = True) -> "LogitsOnly":
        # an exported program refuses train()/eval(): it was exported in the mode it runs in
        self.training = mode
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise CheckpointError(f"{self.what} exposes only its logits: this view needs the input of the final linear "
                              "layer. Load the model from its Python code (python:FILE.py:FACTORY) instead.")

    @property
    def head(self) -> nn.Linear:
        self.features(torch.empty(0))
        raise AssertionError("unreachable")


class HeadSplit(nn.Module):
    """Any classifier whose logits come out of a final `nn.Linear`: `features` is that layer's input.

    The margin and feature lenses need the penultimate representation; a forward hook on the head reads it,
    so the user's module runs unchanged (and gradients flow through it).
    """

    def __init__(self, network: nn.Module, head_name: str) -> None:
        super().__init__()
        self.network = network
        self.head_name = head_name
        head = network.get_submodule(head_name)
        if not isinstance(head, nn.Linear):
            raise CheckpointError(f"{head_name} is a {type(head).__name__}, not the final nn.Linear layer.")
        self._head = [head]  # a list keeps it out of the module tree (it is already inside `network`)

    @property
    def head(self) -> nn.Linear:
        return self._head[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []
        # this thread's pass only: another session's forward through the same head must not land here
        handle = register_own_thread_hook(self.head, lambda _m, inputs, _out: captured.append(inputs[0]))
        try:
            self.network(x)
        finally:
            handle.remove()
        if not captured:
            raise CheckpointError(f"The layer {self.head_name} was not used in the forward pass.")
        return captured[-1].flatten(1)


def final_linear_name(network: nn.Module, num_classes: Optional[int] = None) -> str:
    """The name of the last `nn.Linear` in module order (with `num_classes` outputs when given)."""
    names = [name for name, module in network.named_modules() if isinstance(module, nn.Linear)
             and (num_classes is None or module.out_features == num_classes)]
    if not names:
        raise CheckpointError("The model has no final nn.Linear layer" +
                              (f" with {num_classes} outputs" if num_classes else "") +
                              "; the margin and feature lenses need one.")
    return names[-1]


def import_factory(target: str) -> Callable[..., nn.Module]:
    """`path/to/file.py:Name` or `package.module:Name` -> the callable. Call only with a path the person running
    the server or the CLI typed (command line or config file)."""
    location, separator, attribute = target.rpartition(":")
    if not separator or not location or not attribute:
        raise CheckpointError(f"Expected FILE.py:FACTORY or package.module:FACTORY, got {target!r}.")
    try:
        if location.endswith(".py"):
            path = Path(location).expanduser().resolve()
            if not path.is_file():
                raise CheckpointError(f"Python file not found: {path}")
            name = f"sia_user_model_{abs(hash(str(path)))}"
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise CheckpointError(f"Could not import {path}.")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # dataclasses and pickling look the module up by name
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(location)
    except CheckpointError:
        raise
    except Exception as error:  # the user's file: report it, do not crash
        raise CheckpointError(f"Importing {location} failed: {type(error).__name__}: {error}") from error
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise CheckpointError(f"{location} has no callable {attribute!r}.")
    return factory


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip one wrapper prefix shared by every key (`module.` from DataParallel, `model.`, `network.`) and refuse
    NaN or Inf weights (they load silently and make every logit NaN)."""
    for prefix in STATE_PREFIXES:
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix):]: value for key, value in state.items()}
            break
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"The weights hold NaN or Inf values (first in {key!r}); refusing to load them.")
    return state


def load_weights_into(network: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Strict load with a message that names the first missing and unexpected keys and the first shape clash."""
    state = clean_state_dict(state)
    expected = network.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    clashes = [key for key in expected if key in state and tuple(state[key].shape) != tuple(expected[key].shape)]
    if missing or unexpected or clashes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {unexpected[0]!r})")
        if clashes:
            key = clashes[0]
            parts.append(f"shape mismatch at {key!r}: file {tuple(state[key].shape)}, model {tuple(expected[key].shape)}")
        raise CheckpointError(f"The weights do not fit {what}: " + "; ".join(parts) + ".")
    network.load_state_dict(state, strict=True)


def check_forward(network: nn.Module, input_shape: tuple[int, int, int], num_classes: Optional[int],
                  what: str) -> int:
    """One forward pass on a blank (2, C, H, W) batch: it must run and return (2, num_classes) finite logits.
    Returns the number of logits (any count when `num_classes` is None)."""
    was_training = network.training
    network.eval()
    try:
        with torch.inference_mode():
            logits = network(torch.zeros(2, *input_shape, device=next(network.parameters(), torch.zeros(0)).device))
    except Exception as error:  # the user's code: any exception is a message, not a crash
        raise CheckpointError(f"{what} failed on a (2, {', '.join(map(str, input_shape))}) input: "
                              f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from error
    finally:
        network.train(was_training)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise CheckpointError(f"{what} must return logits shaped (N, classes); it returned {shape}.")
    if num_classes is not None and logits.shape[1] != num_classes:
        raise CheckpointError(f"{what} returns {logits.shape[1]} logits, but there are {num_classes} class names.")
    if not bool(torch.isfinite(logits).all()):
        raise CheckpointError(f"{what} returns NaN or Inf logits on a blank image.")
    return int(logits.shape[1])


def torchvision_network(name: str, *, num_classes: Optional[int], weights_file: Optional[Path],
                        pretrained: bool, download: bool) -> tuple[nn.Module, dict[str, Any]]:
    """A torchvision classification architecture and what its weights enum knows (class names, normalization,
    input size). Pretrained weights load only from the torch hub cache, or with `download=True`."""
    from torchvision import models

    available = set(models.list_models(module=models))
    if name not in available:
        raise CheckpointError(f"torchvision has no classification model {name!r}; e.g. resnet18, mobilenet_v3_small.")
    enum = models.get_model_weights(name).DEFAULT
    meta: dict[str, Any] = {}
    if enum is not None:
        transform = enum.transforms()
        meta = {"class_names": tuple(enum.meta["categories"]), "mean": tuple(transform.mean),
                "std": tuple(transform.std), "size": int(transform.crop_size[0])}
    if pretrained and weights_file is None:
        if enum is None:
            raise CheckpointError(f"torchvision ships no pretrained weights for {name}.")
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
        if not cached.is_file() and not download:
            raise CheckpointError(f"The ImageNet weights of {name} are not in the torch hub cache ({cached}); pass "
                                  "--download (needs internet), --weights FILE, or --random-init.")
        return models.get_model(name, weights=enum), meta
    classes = num_classes if num_classes is not None else len(meta.get("class_names", ())) or 1000
    return models.get_model(name, weights=None, num_classes=classes), meta


def load_exported_program(path: Path) -> tuple[nn.Module, Optional[tuple[int, int, int]]]:
    """A `torch.export.save` archive as a module, and the (C, H, W) of its example input when it has one.
    `torch.export.load` unpickles parts of the archive (it can run code), so this is reached only from a path the
    operator typed, never from an upload."""
    try:
        program = torch.export.load(str(path))
        module = program.module()
    except Exception as error:
        raise CheckpointError(f"{path.name} is not a loadable exported program ({type(error).__name__}).") from error
    example = program.example_inputs[0] if program.example_inputs else ()
    shape = tuple(int(v) for v in example[0].shape[1:]) if example and example[0].ndim == 4 else None
    return module, shape  # type: ignore[return-value]


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) <= 0:
        raise CheckpointError(f"--input-shape must be C,H,W (e.g. 1,28,28), got {text!r}.")
    return values  # type: ignore[return-value]


def parse_floats(text: Optional[str | Sequence[float]], channels: int, what: str) -> Optional[tuple[float, ...]]:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in (text.split(",") if isinstance(text, str) else text))
    except ValueError:
        raise CheckpointError(f"--{what} must be numbers separated by commas, got {text!r}.") from None
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise CheckpointError(f"--{what} needs {channels} values (one per channel), got {len(values)}.")
    if what == "std" and min(values) <= 0:
        raise CheckpointError("--std values must be > 0.")
    return values
