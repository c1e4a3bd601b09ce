"""Model cards written by the engine: a trained model's card with its measured evaluations, a shipped model
compacted to a smaller precision and measured again, and the card of a model trained on a constructed set.

Every accuracy on a card comes from `sia_core.evaluation`; the CLI only passes the request and prints the result.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from sia_core.data.base import ImageDataset
from sia_core.data.catalog import load_dataset
from sia_core.errors import SiaError
from sia_core.evaluation import EvaluationConfig, evaluation_study
from sia_core.models.architectures import reinitialize
from sia_core.models.registry import (LoadedModel, ModelCard, build_model, load_model_and_card, model_folder,
                                      require_model_id, round_weights, save_model)
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.progress import ProgressCallback
from sia_core.resolve import test_split
from sia_core.training import TrainConfig, channel_statistics, train


# data folders beside the checkout, named as the training scripts name them (scripts/train_cifar10_models.sh)
_DATA_FOLDERS = {"../shared/data/cifar10-jpg": "$CIFAR10_DIR", "../shared/data/cifar10-subset": "$CIFAR10_EXACT_DIR",
                 "../shared/data": "$DATA_DIR"}


def portable_command(command: str) -> str:
    """A card's command as anyone can re-run it: no checkpoint path of the training machine (checkpointing does not
    change the result), data folders beside the checkout by the scripts' variables, the home folder as ~."""
    words = shlex.split(command)
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if word == "--checkpoint":
            skip = True
            continue
        for folder, name in _DATA_FOLDERS.items():
            word = word.replace(folder, name)
        home = str(Path.home())
        kept.append("~" + word[len(home):] if word.startswith(home + "/") else word)
    return " ".join(word if word.startswith("$") or "$" in word else shlex.quote(word) for word in kept)


def card_evaluations(model: ClassifierWrapper, test_sets: Sequence[ImageDataset], evaluation: EvaluationConfig,
                     attacked_sets: Optional[int] = None,
                     progress: Optional[ProgressCallback] = None) -> tuple[dict[str, Any], ...]:
    """The card's evaluations, in order (the first is its headline): each test set clean, and under the
    evaluation's attack for the first `attacked_sets` of them (all when None)."""
    attacked = len(test_sets) if attacked_sets is None else attacked_sets
    return tuple(evaluation_study(model, test_set, evaluation if index < attacked else
                                  dataclasses.replace(evaluation, attack=None), progress=progress).card_entry()
                 for index, test_set in enumerate(test_sets))


@dataclass(frozen=True)
class TrainingRequest:
    """A model to train and describe: its id, data, architecture and recipe, and where its card's figures come
    from (`eval_data`: dataset specs whose test splits are scored in order; empty: the training data's)."""

    model_id: str
    dataset: str
    architecture: str
    config: TrainConfig
    data_dir: Optional[str] = None
    spurious: Optional[str] = None
    spurious_strength: float = 0.95
    train_n: Optional[int] = None
    eval_data: tuple[str, ...] = ()
    evaluation: EvaluationConfig = EvaluationConfig()
    attacked_sets: Optional[int] = None
    weights_dtype: str = "float32"
    description: str = ""
    command: str = ""
    # a shipped model (of the same architecture and dataset) whose weights the run starts from instead of the seed's:
    # a recipe that continues another model's training
    init_from: Optional[str] = None

    def __post_init__(self) -> None:
        require_model_id(self.model_id)


def train_model(request: TrainingRequest, *, checkpoint: Optional[Path] = None,
                progress: Optional[ProgressCallback] = None) -> LoadedModel:
    """Train the request's model (resuming from `checkpoint` when it exists), round its weights to the shipped
    precision, and measure its card on the rounded weights."""
    config = request.config
    # the start model first: a wrong architecture is refused before the training split loads (a minute on CIFAR-10)
    start = _start_model(request) if request.init_from else None
    train_set = load_dataset(request.dataset, "train", root=request.data_dir, spurious=request.spurious,
                             spurious_strength=request.spurious_strength, n=request.train_n, seed=config.seed)
    mean, std = channel_statistics(train_set)
    card = ModelCard(id=request.model_id, dataset=request.dataset, architecture=request.architecture,
                     input_shape=train_set.image_shape, class_names=train_set.class_names,
                     mean=tuple(mean), std=tuple(std))
    # the initial weights from the run's seed, never the process's global generator: a re-run repeats exactly
    model = build_model(card)
    reinitialize(model.network, torch.Generator().manual_seed(config.seed))
    if start is not None:
        _start_from(model, card, start, request.init_from)
    history = train(model, train_set, config, progress=progress, checkpoint=checkpoint)
    round_weights(model, request.weights_dtype)  # measured as shipped
    seconds = sum(history.epoch_seconds)  # every epoch's own time, those before a resume included
    n = request.evaluation.n
    test_sets = ([test_split(spec, n=n, image_shape=train_set.image_shape) for spec in request.eval_data]
                 if request.eval_data else [test_split(request.dataset, request.data_dir, n=n)])
    evaluations = card_evaluations(model, test_sets, request.evaluation, request.attacked_sets)
    card = dataclasses.replace(
        card, description=request.description, evaluations=evaluations,
        training={**dataclasses.asdict(config), "eps_meaning": config.eps_meaning, "train_set": train_set.name, "train_source": train_set.source,
                  "train_n": len(train_set), "seconds": round(seconds, 1), "history": history.to_dict(),
                  "weights_dtype": request.weights_dtype, "command": portable_command(request.command),
                  **({"init_from": request.init_from} if request.init_from else {})})
    return LoadedModel(model, card)


def _start_model(request: TrainingRequest) -> LoadedModel:
    """The shipped model `--init-from` names, refused at once when its architecture is not the request's."""
    start = load_model_and_card(request.init_from)
    if start.card.architecture != request.architecture:
        raise SiaError(f"--init-from {request.init_from}: its architecture differs from the model being trained "
                       f"({start.card.architecture}, not {request.architecture}).")
    return start


def _start_from(model: ClassifierWrapper, card: ModelCard, start: LoadedModel, init_from: str) -> None:
    """Copy the start model's weights into `model`, which must match it: same classes and input."""
    mismatch = [name for name, ours, theirs in (
        ("classes", tuple(card.class_names), tuple(start.card.class_names)),
        ("input shape", tuple(card.input_shape), tuple(start.card.input_shape))) if ours != theirs]
    if mismatch:
        raise SiaError(f"--init-from {init_from}: its {', '.join(mismatch)} differ from the model being trained.")
    model.network.load_state_dict(start.model.network.state_dict())


def compact_model(model_spec: str, dtype: str, command: str) -> tuple[ModelCard, tuple[dict[str, Any], ...]]:
    """Store a shipped model's weights in `dtype` and measure every evaluation on its card again with the rounded
    weights (same test set, attack, eps and steps); the new card keeps the figures measured before. Returns the
    new card and the evaluations before."""
    loaded = load_model_and_card(model_spec)
    card, model = loaded.card, loaded.model
    if (card.training or {}).get("weights_dtype", "float32") == dtype:
        raise SiaError(f"{card.id} is already stored in {dtype}.")
    round_weights(model, dtype)
    evaluations = []
    for before in card.evaluations:
        test_set = test_split(card.dataset, image_shape=model.input_shape)
        if test_set.name != before["test_set"] or len(test_set) < before["n"]:
            raise SiaError(f"{card.id}: cannot re-create its test set {before['test_set']} ({before['n']} images) "
                           f"here; found {test_set.name} ({len(test_set)}).")
        config = EvaluationConfig(attack=before.get("attack"), eps=before.get("eps") or 0.0,
                                  steps=before.get("steps") or 20, n=before["n"])
        evaluations.append(evaluation_study(model, test_set, config).card_entry())
    training = {**(card.training or {}), "weights_dtype": dtype, "compacted_by": command,
                "evaluations_before_compaction": list(card.evaluations)}
    compacted = dataclasses.replace(card, training=training, evaluations=tuple(evaluations))
    save_model(model, compacted, model_folder(model_spec), dtype=dtype)
    return compacted, card.evaluations


def add_card_evaluation(model_spec: str, test_set: ImageDataset, config: EvaluationConfig, command: str) -> ModelCard:
    """Measure a shipped model once more (another radius or test set) and append the entry to its card, with the
    command that measured it; the card's first entry stays its headline."""
    loaded = load_model_and_card(model_spec)
    entry = {**evaluation_study(loaded.model, test_set, config).card_entry(), "command": portable_command(command)}
    card = dataclasses.replace(loaded.card, evaluations=(*loaded.card.evaluations, entry))
    dtype = (card.training or {}).get("weights_dtype", "float32")
    save_model(loaded.model, card, model_folder(model_spec), dtype=dtype)
    return card


def constructed_set_model_card(model: ClassifierWrapper, model_id: str, dataset_spec: str, train_set_label: str,
                               architecture: str, epochs: int, seed: int, weights_dtype: str, command: str,
                               evaluation: dict[str, Any]) -> ModelCard:
    """The card of a model trained on a constructed set, with its score on the original test set."""
    return ModelCard(id=model_id, dataset=dataset_spec, architecture=architecture, input_shape=model.input_shape,
                     class_names=model.class_names, mean=tuple(model.mean.flatten().tolist()),
                     std=tuple(model.std.flatten().tolist()),
                     training={"recipe": "standard", "train_set": train_set_label, "epochs": epochs, "seed": seed,
                               "weights_dtype": weights_dtype, "command": command},
                     evaluations=(evaluation,))
