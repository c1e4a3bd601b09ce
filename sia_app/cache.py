"""The app's caching policy, in one place.

Models and datasets are shared read-only resources (`st.cache_resource`, bounded, keyed by id
strings and paths); computed results use `st.cache_data` keyed by explicit strings, never tensors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

import streamlit as st
import torch

# the engine is imported here, when the server starts, not inside a session: two sessions' first imports race
from sia_app.launch import LaunchConfig, launch_config
from sia_app.uploads import is_digest, modified_time
from sia_core.claims import Scorecard, kendall_tau_ci
from sia_core.data.archive import extract_image_archive
from sia_core.data.base import ImageDataset
from sia_core.data.folders import matched_to_classes
from sia_core.data.imagenet import with_model_labels
from sia_core.diagnosis import DiagnosisConfig, DiagnosisReport, diagnose
from sia_core.errors import SiaError
from sia_core.features import (ConstructedSet, ConstructionConfig, FeatureTrainingConfig, FeatureTrainingResult,
                               FeatureTransferConfig, TransferPoint, build_constructed_set, train_on_constructed,
                               transfer_study)
from sia_core.keypoints.faces import face_detector
from sia_core.keypoints.regions import KeypointRegionsReport, keypoint_region_panel, keypoint_regions_study
from sia_core.keypoints.wrapper import KeypointWrapper
from sia_core.margins import (InputMarginEstimator, MarginStudy, PseudoMarginStudy, ZooReport,
                              adversarial_at_margin, margin_study, pseudo_margin_study)
from sia_core.models.measured import measured_card
from sia_core.models.registry import (MODEL_SOURCES, LoadedModel, ModelCard, list_model_cards,
                                      load_model_and_card, with_dataset_class_names)
from sia_core.models.user_models import ModelOptions
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.paths import PRECOMPUTED_DIR
from sia_core.progress import ProgressCallback
from sia_core.regions.neutralization import NeutralizationConfig, RegionsReport, neutralization_study
from sia_core.regions.importance import default_cam_layer
from sia_core.regions.panel import region_panel
from sia_core.resolve import test_split, training_split
from sia_core.results_io import SavedResult, load_result
from sia_core.robustify import IMBALANCE_METHODS, ImbalanceConfig, ImbalanceReport, run_imbalance_study


def cached_launch_config() -> LaunchConfig:
    """The models and datasets the person who started the server named. Read on every run (a few bytes of argv
    and one small file), so an edited config file shows on the next rerun."""
    return launch_config()


@st.cache_resource(max_entries=6, show_spinner="Loading model…")
def _cached_load(spec: str, options_key: str, _options: ModelOptions) -> LoadedModel:
    return load_model_and_card(spec, _options)


def cached_loaded_model(model_id: str) -> LoadedModel:
    """A shipped model by id, or one the operator named at start-up by its spec (never a spec from a visitor: the
    launch config is the only source of specs that run code)."""
    operator_model = cached_launch_config().model(model_id)
    if operator_model is not None:
        options = operator_model.options
        loaded = _cached_load(operator_model.spec, json.dumps(options.to_dict(), sort_keys=True), options)
        # the dataset the operator named with the model is its own: the lenses that need a training split read it.
        # Named by its spec, the key the sidebar finds it by: a folder's card.json may name it anything, a shipped
        # model's id included, whose caches it would then share
        card = dataclasses.replace(loaded.card, id=operator_model.spec, dataset=operator_model.data or "")
        model = loaded.model
        if not model.model_id.startswith(operator_model.spec):
            model = model.with_model_id(operator_model.spec)
        return LoadedModel(model, card)
    if ":" in model_id:
        raise SiaError(f"{model_id!r} is not a model this server was started with.")
    return _cached_load(model_id, "{}", ModelOptions())


def cached_model(model_id: str) -> ClassifierWrapper:
    return cached_loaded_model(model_id).model


def cached_named_model(model_id: str, class_names: tuple[str, ...]) -> LoadedModel:
    """`cached_loaded_model`, with the dataset's class names when the model's were only numbered (a new wrapper
    around the same cached network: nothing is copied)."""
    return with_dataset_class_names(cached_loaded_model(model_id), class_names)


@st.cache_resource(max_entries=8, show_spinner="Resizing the images to the model's input…")
def cached_resized(dataset_key: str, image_shape: tuple[int, int, int], _dataset: ImageDataset) -> ImageDataset:
    return _dataset.resized(image_shape)


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_model_labelled(dataset_key: str, model_key: str, _dataset: ImageDataset,
                          _model: ClassifierWrapper) -> ImageDataset:
    """A dataset whose photos without a human label take the model's own prediction as their reference label
    (attribute `label_is_prediction`); shared read-only, keyed by the dataset and the model."""
    bar, progress = _progress_bar("Labelling the photos without a label by the model's prediction…", _images_done)
    predictions = _model.logits(_dataset.images, progress=progress).argmax(1)
    bar.empty()
    return with_model_labels(_dataset, predictions)


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_class_matched(dataset_key: str, class_names: tuple[str, ...],
                         _dataset: ImageDataset) -> tuple[Optional[ImageDataset], Optional[str]]:
    """A folder's dataset with its labels in the model's class order where the names match (`matched_to_classes`;
    None where nothing changed), and the warning where they do not; shared read-only, keyed by the dataset and the
    model's class names."""
    matched, mismatch = matched_to_classes(_dataset, class_names)
    return (None if matched is _dataset else matched), mismatch


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_model_keypoints(dataset_key: str, model_key: str, _dataset: ImageDataset,
                           _model: KeypointWrapper) -> ImageDataset:
    """A dataset without landmarks whose reference points are the keypoint model's own on the clean images (said by
    `keypoint_reference`); shared read-only, keyed by the dataset and the model."""
    with st.spinner("Placing the model's own points as the reference…"):
        points = _model.points(_dataset.images)
    return dataclasses.replace(_dataset, keypoints=points, point_names=_model.point_names,
                               keypoint_reference="model prediction")


@st.cache_resource(max_entries=1, show_spinner="Loading the face detector (MTCNN)…")
def cached_face_detector():
    return face_detector()


@st.cache_data(max_entries=16, show_spinner=False)
def cached_keypoint_panel(model_key: str, image_key: str, fraction: float, eps: float, steps: int,
                          _model: KeypointWrapper, _image: torch.Tensor, _reference: torch.Tensor):
    """RoI and RoA of one image of a keypoint model (`sia_core.keypoints.regions`)."""
    bar, progress = _progress_bar("Computing the maps…", _stage, even_steps=False)
    panel = keypoint_region_panel(_model, _image, _reference, fraction=fraction, eps=eps, steps=steps,
                                  progress=progress)
    bar.empty()
    return panel


@st.cache_data(max_entries=4, show_spinner=False)
def cached_keypoint_regions(model_key: str, dataset_key: str, n: int, fraction: float, eps: float, steps: int,
                            _model: KeypointWrapper, _dataset: ImageDataset) -> KeypointRegionsReport:
    bar, progress = _progress_bar("Mapping RoI and RoA over the images…", _stage, even_steps=False)
    report = keypoint_regions_study(_model, _dataset.images[:n], _dataset.keypoints[:n], dataset=_dataset.name,
                                    fraction=fraction, eps=eps, steps=steps, progress=progress)
    bar.empty()
    return report


@st.cache_data(max_entries=32, show_spinner=False)
def cached_measured_card(model_key: str, dataset_key: str, _loaded: LoadedModel, _dataset: ImageDataset) -> dict:
    """A user model's card with its clean accuracy measured on this dataset (kept on disk for the next start)."""
    bar, progress = _progress_bar("Measuring the model on the first images…",
                                  lambda step, total, info: f"batch {step}/{total}")
    card = measured_card(_loaded, _dataset, dataset_key, progress=progress).to_dict()
    bar.empty()
    return card


UPLOADS_ROOT = Path(tempfile.gettempdir()) / "sia-explorer-uploads"


def upload_folder_name(file_name: str) -> str:
    """An archive's name as the folder it unpacks into (letters, digits, '-', '_', '.'; at most 60): the dataset
    box and captions show it, where the digest above it would mean nothing."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(file_name).name)[:60].strip("._")
    return stem or "upload"


def uploaded_archive_name(spec: str) -> Optional[str]:
    """The archive name of an uploaded folder's spec (imagefolder:<uploads>/<digest>/<name>), else None."""
    kind, _, path = spec.partition(":")
    folder = Path(path)
    return folder.name if kind == "imagefolder" and folder.parent.parent == UPLOADS_ROOT else None


@st.cache_resource(max_entries=8, show_spinner="Checking and unpacking the archive…")
def cached_uploaded_folder(archive_digest: str, file_name: str, _data: bytes) -> str:
    """An uploaded .zip of an image folder, checked against the archive limits and unpacked into a server
    temporary folder named by its digest and its name (the same upload is unpacked once)."""
    destination = UPLOADS_ROOT / archive_digest / upload_folder_name(file_name)
    if not destination.is_dir():
        extract_image_archive(_data, destination)
        prune_uploaded_folders(keep=destination.parent)
    return str(destination)


KEEP_UPLOADED_FOLDERS = 50  # unpacked archives kept on the server; older ones go (a session re-uploads to reopen)


def prune_uploaded_folders(keep: Path, limit: int = KEEP_UPLOADED_FOLDERS) -> None:
    """Remove all but the newest `limit` unpacked archives (never `keep`, the one just unpacked): each can hold up
    to a gigabyte, and they had piled up without end. Only 64-hex-digit folders under the uploads root are touched."""
    folders = sorted((folder for folder in UPLOADS_ROOT.iterdir()
                      if folder.is_dir() and is_digest(folder.name) and folder != keep), key=modified_time)
    for old in folders[:max(0, len(folders) - (limit - 1))]:
        shutil.rmtree(old, ignore_errors=True)


@st.cache_resource(max_entries=4, show_spinner="Loading your weights…")
def cached_custom_model(card_json: str, weights_digest: str, _weights: bytes, suffix: str,
                        name: Optional[str] = None) -> LoadedModel:
    """A shipped architecture with user-supplied weights, and its card (no evaluations: they were the shipped
    weights'); keyed by the card and the file's digest."""
    card = ModelCard.from_dict(json.loads(card_json))
    return MODEL_SOURCES.build("weights", card=card, weights=_weights, suffix=suffix, file_name=name)


@st.cache_resource(max_entries=4, show_spinner="Loading dataset…")
def cached_dataset(name: str, root: Optional[str] = None, n: Optional[int] = None) -> ImageDataset:
    return test_split(name, root, n=n)


@st.cache_resource(max_entries=2, show_spinner="Loading the training split…")
def cached_train_split(name: str, root: Optional[str] = None,
                       image_shape: Optional[tuple[int, int, int]] = None) -> ImageDataset:
    """A training split (60,000 Fashion-MNIST images are 190 MB), as `image_shape` (a model's input) when given:
    shared by every session, at most two held. Raises, saying what to give, where the dataset has none."""
    return training_split(name, root, image_shape=image_shape, required=True)  # type: ignore[return-value]


def cached_optional_train_split(name: str, image_shape: Optional[tuple[int, int, int]] = None) -> Optional[ImageDataset]:
    """`cached_train_split`, or None where the dataset has no training split at hand."""
    try:
        return cached_train_split(name, image_shape=image_shape)
    except SiaError:
        return None


@st.cache_data(max_entries=8, show_spinner=False)
def cached_model_cards() -> list[dict]:
    return [card.to_dict() for card in list_model_cards()]


@st.cache_data(max_entries=16, show_spinner=False)
def cached_predictions(model_key: str, dataset_key: str, _model: ClassifierWrapper,
                       _dataset: ImageDataset) -> tuple[torch.Tensor, float]:
    """Probabilities for the whole dataset and the accuracy, keyed by the model and dataset keys."""
    bar, progress = _progress_bar("Classifying…", _images_done)
    probabilities = _model.predict_proba(_dataset.images, progress=progress)
    bar.empty()
    accuracy = float((probabilities.argmax(1) == _dataset.labels).float().mean()) if len(_dataset) else 0.0
    return probabilities, accuracy


@st.cache_resource(max_entries=16, show_spinner=False)
def shipped_result(kind: str, model_id: str) -> Optional[SavedResult]:
    """The file `scripts/precompute.py` wrote for this page kind and shipped model (or world), or None."""
    path = PRECOMPUTED_DIR / f"{kind}-{model_id}.json.gz"
    if ":" in model_id or "/" in model_id or not path.is_file():
        return None
    try:
        return load_result(path)
    except SiaError:
        return None  # an unreadable file: the page offers the live run instead


def shipped_zoo(world: str) -> Optional[SavedResult]:
    """The zoo `scripts/precompute.py zoo` shipped for a world, or None."""
    stored = shipped_result("zoo", world)
    return stored if stored is not None and isinstance(stored.result, ZooReport) else None


@st.cache_data(max_entries=8, show_spinner=False)
def shipped_study(name: str) -> Optional[dict]:
    """A plain-JSON study a script of its own ships in assets/precomputed (e.g. "imbalance-ablation-fashion-mnist",
    "cifar10-study"), or None when it is missing or unreadable. Callers get their own copy."""
    path = PRECOMPUTED_DIR / f"{name}.json"
    if "/" in name or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@st.cache_resource(max_entries=4, show_spinner=False)
def shipped_scorecard(world: str) -> Optional[Scorecard]:
    """The claims scorecard `scripts/precompute.py claims` shipped for a world, or None."""
    path = PRECOMPUTED_DIR / f"claims-{world}.json"
    if "/" in world or not path.is_file():
        return None
    try:
        return Scorecard.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a file from another version: the page says the scorecard is missing


def precomputed(kind: str, model_key: str, dataset_key: str, config: Any) -> Optional[SavedResult]:
    """The result `scripts/precompute.py` shipped for this page, model, dataset and settings, or None."""
    stored = shipped_result(kind, model_key)
    if stored is None or stored.dataset_key != dataset_key or stored.config != config:
        return None
    return stored


def precomputed_note(stored: SavedResult) -> None:
    st.caption(f"Precomputed by `{stored.command}` on {stored.created} with these settings; press the button "
               "above to compute it live.")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@st.cache_data(max_entries=64, show_spinner=False)
def cached_region_maps(model_key: str, dataset_key: str, index: int, roi_method: str, roi_options_json: str,
                       roa_method: str, target: str, _model: ClassifierWrapper, _image: torch.Tensor,
                       label: int) -> dict:
    """RoI and RoA maps of one image, keyed by strings; the top-q threshold is applied outside, so moving
    the q slider never recomputes them."""
    explained: str | int = int(target) if target.isdigit() else target
    bar, progress = _progress_bar("Computing the maps…", lambda step, total, info: info["stage"], even_steps=False)
    panel = region_panel(_model, _image, label, roi_method=roi_method, roa_method=roa_method, target=explained,
                         roi_options=json.loads(roi_options_json), progress=progress)
    bar.empty()
    return {"importance": panel.importance, "attack": panel.attack, "explained_class": panel.explained_class,
            "importance_layer": panel.importance_layer,
            "adversarial_prediction": panel.adversarial_prediction}


@st.cache_data(max_entries=16, show_spinner=False)
def cached_cam_layer(model_key: str, _model: ClassifierWrapper) -> str:
    """Grad-CAM's default layer for a model (one probe forward, so once per model)."""
    return default_cam_layer(_model)


def remember_run(state_key: str, run_key: str, *, just_ran: bool, keep: int = 4) -> bool:
    """Whether this session asked for the run `run_key`: now (`just_ran`) or among its last `keep` runs.

    Session state keeps only these short keys; the results stay in a bounded `st.cache_data`, so a page
    asks the cache again (a hit, or a recomputation if it was evicted) instead of holding them itself.
    """
    runs: list[str] = st.session_state.setdefault(state_key, [])
    if just_ran:
        if run_key in runs:
            runs.remove(run_key)
        runs.append(run_key)
        del runs[:-keep]
    return run_key in runs


def _progress_bar(text: str, describe: Callable[[int, int, dict], str], *,
                  even_steps: bool = True) -> tuple[Any, ProgressCallback]:
    """A progress bar drawn inside a cached function (so a hit replays it, instantly) and the engine callback
    that moves it; `describe(step, total, info)` writes its text, followed by the time so far and, for steps of
    about one length (`even_steps`: batches of images), the time left as measured so far on this machine. Stages
    of unequal length (an attack per attribute, then the joint one) promise no time left: a "9 s left" held for
    minutes reads as a hang."""
    bar = st.progress(0.0, text=f"{text} (the time left shows after the first step)" if even_steps else
                      f"{text} (its steps differ in length, so it shows the time so far, not the time left)")
    started = time.perf_counter()

    def report(step: int, total: int, info: dict) -> None:
        elapsed = time.perf_counter() - started
        left = elapsed / max(step, 1) * (total - step)
        bar.progress(step / total, text=f"{describe(step, total, info)} · {elapsed:.0f} s so far"
                                        + (f", about {left:.0f} s left" if even_steps else ""))
    return bar, report


def _images_done(step: int, total: int, info: dict) -> str:
    return f"{info['images']:,} images"


def _stage(step: int, total: int, info: dict) -> str:
    return f"{step} of {total} steps done (the last: {info['stage']})"


@st.cache_data(max_entries=4, show_spinner=False)
def cached_neutralization_study(model_key: str, dataset_key: str, config_key: str, _model: ClassifierWrapper,
                                _dataset: ImageDataset, _config: NeutralizationConfig) -> RegionsReport:
    """The RoI vs RoA study and neutralization table (`sia_core.regions.neutralization`), keyed by
    `config_key`, a string that names every field of `_config`."""
    bar, progress = _progress_bar("Running…", _stage, even_steps=False)
    report = neutralization_study(_model, _dataset, _config, progress=progress)
    bar.empty()
    return report


@st.cache_data(max_entries=4, show_spinner=False)
def cached_imbalance_study(world: str, config_key: str, _config: ImbalanceConfig) -> ImbalanceReport:
    """The imbalance study (`sia_core.robustify`) on `world`'s training split, scored on its test split, keyed by
    `config_key`, a string naming every field."""
    train_set = cached_train_split(world)
    test_set = test_split(world)
    labels = IMBALANCE_METHODS.labels()
    bar, progress = _progress_bar("Training…", lambda step, total, info: (
        f"{step} of {total} runs done (the last: {labels.get(info['method'], info['method'])}, seed {info['seed']})"),
        even_steps=False)
    report = run_imbalance_study(train_set, test_set, _config, progress=progress)
    bar.empty()
    return report


@st.cache_data(max_entries=4, show_spinner=False)
def cached_diagnosis(model_key: str, dataset_key: str, config_key: str, _model: ClassifierWrapper,
                     _dataset: ImageDataset, _config: DiagnosisConfig) -> DiagnosisReport:
    """The SIA diagnosis (`sia_core.diagnosis`) without the joint attack's images, keyed by `config_key`."""
    bar, progress = _progress_bar("Diagnosing…", _stage, even_steps=False)
    report = diagnose(_model, _dataset, _config, progress=progress)
    bar.empty()
    return dataclasses.replace(report, joint=None)  # the per-image attack results are not shown: keep the entry small


# --- margins and features (pages/margins.py, pages/features.py) ------------------------------------------------


@st.cache_data(max_entries=6, show_spinner=False)
def cached_margin_study(model_id: str, dataset_key: str, n: int, norm: str, _model: ClassifierWrapper,
                        _dataset: ImageDataset) -> MarginStudy:
    """Scores and input margins of the first `n` images of the dataset `dataset_key`, in `norm`."""
    bar, progress = _progress_bar(f"Input margins of {model_id}…",
                                  lambda step, total, info: f"{model_id}: {info['images']} images")
    study = margin_study(_model, _dataset.images[:n], _dataset.labels[:n], norm=norm,  # type: ignore[arg-type]
                         estimator=InputMarginEstimator(norm=norm), dataset=_dataset.name,  # type: ignore[arg-type]
                         progress=progress)
    bar.empty()
    return study


@st.cache_data(max_entries=16, show_spinner=False)
def cached_tau_interval(study_key: str, _study: MarginStudy) -> tuple[float, float]:
    """The 95% interval of a margin study's Kendall τ (a bootstrap over its images: about a second at N = 2,000),
    once per study rather than on every slider move of the page."""
    return kendall_tau_ci(_study.input.margins.double().numpy(), _study.scores.logit_margin.double().numpy())


@st.cache_data(max_entries=64, show_spinner="Finding the image at the margin…")
def cached_adversarial_at_margin(model_id: str, dataset_key: str, index: int, norm: str, _model: ClassifierWrapper,
                                 _image: torch.Tensor) -> torch.Tensor:
    """The flip at the margin of image `index`, for a shipped study saved without its images."""
    return adversarial_at_margin(_model, _image, norm)  # type: ignore[arg-type]


@st.cache_data(max_entries=8, show_spinner="Input margins of the held-out images, then training…")
def cached_pseudo_margin_study(model_id: str, dataset_key: str, n: int, norm: str, source: str, fit_n: int,
                               eps: float, _model: ClassifierWrapper, _dataset: ImageDataset, _study: MarginStudy,
                               training_split: str) -> PseudoMarginStudy:
    """The pseudo-margin of the margin study (model_id, dataset_key, n, norm), learned from `source` on `fit_n`
    held-out images of the training split `training_split` (or of the test set after the first n without one)."""
    train_set = cached_optional_train_split(training_split, image_shape=_model.input_shape)
    return pseudo_margin_study(_model, _study, _dataset.images, train_set=train_set,
                               estimator=InputMarginEstimator(norm=norm), fit_n=fit_n,  # type: ignore[arg-type]
                               source=source, eps=eps)  # type: ignore[arg-type]


def constructed_set_key(config_key: str, model_id: str, train_name: str) -> str:
    """The key of a built set: its construction (`ConstructionConfig` as sorted JSON), source model and split."""
    return f"build|{model_id}|{train_name}|{config_key}"


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_constructed_set(config_key: str, model_id: str, train_name: str, _model: ClassifierWrapper,
                           _train_set: ImageDataset) -> ConstructedSet:
    """A constructed set built from `_model` on the training split `train_name`; `config_key` is the
    `ConstructionConfig` as sorted JSON. A shared resource, not copied per read: 10,000 images are large."""
    bar, progress = _progress_bar("Building…", lambda step, total, info: f"{info['built']} images")
    built = build_constructed_set(_model, _train_set, ConstructionConfig(**json.loads(config_key)), progress=progress)
    bar.empty()
    return built


@st.cache_resource(max_entries=4, show_spinner="Loading the constructed set…")
def cached_constructed_file(path: str, modified_ns: int, size: int) -> ConstructedSet:
    """A constructed set saved by `python -m sia_core features build`, keyed by its path, time and size."""
    return ConstructedSet.load(path)


@st.cache_data(max_entries=8, show_spinner=False)
def cached_feature_training(set_key: str, dataset_key: str, epochs: int, eval_eps: float, eval_n: int,
                            _constructed: ConstructedSet, _test_set: ImageDataset) -> FeatureTrainingResult:
    """A fresh model trained on the constructed set `set_key` and scored on the test set `dataset_key`
    (the model itself is not kept: the page shows its numbers only)."""
    bar, progress = _progress_bar(f"Training on {_constructed.label}…", lambda step, total, info: (
        f"epoch {step}/{total}: test {info['test_accuracy']:.1%}"))
    config = FeatureTrainingConfig(epochs=epochs, eval_eps_l2=eval_eps, eval_n=eval_n)
    _, result = train_on_constructed(_constructed.as_dataset(), _test_set, config, kind=_constructed.config.kind,
                                     progress=progress)
    bar.empty()
    return result


@st.cache_data(max_entries=4, show_spinner=False)
def cached_transfer_study(set_key: str, dataset_key: str, architectures: tuple[str, ...], epochs: int,
                          attack_eps: float, attack_n: int, _source: ClassifierWrapper, _det: ConstructedSet,
                          _train_set: ImageDataset, _test_set: ImageDataset) -> tuple[TransferPoint, ...]:
    """The transfer study of the D̂_det set `set_key` against the test set `dataset_key`."""
    bar, progress = _progress_bar("Training and attacking…",
                                  lambda step, total, info: f"{info['architecture']} done")
    report = transfer_study(_source, _det, _train_set, _test_set, FeatureTransferConfig(
        architectures=architectures, epochs=epochs, attack_eps_l2=attack_eps, attack_n=attack_n), progress=progress)
    bar.empty()
    return report.points
