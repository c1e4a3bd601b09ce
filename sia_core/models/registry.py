"""Model cards and the registry of shipped models: find, describe, save and load them safely.

A model lives in a folder `<id>/` with `weights.safetensors` and `card.json`; weights never go
through unrestricted pickle (safetensors, or `torch.load(weights_only=True)` for `.pt` files).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from sia_core.errors import CheckpointError
from sia_core.models.architectures import ARCHITECTURES, build_architecture
from sia_core.models.wrapper import ClassifierWrapper, default_device
from sia_core.paths import MODELS_DIR

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
        except (KeyError, TypeError, ValueError) as error:
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
    try:
        wrapper = ClassifierWrapper(network, mean=card.mean, std=card.std, input_shape=card.input_shape,
                                    class_names=card.class_names, model_id=card.id)
    except ValueError as error:
        raise CheckpointError(f"The card of {card.id!r} is inconsistent: {error}.") from error
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


def model_folder(model: str | Path, models_dir: Path = MODELS_DIR) -> Path:
    """Where a model lives: `model` itself when it is a folder, else its id's folder under `models_dir`."""
    return Path(model) if Path(model).is_dir() else models_dir / str(model)


def load_model(model: str | Path, device: Optional[torch.device] = None, models_dir: Path = MODELS_DIR) -> ClassifierWrapper:
    """Load a registered model by id (a folder under `models_dir`) or by folder path."""
    folder = model_folder(model, models_dir)
    if not folder.is_dir():
        known = ", ".join(card.id for card in list_model_cards(models_dir)) or "none"
        raise CheckpointError(f"Unknown model {str(model)!r}. Known models: {known}.")
    card = read_card(folder)
    return build_model(card, read_state_dict(folder / WEIGHTS_FILE), device)


def save_model(wrapper: ClassifierWrapper, card: ModelCard, folder: Path) -> None:
    """Write `weights.safetensors` and `card.json` into `folder`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu().contiguous() for key, value in wrapper.network.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    (folder / CARD_FILE).write_text(json.dumps(card.to_dict(), indent=2) + "\n")
