"""Model cards and `MODEL_SOURCES`, where a model can come from: find, describe, save and load models safely.

A shipped model lives in a folder `<id>/` with `weights.safetensors` and `card.json`; weights never go
through unrestricted pickle (safetensors, or `torch.load(weights_only=True)` for `.pt` files).
`load_model_and_card(spec, options)` resolves a spec ("fmnist-standard", "/path/to/folder", "folder:/path",
"torchvision:resnet18", "python:lenet.py:LeNet", "exported:model.pt2") through `MODEL_SOURCES`; a new kind of
model is one entry there, addressed by its name as a prefix ("name:..."). Sources with the `code` trait import or
unpickle code: only the person starting the CLI or the server names them, never an upload.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from sia_core.errors import CheckpointError, ConfigError
from sia_core.models.architectures import ARCHITECTURES, PACKAGED_WEIGHTS, build_architecture
from sia_core.models.user_models import (HeadSplit, LogitsOnly, ModelOptions, check_forward, clean_state_dict,
                                         final_linear_name, import_factory, load_exported_program, load_weights_into,
                                         torchvision_network)
from sia_core.models.wrapper import ClassifierWrapper, default_device, freeze_for_inference
from sia_core.paths import MODELS_DIR
from sia_core.registry import Entry, Registry
from sia_core.validation import positive, positive_int, require

CARD_FILE = "card.json"
TASKS = ("classification", "keypoints")
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
    # "keypoints": the model maps images to the points `point_names` (class_names then name its dataset's classes),
    # judged as `keypoint_task` says (sia_core.keypoints.KeypointTask's fields)
    task: str = "classification"
    point_names: tuple[str, ...] = ()
    keypoint_task: dict[str, Any] = field(default_factory=dict)

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
        require(self.task in TASKS, f"task must be one of {', '.join(TASKS)}, got {self.task!r}.")
        require(self.task != "keypoints" or len(self.point_names) > 0, "A keypoint model's card names its points.")

    @property
    def readable_description(self) -> str:
        """The description in the notation the pages use (L∞ ε 0.1, not the command line's "L-inf eps 0.1")."""
        return in_notation(self.description)

    @property
    def is_keypoints(self) -> bool:
        return self.task == "keypoints"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelCard":
        try:
            return cls(
                id=str(data["id"]), dataset=str(data["dataset"]), architecture=str(data["architecture"]),
                input_shape=tuple(int(v) for v in data["input_shape"]),  # type: ignore[arg-type]
                class_names=tuple(str(v) for v in data["class_names"]),
                mean=tuple(float(v) for v in data["mean"]), std=tuple(float(v) for v in data["std"]),
                training=dict(data.get("training", {})), evaluations=tuple(data.get("evaluations", ())),
                description=str(data.get("description", "")), task=str(data.get("task", "classification")),
                point_names=tuple(str(v) for v in data.get("point_names", ())),
                keypoint_task=dict(data.get("keypoint_task", {})),
            )
        except (KeyError, TypeError, ValueError, ConfigError) as error:
            raise CheckpointError(f"The model card is incomplete or malformed ({error!r}).") from error

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["evaluations"] = list(self.evaluations)
        if not self.is_keypoints:  # a classifier's card stays as it was written
            for key in ("task", "point_names", "keypoint_task"):
                data.pop(key)
        else:
            data["point_names"] = list(self.point_names)
        return data

    def headline(self) -> dict[str, Any] | None:
        """The first evaluation on the card, the one shown in the app's sidebar."""
        return self.evaluations[0] if self.evaluations else None


def in_notation(text: str) -> str:
    """Free text from a training command (ASCII, as typed) in the notation the pages use: L∞ and ε."""
    for typed, shown in (("L-inf eps ", "L∞ ε "), ("L2 eps ", "L2 ε "), ("L-inf ", "L∞ "), (", beta ", ", β ")):
        text = text.replace(typed, shown)
    return text


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


def read_state_dict(path: Path, name: Optional[str] = None) -> dict[str, torch.Tensor]:
    """Tensors from a `.safetensors` file, or a `.pt`/`.pth` state_dict loaded with weights_only=True; `name` is
    the file as its messages call it (an upload's own name, not the scratch copy's)."""
    name = name or path.name
    if not path.is_file():
        raise CheckpointError(f"Checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any decoding failure is the user's file, not our bug
        # a whole pickled model is the usual cause: its code would have to be imported, which is never done here
        raise CheckpointError(f"Could not read {name}: it is not a valid "
                              f"{'safetensors' if path.suffix == '.safetensors' else 'PyTorch weights-only'} file. "
                              "Save the weights alone: torch.save(model.state_dict(), 'weights.pt') or safetensors' "
                              "save_file(model.state_dict(), 'weights.safetensors'); a whole pickled model is not "
                              "read.") from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{name} does not hold a state_dict (a mapping of names to tensors).")
    return state


def build_model(card: ModelCard, state: Optional[dict[str, torch.Tensor]] = None,
                device: Optional[torch.device] = None) -> ClassifierWrapper:
    """The wrapper described by `card`, with `state` loaded when given, on `device` (default: cuda if present); a
    keypoint card's is a `KeypointWrapper` (`sia_core.keypoints.models`)."""
    if card.is_keypoints:
        from sia_core.keypoints.models import build_keypoint_model

        return build_keypoint_model(card, state, device or default_device())  # type: ignore[return-value]
    if card.architecture not in ARCHITECTURES:
        raise CheckpointError(f"Model {card.id!r} uses unknown architecture {card.architecture!r}.")
    channels, height, _ = card.input_shape
    network = build_architecture(card.architecture, channels, height, len(card.class_names))
    # the card checked mean/std against the channels when it was made
    wrapper = ClassifierWrapper(network, mean=card.mean, std=card.std, input_shape=card.input_shape,
                                class_names=card.class_names, model_id=card.id)
    if state is not None:
        # accept the wrapper's keys ("network.features.0.weight"), the bare network's and DataParallel's ("module.")
        state = {key.removeprefix("module.").removeprefix("network."): value for key, value in state.items()
                 if key not in ("mean", "std")}
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise CheckpointError(f"These weights do not fit the {card.architecture} architecture "
                                  f"({card.input_shape[0]}×{card.input_shape[1]}×{card.input_shape[2]} input, "
                                  f"{len(card.class_names)} classes): {_weights_mismatch(network, state)}") from error
    wrapper.eval()
    return wrapper.to(device or default_device())


def _weights_mismatch(network: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> str:
    """What differs between a network's tensors and a file's, in a sentence: missing and extra names, or the first
    tensor whose shape differs (as "3×3×5×5 here, 32×1×5×5 in the file")."""
    expected = network.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        parts = ([f"{len(missing)} tensor{'s' if len(missing) != 1 else ''} missing (first: {missing[0]})"]
                 if missing else []) + ([f"{len(extra)} extra (first: {extra[0]})"] if extra else [])
        return " and ".join(parts) + ": they were saved from another architecture."
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            return (f"{key} is {'×'.join(map(str, tensor.shape))} here and {'×'.join(map(str, state[key].shape))} "
                    "in the file: the same architecture at another size (input channels, width or classes).")
    return "the file's tensors do not load into it."


_NOT_IN_AN_ID = ("/", "\\", "..", ":")


def _plain_id(model_id: str) -> bool:
    return bool(model_id) and not any(part in model_id for part in _NOT_IN_AN_ID)


def require_model_id(model_id: str) -> None:
    """A model id names a folder under assets/models: no path separators or '..' (it would write elsewhere), no ':'
    (it would read as a "source:" prefix)."""
    require(_plain_id(model_id), f"A model id is a plain folder name under assets/models (without "
                                 f"{', '.join(repr(part) for part in _NOT_IN_AN_ID)}), got {model_id!r}.")


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for every lens, and the card that says what it is."""

    model: ClassifierWrapper
    card: ModelCard


NUMBERED_CLASSES = "numbered"  # card.training["class_names"] of a model whose names wait for a dataset's


def _load_folder(folder: Path, options: ModelOptions, device: Optional[torch.device]) -> LoadedModel:
    card = read_card(folder)
    if options.weights is not None:  # the folder's architecture and card with the user's weights
        return load_with_weights(card, options.weights.read_bytes(), options.weights.suffix, device)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file() and card.architecture in PACKAGED_WEIGHTS:
        # weights that install with a registry package (their licence on the card), not a file of ours
        module, function = PACKAGED_WEIGHTS[card.architecture].split(":")
        return LoadedModel(build_model(card, getattr(importlib.import_module(module), function)(), device), card)
    return LoadedModel(build_model(card, read_state_dict(weights), device), card)


def _shipped_folder(reference: str, models_dir: Path) -> Path:
    return models_dir / reference


def _user_folder(reference: str, models_dir: Path) -> Path:
    return Path(reference).expanduser()


def _load_shipped(reference: str, *, options: ModelOptions = ModelOptions(), device: Optional[torch.device] = None,
                  models_dir: Path = MODELS_DIR) -> LoadedModel:
    folder = _shipped_folder(reference, models_dir)
    if not (_plain_id(reference) and folder.is_dir()):  # an id that would leave models_dir is unknown too
        known = ", ".join(card.id for card in list_model_cards(models_dir)) or "none"
        raise CheckpointError(f"Unknown model {reference!r}. Known models: {known}; or a spec such as "
                              "torchvision:resnet18 or python:FILE.py:FACTORY.")
    return _load_folder(folder, options, device)


def _load_user_folder(reference: str, *, options: ModelOptions = ModelOptions(),
                      device: Optional[torch.device] = None, models_dir: Path = MODELS_DIR) -> LoadedModel:
    folder = _user_folder(reference, models_dir)
    if not folder.is_dir():
        raise CheckpointError(f"Model folder not found: {folder}")
    return _load_folder(folder, options, device)


def load_with_weights(card: ModelCard, weights: bytes, suffix: str,
                      device: Optional[torch.device] = None, file_name: Optional[str] = None) -> LoadedModel:
    """`card`'s architecture with a user's weights file (its bytes and suffix: .safetensors, .pt or .pth;
    `file_name`: the file's own name, for messages)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"weights{suffix}"
        path.write_bytes(weights)
        state = clean_state_dict(read_state_dict(path, file_name))
    digest = hashlib.sha256(weights).hexdigest()
    card = ModelCard(**{**card.__dict__, "id": f"{card.id} + uploaded weights {digest[:16]}", "evaluations": ()})
    return LoadedModel(freeze_for_inference(build_model(card, state, device)), card)


def _weights_digest(path: Optional[Path]) -> str:
    if path is None:
        return "random-init"
    if not path.is_file():
        raise CheckpointError(f"Weights file not found: {path}")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _user_model(spec: str, network: torch.nn.Module, options: ModelOptions, *, input_shape: tuple[int, int, int],
                meta: dict[str, Any], device: Optional[torch.device], description: str) -> LoadedModel:
    """Wrap a user's network once it is built and its weights are in: check one forward, find the head, name the
    classes (given > the weights enum's > numbered, until a dataset names them) and write a card."""
    channels = input_shape[0]
    mean = options.mean or meta.get("mean") or (0.0,) * channels
    std = options.std or meta.get("std") or (1.0,) * channels
    if len(mean) != channels or len(std) != channels:
        raise CheckpointError(f"--mean and --std need {channels} values (one per channel of {input_shape}), got "
                              f"{len(mean)} and {len(std)}.")
    network = network.to(device or default_device()).eval()
    count = check_forward(network, input_shape, len(options.class_names) if options.class_names else None, spec)
    names, origin = options.class_names, "given"
    if names is None:
        known = meta.get("class_names")
        names, origin = (known, "weights enum") if known and len(known) == count else (
            tuple(f"class {k}" for k in range(count)), NUMBERED_CLASSES)
    split: torch.nn.Module = network
    if not isinstance(network, LogitsOnly):
        try:
            split = HeadSplit(network, final_linear_name(network, count))
        except CheckpointError:
            split = LogitsOnly(network, spec)
    weights_id = _weights_digest(options.weights) if options.weights or options.random_init else "pretrained"
    card = ModelCard(id=spec, dataset="", architecture=type(network).__name__, input_shape=input_shape,
                     class_names=tuple(names), mean=tuple(mean), std=tuple(std),
                     training={"source": spec, **options.to_dict(), "weights_sha256": weights_id,
                               "class_names": origin,
                               "head": getattr(split, "head_name", None)},
                     description=description)
    wrapper = ClassifierWrapper(split, mean=mean, std=std, input_shape=input_shape,  # type: ignore[arg-type]
                                class_names=names, model_id=f"{spec}@{weights_id}")
    return LoadedModel(wrapper.eval().to(device or default_device()), card)


def _state_from(options: ModelOptions) -> dict[str, torch.Tensor]:
    return clean_state_dict(read_state_dict(options.weights))  # type: ignore[arg-type]


def _load_torchvision(reference: str, *, options: ModelOptions = ModelOptions(),
                      device: Optional[torch.device] = None, models_dir: Path = MODELS_DIR) -> LoadedModel:
    state = _state_from(options) if options.weights is not None else None
    classes = len(options.class_names) if options.class_names else None
    if state is not None:
        # a fine-tuned head says its class count in its weights: build the network to fit them
        probe, _ = torchvision_network(reference, num_classes=classes, weights_file=None, pretrained=False,
                                       download=False)
        head_weight = state.get(final_linear_name(probe) + ".weight")
        classes = int(head_weight.shape[0]) if head_weight is not None else classes
    network, meta = torchvision_network(reference, num_classes=classes, weights_file=options.weights,
                                        pretrained=state is None and not options.random_init,
                                        download=options.download)
    if state is not None:
        load_weights_into(network, state, f"torchvision's {reference}")
    size = meta.get("size", 224)
    input_shape = options.input_shape or (3, size, size)
    how = ("your weights " + options.weights.name if options.weights else
           "random initial weights (for timing and tests, not for predictions)" if options.random_init else
           "torchvision's pretrained weights")
    return _user_model(f"torchvision:{reference}", network, options, input_shape=input_shape, meta=meta,
                       device=device, description=f"torchvision's {reference} architecture with {how}.")


def _load_python(reference: str, *, options: ModelOptions = ModelOptions(), device: Optional[torch.device] = None,
                 models_dir: Path = MODELS_DIR) -> LoadedModel:
    spec = f"python:{reference}"
    if options.input_shape is None:
        raise CheckpointError(f"{spec} needs --input-shape C,H,W (e.g. 1,28,28): the code does not say it.")
    if options.weights is None and not options.random_init:
        raise CheckpointError(f"{spec} needs --weights FILE (.safetensors, .pt or .pth), or --random-init to look "
                              "at an untrained network.")
    factory = import_factory(reference)
    try:
        network = factory()
    except Exception as error:  # the user's code: report it, do not crash
        raise CheckpointError(f"Calling {reference} failed: {type(error).__name__}: {error}") from error
    if not isinstance(network, torch.nn.Module):
        raise CheckpointError(f"{reference} returned a {type(network).__name__}, not a torch.nn.Module.")
    if options.weights is not None:
        load_weights_into(network, _state_from(options), reference)
    weights = options.weights.name if options.weights else "random initial weights"
    return _user_model(spec, network, options, input_shape=options.input_shape, meta={}, device=device,
                       description=f"Your {type(network).__name__} from {reference} with {weights}.")


def _load_exported(reference: str, *, options: ModelOptions = ModelOptions(), device: Optional[torch.device] = None,
                   models_dir: Path = MODELS_DIR) -> LoadedModel:
    path = Path(reference).expanduser()
    if not path.is_file():
        raise CheckpointError(f"Exported program not found: {path}")
    network, example_shape = load_exported_program(path)
    input_shape = options.input_shape or example_shape
    if input_shape is None:
        raise CheckpointError(f"{path.name} does not record an input shape: pass --input-shape C,H,W.")
    return _user_model(f"exported:{reference}", LogitsOnly(network, path.name), options, input_shape=input_shape, meta={}, device=device,
                       description=f"The exported program {path.name} (torch.export).")


# An entry with a `spec` trait is addressed by a string: "name:reference", or without a prefix a folder path
# (when it is a folder) or a shipped id. Its factory takes (reference, *, options, device, models_dir) and returns
# a LoadedModel; its `folder` trait says where the card lies. `code`: loading runs code from the reference, so
# only the operator's command line or config file may name it, never an upload or a field in the app.
MODEL_SOURCES: Registry[LoadedModel] = Registry("model source", [
    Entry("shipped", "Shipped model", "A model that ships with the app under assets/models, by id.",
          _load_shipped, traits={"spec": "an id, e.g. fmnist-standard", "folder": _shipped_folder}),
    Entry("folder", "Model folder", "A folder of your own holding card.json and weights.safetensors "
                                    "(as `python -m sia_core train` writes them).",
          _load_user_folder, traits={"spec": "a folder path", "folder": _user_folder}),
    Entry("torchvision", "torchvision architecture",
          "A torchvision classification architecture (resnet18, mobilenet_v3_small, ...): your --weights, or "
          "torchvision's ImageNet weights from the torch hub cache (or --download), or --random-init.",
          _load_torchvision, traits={"spec": "torchvision:resnet18"}),
    Entry("python", "Your own architecture",
          "A callable in your Python file or module that returns an nn.Module, with --weights, --input-shape, "
          "--mean/--std and --classes.",
          _load_python, traits={"spec": "python:lenet.py:LeNet", "code": True}),
    Entry("exported", "Exported program",
          "A whole model saved by torch.export.save (.pt2), exported with a dynamic batch dimension.",
          _load_exported, traits={"spec": "exported:model.pt2", "code": True}),
    Entry("weights", "Shipped architecture, your weights",
          "A shipped model's architecture and card with a state_dict you provide (.safetensors, or .pt/.pth "
          "loaded with weights_only=True).", load_with_weights),
])


def resolve_model_spec(spec: str | Path, models_dir: Path = MODELS_DIR) -> tuple[Entry[LoadedModel], str]:
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


def load_model_and_card(model: str | Path, options: ModelOptions = ModelOptions(), *,
                        device: Optional[torch.device] = None, models_dir: Path = MODELS_DIR) -> LoadedModel:
    """Load a model by spec (a shipped id, a folder path, or "source:reference") with its card, frozen for
    inference (`freeze_for_inference`): one loaded model may serve many threads at once."""
    entry, reference = resolve_model_spec(model, models_dir)
    loaded = entry.build(reference=reference, options=options, device=device, models_dir=models_dir)
    freeze_for_inference(loaded.model)
    return loaded


def load_model(model: str | Path, device: Optional[torch.device] = None, models_dir: Path = MODELS_DIR,
               options: ModelOptions = ModelOptions()) -> ClassifierWrapper:
    """Load a model by spec: a shipped id (a folder under `models_dir`), a folder path, or "source:reference"."""
    return load_model_and_card(model, options, device=device, models_dir=models_dir).model


def with_dataset_class_names(loaded: LoadedModel, class_names: tuple[str, ...]) -> LoadedModel:
    """A user model whose classes were only numbered takes the dataset's names when the counts match (the network
    is shared, not copied)."""
    card = loaded.card
    if card.training.get("class_names") != NUMBERED_CLASSES or len(class_names) != len(card.class_names):
        return loaded
    wrapper = loaded.model.with_class_names(class_names)  # leaves the shared network's flags and device alone
    named = ModelCard(**{**card.__dict__, "class_names": tuple(class_names),
                         "training": {**card.training, "class_names": "from the dataset"}})
    return LoadedModel(wrapper, named)


WEIGHT_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16}


def round_weights(wrapper: ClassifierWrapper, dtype: str) -> None:
    """Round the network's floating-point tensors to `dtype` in place (they stay float32 for computing), so that
    what is measured after this is what a file stored in `dtype` loads back to."""
    with torch.no_grad():
        for tensor in wrapper.network.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(WEIGHT_DTYPES[dtype]))


def save_model(wrapper: ClassifierWrapper, card: ModelCard, folder: Path, dtype: str = "float32") -> None:
    """Write `weights.safetensors` (floating-point tensors stored in `dtype`; they load back as float32) and
    `card.json` into `folder`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {key: (value.to(WEIGHT_DTYPES[dtype]) if value.is_floating_point() else value).detach().cpu().contiguous()
             for key, value in wrapper.network.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    (folder / CARD_FILE).write_text(json.dumps(card.to_dict(), indent=2) + "\n")
