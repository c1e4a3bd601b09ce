"""The shared sidebar: choose a dataset and a model, see the model card.

Returns a `Selection` every page uses; a bad choice shows a clear message and falls back to the
embedded default so nothing already computed is lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import streamlit as st

from sia_app import cache
from sia_app.navigation import CURRENT_PAGE_KEY
from sia_core.data.base import ImageDataset
from sia_core.data.catalog import DATASETS
from sia_core.errors import SiaError
from sia_core.models.registry import ModelCard
from sia_core.models.wrapper import ClassifierWrapper

DEFAULT_DATASET = "fashion-mnist-subset"  # ships with the app, so the first page works with nothing else
DEFAULT_MODEL_ID = "fmnist-standard"


PERSISTED_PREFIX = "_kept_"
SIDEBAR_PAGE_KEY = "_sidebar_page"


def _restore(key: str, page_changed: bool) -> None:
    """Widgets with the same key on two pages are two widgets to Streamlit, and the new page's widget starts
    from its default: on a page change (and whenever the key is missing) copy the last kept value back in
    before drawing, so the sidebar choice follows the user from lens to lens."""
    kept = PERSISTED_PREFIX + key
    if kept in st.session_state and (page_changed or key not in st.session_state):
        st.session_state[key] = st.session_state[kept]


def _keep(key: str) -> None:
    st.session_state[PERSISTED_PREFIX + key] = st.session_state.get(key)


@dataclass(frozen=True)
class Selection:
    dataset: ImageDataset
    dataset_key: str
    model: ClassifierWrapper
    model_key: str
    card: ModelCard


def _load_dataset(page_changed: bool) -> tuple[ImageDataset, str]:
    _restore("dataset_choice", page_changed)
    labels = DATASETS.labels()
    name = st.sidebar.selectbox("Dataset", DATASETS.names(), format_func=labels.__getitem__, key="dataset_choice",
                                on_change=_keep, args=("dataset_choice",),
                                help="Images the lenses work on. The embedded subset needs nothing else.")
    _keep("dataset_choice")
    entry = DATASETS[name]
    root: Optional[str] = None
    if "path_label" in entry.traits:
        key = f"{name}_root"
        _restore(key, page_changed)
        if entry.traits.get("default_root") is not None:
            st.session_state.setdefault(key, str(entry.traits["default_root"]))
        root = st.sidebar.text_input(entry.traits["path_label"], key=key,
                                     placeholder=entry.traits.get("path_placeholder", "")) or None
        _keep(key)
    n = entry.traits.get("app_test_n")
    try:
        return cache.cached_dataset(name, root, n), f"{name}|{root}|{n}"
    except SiaError as error:
        st.sidebar.error(f"{error} Showing the embedded Fashion-MNIST subset instead.")
        return cache.cached_dataset(DEFAULT_DATASET), f"{DEFAULT_DATASET}|None|None"


def compatible_cards(dataset: ImageDataset) -> list[ModelCard]:
    """Shipped models whose input shape and class count fit the dataset."""
    cards = [ModelCard.from_dict(data) for data in cache.cached_model_cards()]
    return [c for c in cards if c.input_shape == dataset.image_shape and len(c.class_names) == dataset.num_classes]


def render_model_card(card: ModelCard) -> None:
    with st.sidebar.expander("Model card", expanded=True):
        st.markdown(f"**{card.id}** · `{card.architecture}` · trained on **{card.dataset}**")
        if card.description:
            st.caption(card.description)
        training = card.training
        if training:
            recipe = training.get("recipe", "?")
            detail = f" at L∞ ε = {training.get('eps')}" if recipe != "standard" else ""
            st.markdown(f"Recipe: **{recipe}**{detail}, {training.get('epochs')} epochs, seed {training.get('seed')}")
        for evaluation in card.evaluations:
            lines = [f"Clean accuracy: **{evaluation['clean_accuracy']:.1%}**"]
            if evaluation.get("robust_accuracy") is not None:
                lines.append(f"Robust accuracy ({evaluation['attack']}, ε = {evaluation['eps']}, "
                             f"{evaluation['steps']} steps): **{evaluation['robust_accuracy']:.1%}**")
            st.markdown("  \n".join(lines))
            st.caption(f"Measured by this repo's evaluation code on {evaluation['n']} images of {evaluation['test_set']}.")
        if training.get("command"):
            st.code(training["command"], language="bash", wrap_lines=True)


def _custom_weights(card: ModelCard) -> Optional[ClassifierWrapper]:
    with st.sidebar.expander("Use your own weights"):
        st.caption(f"A state_dict for the `{card.architecture}` architecture of {card.id} "
                   "(.safetensors, or .pt/.pth loaded with weights_only=True).")
        upload = st.file_uploader("Weights file", type=["safetensors", "pt", "pth"], key="custom_weights")
    if upload is None:
        return None
    data = upload.getvalue()
    try:
        return cache.cached_custom_model(json.dumps(card.to_dict()), cache.digest(data), data, Path(upload.name).suffix)
    except SiaError as error:
        st.sidebar.error(f"{error} Keeping the shipped weights of {card.id}.")
        return None


def render_sidebar() -> Optional[Selection]:
    """Draw the sidebar and return the current selection, or None when no model fits the dataset."""
    page_changed = st.session_state.get(SIDEBAR_PAGE_KEY) != st.session_state.get(CURRENT_PAGE_KEY)
    st.session_state[SIDEBAR_PAGE_KEY] = st.session_state.get(CURRENT_PAGE_KEY)
    dataset, dataset_key = _load_dataset(page_changed)
    cards = compatible_cards(dataset)
    if not cards:
        st.sidebar.warning(f"No shipped model takes {dataset.image_shape} images with {dataset.num_classes} classes.")
        return None
    ids = [card.id for card in cards]
    standard = [i for i, model_id in enumerate(ids) if model_id.endswith("-standard")]
    default = ids.index(DEFAULT_MODEL_ID) if DEFAULT_MODEL_ID in ids else (standard[0] if standard else 0)
    _restore("model_id", page_changed)
    if st.session_state.get("model_id") not in ids:
        st.session_state["model_id"] = ids[default]
    model_id = st.sidebar.selectbox("Model", ids, key="model_id")
    _keep("model_id")
    card = cards[ids.index(model_id)]
    try:
        model = cache.cached_model(model_id)
    except SiaError as error:
        st.sidebar.error(str(error))
        return None
    custom = _custom_weights(card)
    model_key = model_id
    if custom is not None:
        model, model_key = custom, custom.model_id
        st.sidebar.success(f"Using uploaded weights: {custom.model_id}")
    render_model_card(card)
    return Selection(dataset=dataset, dataset_key=dataset_key, model=model, model_key=model_key, card=card)


def require_selection() -> Selection:
    """The sidebar's selection, or a note and a stop when no model fits the chosen dataset."""
    selection = render_sidebar()
    if selection is None:
        st.info("Choose a dataset and a model that fits it in the sidebar.")
        st.stop()
    return selection
