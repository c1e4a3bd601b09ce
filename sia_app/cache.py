"""The app's caching policy, in one place.

Models and datasets are shared read-only resources (`st.cache_resource`, bounded, keyed by id
strings and paths); computed results use `st.cache_data` keyed by explicit strings, never tensors.
"""

from __future__ import annotations

import hashlib
from typing import Optional

import streamlit as st
import torch

from sia_core.data.base import ImageDataset
from sia_core.data.catalog import load_dataset
from sia_core.models.registry import ModelCard, build_model, list_model_cards, load_model, read_state_dict
from sia_core.models.wrapper import ClassifierWrapper


@st.cache_resource(max_entries=6, show_spinner="Loading model…")
def cached_model(model_id: str) -> ClassifierWrapper:
    return load_model(model_id)


@st.cache_resource(max_entries=4, show_spinner="Loading your weights…")
def cached_custom_model(card_json: str, weights_digest: str, _weights: bytes, suffix: str) -> ClassifierWrapper:
    """A registered architecture with user-supplied weights; keyed by the card and the file's digest."""
    import json
    import tempfile
    from pathlib import Path

    card = ModelCard.from_dict(json.loads(card_json))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"weights{suffix}"
        path.write_bytes(_weights)
        state = read_state_dict(path)
    return build_model(ModelCard(**{**card.__dict__, "id": f"{card.id} + uploaded weights {weights_digest[:8]}"}), state)


@st.cache_resource(max_entries=4, show_spinner="Loading dataset…")
def cached_dataset(name: str, root: Optional[str] = None, n: Optional[int] = None) -> ImageDataset:
    return load_dataset(name, "test", root=root, n=n)


@st.cache_data(max_entries=8, show_spinner=False)
def cached_model_cards() -> list[dict]:
    return [card.to_dict() for card in list_model_cards()]


@st.cache_data(max_entries=16, show_spinner="Classifying…")
def cached_predictions(model_key: str, dataset_key: str, _model: ClassifierWrapper,
                       _dataset: ImageDataset) -> tuple[torch.Tensor, float]:
    """Probabilities for the whole dataset and the accuracy, keyed by the model and dataset keys."""
    probabilities = _model.predict_proba(_dataset.images)
    accuracy = float((probabilities.argmax(1) == _dataset.labels).float().mean()) if len(_dataset) else 0.0
    return probabilities, accuracy


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@st.cache_data(max_entries=64, show_spinner="Computing the maps…")
def cached_region_maps(model_key: str, dataset_key: str, index: int, roi_method: str, roi_options_json: str,
                       roa_method: str, target: str, _model: ClassifierWrapper, _image: torch.Tensor,
                       label: int) -> dict:
    """RoI and RoA maps of one image, keyed by strings; the top-q threshold is applied outside, so moving
    the q slider never recomputes them."""
    import json

    from sia_core.regions.panel import region_panel

    explained: str | int = int(target) if target.isdigit() else target
    panel = region_panel(_model, _image, label, roi_method=roi_method, roa_method=roa_method, target=explained,
                         roi_options=json.loads(roi_options_json))
    return {"importance": panel.importance, "attack": panel.attack, "explained_class": panel.explained_class,
            "adversarial_prediction": panel.adversarial_prediction}
