"""Model cards and `MODEL_SOURCES`, where a model can come from: find, describe, save and load models safely.

A model lives in a folder `<id>/` with `weights.safetensors` and `card.json`; weights never go
through unrestricted pickle (safetensors, or `torch.load(weights_only=True)` for `.pt` files).
`load_model(spec)` resolves a spec ("fmnist-standard", "/path/to/folder", "folder:/path") through
`MODEL_SOURCES`; a new kind of model is one entry there, addressed by its name as a prefix ("name:...").
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from sia_core.errors import CheckpointError, ConfigError
from sia_core.models.architectures import ARCHITECTURES, build_architecture
from sia_core.models.wrapper import ClassifierWrapper, default_device
from sia_core.paths import MODELS_DIR
from sia_core.registry import Entry, Registry
from sia_core.validation import positive, positive_int, require

CARD_FILE = "card.json"
WEIGHTS_FILE = "weights.safetensors"


@dataclass(frozen=True)
class ModelCard:
    """What a model is, how it was made, and what it scored (measured by `sia_core.evaluation`)."""

    id: str
    dataset: str
    architecture: str
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    training: dict[str, Any] = field(default_factory=dict)
    evaluations: tuple[dict[str, Any], ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        require(bool(self.id), "A model card needs an id.")
        require(len(self.input_shape) == 3, f"input_shape must be (channels, height, width), got {self.input_shape!r}.")
        for name, value in zip(("channels", "height", "width"), self.input_shape):
            positive_int(f"input_shape {name}", value)
        channels = self.input_shape[0]
        require(len(self.mean) == channels and len(self.std) == channels,
                f"mean and std need {channels} values, one per channel, got {len(self.mean)} and {len(self.std)}.")
        for value in self.std:
            positive("std", value)
        require(len(self.class_names) > 0, "class_names must hold at least one name, got none.")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelCard":
        try:
            return cls(
                id=str(data["id"]), dataset=str(data["dataset"]), architecture=str(data["architecture"]),
                input_shape=tuple(int(v) for v in data["input_shape"]),  # type: ignore[arg-type]
                class_names=tuple(str(v) for v in data["class_names"]),
                mean=tuple(float(v) for v in data["mean"]), std=tuple(float(v) for v in data["std"]),
                training=dict(data.get("training", {})), evaluations=tuple(data.get("evaluations", ())),
                description=str(data.get("description", "")),
            )
        except (KeyError, TypeError, ValueError, ConfigError) as error:
            raise CheckpointError(f"The model card is incomplete or malformed ({error!r}).") from error

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["evaluations"] = list(self.evaluations)
        return data

    def headline(self) -> dict[str, Any] | None:
        """The first evaluation on the card, the one shown in the app's sidebar."""
        return self.evaluations[0] if self.evaluations else None


def read_card(folder: Path) -> ModelCard:
    path = folder / CARD_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise CheckpointError(f"No model card at {path}.") from error
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"The model card {path} is not readable JSON: {error}") from error
    if not isinstance(data, dict):
        raise CheckpointError(f"The model card {path} must hold a JSON object.")
    return ModelCard.from_dict(data)


def list_model_cards(models_dir: Path = MODELS_DIR) -> list[ModelCard]:
    """Cards of every model folder under `models_dir`, sorted by id; unreadable cards are skipped."""
    cards = []
    for folder in sorted(p for p in models_dir.glob("*") if (p / CARD_FILE).is_file()):
        try:
            cards.append(read_card(folder))
        except CheckpointError:
            continue
    return cards


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a `.safetensors` file, or a `.pt`/`.pth` state_dict loaded with weights_only=True."""
    if not path.is_file():
        raise CheckpointError(f"Checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any decoding failure is the user's file, not our bug
        raise CheckpointError(f"Could not read checkpoint {path.name}: it is not a valid "
                              f"{'safetensors' if path.suffix == '.safetensors' else 'PyTorch weights-only'} file "
                              f"({type(error).__name__}).") from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path.name} does not hold a state_dict (a mapping of names to tensors).")
    return state


def build_model(card: ModelCard, state: Optional[dict[str, torch.Tensor]] = None,
                device: Optional[torch.device] = None) -> ClassifierWrapper:
    """The wrapper described by `card`, with `state` loaded when given, on `device` (default: cuda if present)."""
    if card.architecture not in ARCHITECTURES:
        raise CheckpointError(f"Model {card.id!r} uses unknown architecture {card.architecture!r}.")
    channels, height, _ = card.input_shape
    network = build_architecture(card.architecture, channels, height, len(card.class_names))
    # the card checked mean/std against the channels when it was made
    wrapper = ClassifierWrapper(network, mean=card.mean, std=card.std, input_shape=card.input_shape,
                                class_names=card.class_names, model_id=card.id)
    if state is not None:
        # accept both the wrapper's keys ("network.features.0.weight") and the bare network's
        state = {key.removeprefix("network."): value for key, value in state.items()
                 if key not in ("mean", "std")}
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as error:
            first_line = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
            raise CheckpointError(f"The weights do not fit the {card.architecture} architecture of {card.id!r}: "
                                  f"{first_line}") from error
    wrapper.eval()
    return wrapper.to(device or default_device())


_NOT_IN_AN_ID = ("/", "\\", "..", ":")


def _plain_id(model_id: str) -> bool:
    return bool(model_id) and not any(part in model_id for part in _NOT_IN_AN_ID)


def require_model_id(model_id: str) -> None:
    """A model id names a folder under assets/models: no path separators or '..' (it would write elsewhere), no ':'
    (it would read as a "source:" prefix)."""
    require(_plain_id(model_id), f"A model id is a plain folder name under assets/models (without "
                                 f"{', '.join(repr(part) for part in _NOT_IN_AN_ID)}), got {model_id!r}.")


def _load_folder(folder: Path, device: Optional[torch.device]) -> ClassifierWrapper:
    return build_model(read_card(folder), read_state_dict(folder / WEIGHTS_FILE), device)


def _shipped_folder(reference: str, models_dir: Path) -> Path:
    return models_dir / reference


def _user_folder(reference: str, models_dir: Path) -> Path:
    return Path(reference).expanduser()


def _load_shipped(reference: str, *, device: Optional[torch.device] = None,
                  models_dir: Path = MODELS_DIR) -> ClassifierWrapper:
    folder = _shipped_folder(reference, models_dir)
    if not (_plain_id(reference) and folder.is_dir()):  # an id that would leave models_dir is unknown too
        known = ", ".join(card.id for card in list_model_cards(models_dir)) or "none"
        raise CheckpointError(f"Unknown model {reference!r}. Known models: {known}.")
    return _load_folder(folder, device)


def _load_user_folder(reference: str, *, device: Optional[torch.device] = None,
                      models_dir: Path = MODELS_DIR) -> ClassifierWrapper:
    folder = _user_folder(reference, models_dir)
    if not folder.is_dir():
        raise CheckpointError(f"Model folder not found: {folder}")
    return _load_folder(folder, device)


def load_with_weights(card: ModelCard, weights: bytes, suffix: str,
                      device: Optional[torch.device] = None) -> ClassifierWrapper:
    """`card`'s architecture with a user's weights file (its bytes and suffix: .safetensors, .pt or .pth)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"weights{suffix}"
        path.write_bytes(weights)
        state = read_state_dict(path)
    digest = hashlib.sha256(weights).hexdigest()
    return build_model(ModelCard(**{**card.__dict__, "id": f"{card.id} + uploaded weights {digest[:8]}"}), state,
                       device)


# An entry with a `spec` trait is addressed by a string: "name:reference", or without a prefix a folder path
# (when it is a folder) or a shipped id. Its factory takes (reference, *, device, models_dir); its `folder`
# trait says where the card lies, for the commands that read the model's dataset from it.
MODEL_SOURCES: Registry[ClassifierWrapper] = Registry("model source", [
    Entry("shipped", "Shipped model", "A model that ships with the app under assets/models, by id.",
          _load_shipped, traits={"spec": "an id, e.g. fmnist-standard", "folder": _shipped_folder}),
    Entry("folder", "Model folder", "A folder of your own holding card.json and weights.safetensors "
                                    "(as `python -m sia_core train` writes them).",
          _load_user_folder, traits={"spec": "a folder path", "folder": _user_folder}),
    Entry("weights", "Shipped architecture, your weights",
          "A shipped model's architecture and card with a state_dict you provide (.safetensors, or .pt/.pth "
          "loaded with weights_only=True).", load_with_weights),
])


def resolve_model_spec(spec: str | Path, models_dir: Path = MODELS_DIR) -> tuple[Entry[ClassifierWrapper], str]:
    """The source entry and reference a spec names: "source:reference", else a folder path, else a shipped id."""
    text = str(spec)
    prefix, separator, reference = text.partition(":")
    if separator and prefix in MODEL_SOURCES and "spec" in MODEL_SOURCES[prefix].traits:
        return MODEL_SOURCES[prefix], reference
    return MODEL_SOURCES["folder" if Path(text).expanduser().is_dir() else "shipped"], text


def model_folder(model: str | Path, models_dir: Path = MODELS_DIR) -> Path:
    """Where a model's card lies (it may not exist: an unknown id gives a path that is not a folder)."""
    entry, reference = resolve_model_spec(model, models_dir)
    if "folder" not in entry.traits:
        raise CheckpointError(f"A {entry.label.lower()} has no model folder with a card.")
    return entry.traits["folder"](reference, models_dir)


def load_model(model: str | Path, device: Optional[torch.device] = None, models_dir: Path = MODELS_DIR) -> ClassifierWrapper:
    """Load a model by spec: a shipped id (a folder under `models_dir`), a folder path, or "source:reference"."""
    entry, reference = resolve_model_spec(model, models_dir)
    return entry.build(reference=reference, device=device, models_dir=models_dir)


def save_model(wrapper: ClassifierWrapper, card: ModelCard, folder: Path) -> None:
    """Write `weights.safetensors` and `card.json` into `folder`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu().contiguous() for key, value in wrapper.network.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    (folder / CARD_FILE).write_text(json.dumps(card.to_dict(), indent=2) + "\n")
