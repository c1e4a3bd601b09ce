"""The one resolver: a model spec, a data spec and their options become what a study needs — the loaded model
with its card, the test set fitted to the model's input, and the training split where one exists.

The CLI, the app's cache layer and `scripts/precompute.py` all call it; none of them resolves specs itself.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence

from sia_core.data.base import ImageDataset
from sia_core.data.catalog import load_dataset, resolve_dataset
from sia_core.data.folders import matched_to_classes
from sia_core.data.imagenet import has_unlabelled, with_model_labels
from sia_core.errors import ConfigError, SiaError
from sia_core.models.registry import LoadedModel, ModelCard, load_model_and_card, with_dataset_class_names
from sia_core.models.user_models import ModelOptions
from sia_core.models.wrapper import ClassifierWrapper, require_fit

logger = logging.getLogger(__name__)
ImageShape = tuple[int, int, int]
# whether a study needs the training split: not at all, where there is one (else None), or always (else an error)
TrainSplit = Literal["none", "optional", "required"]


@dataclass(frozen=True)
class Subject:
    """What a study runs on: one model with its card, its test set and, when asked for, its training split."""

    loaded: LoadedModel
    test_set: ImageDataset
    dataset_spec: str
    train_set: Optional[ImageDataset] = None

    @property
    def model(self) -> ClassifierWrapper:
        return self.loaded.model

    @property
    def card(self) -> ModelCard:
        return self.loaded.card


def _own_root(dataset_spec: str, data_dir: Optional[str | Path]) -> Optional[str | Path]:
    """A "name:path" spec holds its own folder; a bare name takes `data_dir`."""
    return None if ":" in dataset_spec else data_dir


def test_split(dataset_spec: str, data_dir: Optional[str | Path] = None, *, n: Optional[int] = None,
               image_shape: Optional[ImageShape] = None) -> ImageDataset:
    """The test split of `dataset_spec` (as `image_shape`, a model's input, when given), or the dataset's shipped
    fallback (Fashion-MNIST's embedded subset) when no folder was given and the default one is absent."""
    entry, root = resolve_dataset(dataset_spec, _own_root(dataset_spec, data_dir))
    default_root_absent = root is not None and root == entry.traits.get("default_root") and not root.exists()
    if "test_fallback" in entry.traits and default_root_absent:
        return load_dataset(entry.traits["test_fallback"], n=n, image_shape=image_shape)
    return load_dataset(dataset_spec, "test", root=_own_root(dataset_spec, data_dir), n=n, image_shape=image_shape)


def training_split(dataset_spec: str, data_dir: Optional[str | Path] = None, *,
                   image_shape: Optional[ImageShape] = None, n: Optional[int] = None,
                   required: bool = False) -> Optional[ImageDataset]:
    """The training split of `dataset_spec` as `image_shape`; where it cannot be loaded (an embedded subset has
    none, a folder is missing), None — or, when `required`, an error that says what to give."""
    try:
        return load_dataset(dataset_spec, "train", root=_own_root(dataset_spec, data_dir), n=n,
                            image_shape=image_shape)
    except SiaError as error:
        if required:
            raise type(error)(f"{error} This study trains on the training split: name a dataset that has one, "
                              "e.g. --data cifar10:FOLDER or --data fashion-mnist:FOLDER.") from error
        return None


def resolve(model_spec: str | Path, data_spec: Optional[str] = None, *, options: ModelOptions = ModelOptions(),
            data_dir: Optional[str | Path] = None, n: Optional[int] = None,
            train_split: TrainSplit = "none") -> Subject:
    """The model `model_spec` names (any spec, with its options) and the test set it runs on: `data_spec`, else the
    dataset on the model's card; the first `n` test images when given, fitted to the model's input."""
    loaded = load_model_and_card(model_spec, options)
    dataset_spec = data_spec or loaded.card.dataset
    if not dataset_spec:
        raise ConfigError(f"{loaded.card.id} has no dataset of its own: pass a dataset spec, e.g. mnist:/path/to/data, "
                          "imagefolder:/path/to/images or npz:/path/to/file.npz.")
    test_set = test_split(dataset_spec, data_dir, n=n, image_shape=loaded.model.input_shape)
    if loaded.card.is_keypoints:
        return _keypoint_subject(loaded, test_set, dataset_spec)
    if has_unlabelled(test_set):  # photos no class names: the model's own prediction is their reference label
        test_set = with_model_labels(test_set, loaded.model.logits(test_set.images).argmax(1).cpu())
    loaded = with_dataset_class_names(loaded, test_set.class_names)
    # a folder's classes sort by name: renumbered to the model's order, both splits alike
    test_set, mismatch = matched_to_classes(test_set, tuple(loaded.card.class_names))
    if mismatch:
        logger.warning(mismatch)
    require_fit(loaded.model, test_set)
    train_set = None if train_split == "none" else training_split(
        dataset_spec, data_dir, image_shape=loaded.model.input_shape, required=train_split == "required")
    if train_set is not None:
        train_set, _ = matched_to_classes(train_set, tuple(loaded.card.class_names))
    return Subject(loaded=loaded, test_set=test_set, dataset_spec=dataset_spec, train_set=train_set)


def _keypoint_subject(loaded: LoadedModel, test_set: ImageDataset, dataset_spec: str) -> Subject:
    """A keypoint model's subject: its test set with reference points (the data's landmarks, else the model's own
    points on the clean images, said so), checked to fit."""
    model = loaded.model
    if test_set.keypoints is None:
        test_set = dataclasses.replace(test_set, keypoints=model.points(test_set.images),
                                       point_names=model.point_names, keypoint_reference="model prediction",
                                       source=f"{test_set.source}; reference points: {loaded.card.id}'s own on the "
                                              "clean images")
    marked = model.task.landmarks(test_set.keypoints).shape[1]
    if marked != model.num_points:
        raise ConfigError(f"{loaded.card.id} places {model.num_points} points; {test_set.name} marks {marked} per "
                          "image.")
    if test_set.image_shape != model.input_shape:
        raise ConfigError(f"{loaded.card.id} takes {model.input_shape} images; {test_set.name} has "
                          f"{test_set.image_shape}.")
    return Subject(loaded=loaded, test_set=test_set, dataset_spec=dataset_spec)


def resolve_group(model_specs: Sequence[str | Path], data_spec: Optional[str] = None, *,
                  options: ModelOptions = ModelOptions(), data_dir: Optional[str | Path] = None,
                  n: Optional[int] = None, train_split: TrainSplit = "none") -> tuple[Subject, tuple[LoadedModel, ...]]:
    """Several models on one test set, the first model's (or `data_spec`): the first as a `Subject`, and every
    model (the first included) with the test set's class names, each checked to fit it."""
    if not model_specs:
        raise ConfigError("Name at least one model.")
    first = resolve(model_specs[0], data_spec, options=options, data_dir=data_dir, n=n, train_split=train_split)
    group = [first.loaded]
    for spec in model_specs[1:]:
        loaded = with_dataset_class_names(load_model_and_card(spec, options), first.test_set.class_names)
        require_fit(loaded.model, first.test_set)
        group.append(loaded)
    return first, tuple(group)
