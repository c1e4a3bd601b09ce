"""The shared sidebar: choose a dataset and a model, see the model card.

Returns a `Selection` every page uses; a bad choice shows a clear message and falls back to the
embedded default so nothing already computed is lost.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import streamlit as st

from sia_app import cache, url_state
from sia_app.launch import short_spec
from sia_app.navigation import CURRENT_PAGE_KEY
from sia_core.attacks import attack_label, in_255ths
from sia_core.claims import wilson_interval
from sia_core.data.archive import ArchiveLimits
from sia_core.data.base import ImageDataset
from sia_core.data.catalog import DATASETS
from sia_core.data.imagenet import has_unlabelled
from sia_core.errors import SiaError
from sia_core.models.cards import portable_command
from sia_core.models.architectures import ARCHITECTURES
from sia_core.models.registry import LoadedModel, ModelCard
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.training import RECIPES

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
    # the command line's model arguments for this model: its id, or the shipped id with the user's weights file
    cli_model: str

    @property
    def model_arguments(self) -> str:
        return f"--model {self.cli_model}"


UPLOADS_KEY = "_uploaded_datasets"   # this session's unpacked uploads, as specs (the images stay in the cache)
UPLOAD_ERROR_KEY = "_upload_error"
CUSTOM_WEIGHTS_KEY = url_state.UPLOADED_WEIGHTS_KEY  # {"card", "name", "data"}: the user's weights, across pages
LAST_GOOD_KEY = "_last_good_dataset"  # (choice, root, n) of the last dataset that loaded: the fallback on an error
MAX_UPLOADS = 3


def _said_from_link(what: str, wanted: str, instead: str) -> None:
    # an uploaded folder's spec names a server path: say what it was, not where
    named = ("an uploaded image folder this session does not hold" if str(wanted).startswith("imagefolder:")
             else f"“{str(wanted)[:40]}”, which this server does not offer" + (
                 "" if what == "dataset" else " for this dataset"))
    st.sidebar.warning(f"The link's {what} is {named}: showing {instead} instead.")


def _dataset_label(choice: str) -> str:
    if choice in DATASETS:
        return DATASETS[choice].label
    if (archive := cache.uploaded_archive_name(choice)) is not None:  # read off the spec: no session state
        return f"Uploaded: {archive}"
    if choice in st.session_state.get(UPLOADS_KEY, []):
        return f"Uploaded: {Path(choice.partition(':')[2]).name[:12]}…"
    return f"Yours: {short_spec(choice)}"


def _unpack_upload() -> None:
    """The zip uploader's callback: check and unpack the archive, then choose it (callbacks run before the
    widgets are drawn, so the selectbox can be set here)."""
    upload = st.session_state.get("dataset_zip")
    st.session_state.pop(UPLOAD_ERROR_KEY, None)
    if upload is None:
        return
    data = upload.getvalue()
    folder = ""
    try:
        folder = cache.cached_uploaded_folder(cache.digest(data), upload.name, data)
        # its layout is checked now, and said under the file's name (loaded as the sidebar loads it: one cache entry)
        dataset = cache.cached_dataset(f"imagefolder:{folder}", None, DATASETS["imagefolder"].traits.get("app_test_n"))
    except SiaError as error:
        # the unpacked folder's server path means nothing to the user: the archive's name stands for it
        message = str(error).replace(folder, "the archive") if folder else str(error)
        st.session_state[UPLOAD_ERROR_KEY] = f"{upload.name}: {message}"
        return
    cards = [ModelCard.from_dict(data) for data in cache.cached_model_cards()] + _operator_cards()
    counts = sorted({len(card.class_names) for card in cards if not card.is_keypoints})
    if dataset.num_classes not in counts:
        # selecting it would blank the page (no model to run) and hide what the user computed: it stays unselected
        st.session_state[UPLOAD_ERROR_KEY] = (
            f"{upload.name}: it has {dataset.num_classes} class folders, and the models here classify "
            f"{', '.join(f'{count:,}' for count in counts)} classes. Add or merge class folders to match one of "
            "them, or start the app with a model of your own (`--model`, see the README). Nothing else changed.")
        return
    spec = f"imagefolder:{folder}"
    uploads = [s for s in st.session_state.get(UPLOADS_KEY, []) if s != spec] + [spec]
    st.session_state[UPLOADS_KEY] = uploads[-MAX_UPLOADS:]
    st.session_state["dataset_choice"] = st.session_state[PERSISTED_PREFIX + "dataset_choice"] = spec


def _load_dataset(page_changed: bool) -> tuple[ImageDataset, str]:
    config = cache.cached_launch_config()
    # on a server that reads no visitor's path, the entries that ask for one are left out (the operator's own stay)
    offered = [name for name in DATASETS.names() if config.server_paths or "path_label" not in DATASETS[name].traits]
    choices = list(dict.fromkeys([*config.datasets, *offered, *st.session_state.get(UPLOADS_KEY, [])]))
    _restore("dataset_choice", page_changed)
    if (wanted := st.session_state.get("dataset_choice")) not in choices:
        st.session_state["dataset_choice"] = choices[0] if config.datasets else DEFAULT_DATASET
        if url_state.unavailable_from_link("dataset_choice", wanted):
            _said_from_link("dataset", wanted, _dataset_label(st.session_state["dataset_choice"]))
    name = st.sidebar.selectbox("Dataset", choices, format_func=_dataset_label, key="dataset_choice",
                                on_change=_keep, args=("dataset_choice",),
                                help="Images the lenses work on. The embedded subset needs nothing else.")
    _keep("dataset_choice")
    entry = DATASETS[name.partition(":")[0]] if name.partition(":")[0] in DATASETS else None
    root: Optional[str] = None
    if name in DATASETS and entry is not None and "path_label" in entry.traits:
        key = f"{name}_root"
        _restore(key, page_changed)
        if entry.traits.get("default_root") is not None:
            st.session_state.setdefault(key, str(entry.traits["default_root"]))
        root = st.sidebar.text_input(entry.traits["path_label"], key=key,
                                     placeholder=entry.traits.get("path_placeholder", "")) or None
        _keep(key)
    with st.sidebar.expander("Upload an image folder (.zip)"):
        # the server's upload limit is the one a user meets first (the archive's own limits are wider)
        limit = min(int(st.get_option("server.maxUploadSize")), ArchiveLimits().max_archive_bytes // 2**20)
        st.caption("A .zip of <class name>/<image files> folders, at least two classes; any image size (resized to "
                   f"the model's input). Limits: {limit} MB a file, 20,000 images, 4096×4096 pixels an image.")
        st.file_uploader("Image folder archive", type=["zip"], key="dataset_zip", on_change=_unpack_upload)
    if st.session_state.get(UPLOAD_ERROR_KEY):
        st.sidebar.error(st.session_state[UPLOAD_ERROR_KEY])
    n = entry.traits.get("app_test_n") if entry is not None else None
    try:
        dataset = cache.cached_dataset(name, root, n)
        st.session_state[LAST_GOOD_KEY] = (name, root, n)
        return dataset, f"{name}|{root}|{n}"
    except SiaError as error:
        archive = cache.uploaded_archive_name(name)  # a pruned upload: said by its name, not its server path
        said = (f"Your upload {archive} is no longer kept on the server; upload it again to reopen it." if archive
                and not Path(name.partition(":")[2]).is_dir() else str(error))
        name, root, n = st.session_state.get(LAST_GOOD_KEY, (DEFAULT_DATASET, None, None))
        st.sidebar.error(f"{said} Keeping {_dataset_label(name)}.")
        return cache.cached_dataset(name, root, n), f"{name}|{root}|{n}"


def is_keypoint_data(dataset: ImageDataset) -> bool:
    """A dataset of the keypoint worlds (landmarks, or face crops whose points a face model places)."""
    return dataset.keypoints is not None or bool(dataset.point_names)


def _fits(card: ModelCard, dataset: ImageDataset) -> bool:
    """Same task, input shape and class count (a keypoint model's classes are its dataset's)."""
    return (card.is_keypoints == is_keypoint_data(dataset) and card.input_shape == dataset.image_shape
            and len(card.class_names) == dataset.num_classes)


def compatible_cards(dataset: ImageDataset) -> list[ModelCard]:
    """Models whose task, input shape and class count fit the dataset: the shipped ones, then the operator's."""
    cards = [ModelCard.from_dict(data) for data in cache.cached_model_cards()] + _operator_cards()
    return [c for c in cards if _fits(c, dataset)]


def _operator_cards(show_problems: bool = False) -> list[ModelCard]:
    """Cards of the models the server was started with; one that does not load is a message, not a crash."""
    config = cache.cached_launch_config()
    cards = []
    for model in config.models:
        try:
            cards.append(cache.cached_loaded_model(model.spec).card)
        except SiaError as error:
            if show_problems:
                st.sidebar.error(f"{model.spec} did not load: {error}")
    if show_problems:
        for problem in config.problems:
            st.sidebar.error(problem)
    return cards


def _selectable_cards(dataset: ImageDataset) -> list[ModelCard]:
    """The sidebar's models: shipped ones that fit the dataset exactly (else, for a user's images of another size,
    those whose task and class count fit: the images are resized to their input), and the operator's whose class
    count fits (resized too)."""
    shipped = [ModelCard.from_dict(data) for data in cache.cached_model_cards()]
    same_task = [c for c in shipped
                 if c.is_keypoints == is_keypoint_data(dataset) and len(c.class_names) == dataset.num_classes]
    fits = ([c for c in shipped if _fits(c, dataset)]
            or [c for c in same_task if c.input_shape[0] == dataset.image_shape[0]] or same_task)
    operator = _operator_cards(show_problems=True)
    for card in operator:
        if len(card.class_names) != dataset.num_classes:
            st.sidebar.caption(f"{short_spec(card.id)} is not offered here: it has {len(card.class_names)} classes, "
                               f"{dataset.name} has {dataset.num_classes}.")
    return [c for c in operator if len(c.class_names) == dataset.num_classes] + fits


def _interval(rate: float, n: int) -> str:
    """A rate's 95% interval over its n images, "[66.5, 72.2]" in percent, as the study tables write it (Wilson's:
    a card's 0% robust accuracy keeps its width)."""
    low, high = wilson_interval(rate, n)
    return f"[{100 * low:.1f}, {100 * high:.1f}]"


def render_model_card(card: ModelCard) -> None:
    with st.sidebar.expander("Model card", expanded=True):
        source = card.training.get("source")
        pretrained = bool(source) or str(card.training.get("recipe", "")).startswith("pretrained")
        st.markdown(f"**{card.id}**" + (f" · `{card.architecture}`" if card.architecture != card.id else "")
                    + ("" if pretrained else f" · trained on **{card.dataset}**"))
        if card.description:
            st.caption(card.readable_description)
        training = card.training
        if training and not source:
            recipe = training.get("recipe", "?")
            # the recipe says what its ε is (an L2 radius, an L∞ pixel budget, a noise amplitude), L∞ in 255ths
            meaning = RECIPES[recipe].traits.get("eps") if recipe in RECIPES else None
            eps = training.get("eps")
            detail = ("" if not meaning or not isinstance(eps, (int, float)) else
                      f" ({meaning} {eps:g})" if meaning.startswith("L2") else f" ({meaning} {in_255ths(eps)})")
            # a pretrained model's card has no epochs or seed of ours: said only where they were recorded
            run = "".join(f", {text}" for text in (
                f"{training['epochs']} epochs" if training.get("epochs") is not None else "",
                f"seed {training['seed']}" if training.get("seed") is not None else "") if text)
            st.markdown(f"Recipe: **{recipe}**{detail}{run}")
        if source:
            names = training.get("class_names")
            named = (" (named by the dataset)" if names == "from the dataset" else
                     " (numbered until a dataset names them)" if names == "numbered" else "")
            st.markdown(f"Input {'×'.join(map(str, card.input_shape))}, {len(card.class_names):,} classes{named}, "
                        f"normalized by mean {[round(m, 3) for m in card.mean]}, std {[round(v, 3) for v in card.std]}")
        for evaluation in card.evaluations:
            if card.is_keypoints:
                _render_keypoint_evaluation(card, evaluation)
                continue
            n = int(evaluation["n"])
            clean = evaluation["clean_accuracy"]
            lines = [f"Clean accuracy: **{clean:.1%}** {_interval(clean, n)}"]
            if evaluation.get("pgd20_robust_accuracy") is not None:  # AutoAttack, with PGD-20 on the same images
                gap = evaluation["pgd20_robust_accuracy"] - evaluation["robust_accuracy"]
                lines.append(f"Robust accuracy ({attack_label(evaluation['attack'], evaluation['eps'])}): "
                             f"**{evaluation['robust_accuracy']:.1%}** {_interval(evaluation['robust_accuracy'], n)}; "
                             "PGD-20 on the same images "
                             f"{evaluation['pgd20_robust_accuracy']:.1%}"
                             + (f" ({100 * gap:.1f} points higher: PGD-20 overstates robustness here)" if gap > 0
                                else " (the same)" if gap == 0 else
                                f" ({-100 * gap:.1f} points lower: here AutoAttack was the weaker attack)"))
            elif evaluation.get("robust_accuracy") is not None:
                attack = attack_label(evaluation["attack"], evaluation["eps"], evaluation["steps"])
                lines.append(f"Robust accuracy ({attack}): **{evaluation['robust_accuracy']:.1%}** "
                             f"{_interval(evaluation['robust_accuracy'], n)}")
            st.markdown("  \n".join(lines))
            if evaluation.get("measured"):
                # the photos labelled by the model's own prediction are left out: the note says which were counted
                on = (f"the {n:,} images of {evaluation['test_set']} with a human label (the others take the "
                      "model's own prediction as their label)" if evaluation.get("note") else
                      f"the first {n:,} images of {evaluation['test_set']}")
                st.caption(f"Measured now (first measured {evaluation['measured']}) by this repo's evaluation code on "
                           f"{on}.")
            else:
                st.caption(f"Measured by this repo's evaluation code on {n:,} images of {evaluation['test_set']}.")
        if card.evaluations and not card.is_keypoints:
            samples = {(evaluation.get("test_set"), evaluation.get("n")) for evaluation in card.evaluations}
            st.caption("Brackets: 95% intervals over the images named under each measurement"
                       + ("; measurements on different images may differ by more than one interval." if len(samples) > 1
                          else "."))
        if training.get("command"):
            # folded: the command runs to several hundred characters, taller than the rest of the card in a sidebar;
            # text, not st.code (see url_state.publish_view)
            with st.expander("The command that wrote this card" if pretrained else "The command that trained it"):
                st.caption(f"`{portable_command(training['command'])}`")


def _render_keypoint_evaluation(card: ModelCard, evaluation: dict) -> None:
    st.markdown(f"Task: **{len(card.point_names)} landmarks** ({', '.join(card.point_names)}), judged by the normalized "
                f"mean error (NME, by the {evaluation['normalizer']} distance); failure: NME > "
                f"{evaluation['threshold']:g}")
    lines = [f"Mean NME: **{evaluation['mean_nme']:.3f}**"]
    if "failure_rate" in evaluation:
        low, high = evaluation["failure_rate_ci95"]
        lines[0] += f" (median {evaluation['median_nme']:.3f})"
        lines.append(f"Failures: **{evaluation['failure_rate']:.1%}** (95% interval {low:.1%}–{high:.1%})")
    st.markdown("  \n".join(lines))
    st.caption(f"Measured by this repo's code on {evaluation['test_n']} image{'s' if evaluation['test_n'] != 1 else ''}"
               f" of {evaluation['test_set']}.")


def _custom_weights(card: ModelCard) -> Optional[tuple[LoadedModel, str]]:
    """The user's weights for `card`'s architecture, and the file's name: a new upload, else the one kept from an
    earlier page (each page draws its own uploader, so the file is kept in the session, not in the widget)."""
    kept = st.session_state.get(CUSTOM_WEIGHTS_KEY)
    kept = kept if kept is not None and kept["card"] == card.id else None
    with st.sidebar.expander("Use your own weights", expanded=kept is not None):
        # the server's upload limit, said before a user meets it (float16 weights load into the float32 network)
        st.caption(f"A state_dict for the `{card.architecture}` architecture of {card.id} "
                   "(.safetensors, or .pt/.pth loaded with weights_only=True), at most "
                   f"{int(st.get_option('server.maxUploadSize'))} MB, the server's upload limit (saved in float16, "
                   "weights take half the space).")
        upload = st.file_uploader("Weights file", type=["safetensors", "pt", "pth"], key="custom_weights",
                                  on_change=_forget_removed_weights)
        if upload is None and kept is not None:
            st.caption(f"In use: {kept['name']}, uploaded earlier.")
            if st.button("Back to the shipped weights", key="custom_weights_clear"):
                st.session_state.pop(CUSTOM_WEIGHTS_KEY, None)
                kept = None
    if upload is not None:
        data, name = upload.getvalue(), upload.name
    elif kept is not None:
        data, name = kept["data"], kept["name"]
    else:
        return None
    try:
        loaded = cache.cached_custom_model(json.dumps(card.to_dict()), cache.digest(data), data, Path(name).suffix,
                                           name)
    except SiaError as error:
        st.session_state.pop(CUSTOM_WEIGHTS_KEY, None)  # nor does an earlier file come back on the next page
        said = str(error) if name in str(error) else f"{name}: {error}"  # the file named once
        st.sidebar.error(f"{said} Keeping the shipped weights of {card.id}.")
        return None
    st.session_state[CUSTOM_WEIGHTS_KEY] = {"card": card.id, "name": name, "data": data}
    return loaded, name


def _forget_removed_weights() -> None:
    """The weights uploader's callback: removing the file (its ×) goes back to the shipped weights."""
    if st.session_state.get("custom_weights") is None:
        st.session_state.pop(CUSTOM_WEIGHTS_KEY, None)


def render_sidebar() -> Optional[Selection]:
    """Draw the sidebar and return the current selection, or None when no model fits the dataset."""
    page_changed = st.session_state.get(SIDEBAR_PAGE_KEY) != st.session_state.get(CURRENT_PAGE_KEY)
    st.session_state[SIDEBAR_PAGE_KEY] = st.session_state.get(CURRENT_PAGE_KEY)
    # a shared link names the dataset and model: seeded once a session, then checked against the choices below
    url_state.seed_from_url({key: str for key in url_state.SIDEBAR_FIELDS}, scope="sidebar")
    dataset, dataset_key = _load_dataset(page_changed)
    if (archive := cache.uploaded_archive_name(str(st.session_state.get("dataset_choice")))):
        # the unpacked folder's server path means nothing to the user: the archive's name stands for it
        dataset = dataclasses.replace(dataset, source=f"{len(dataset):,} images of {dataset.num_classes} classes "
                                                      f"from your upload {archive}")
    cards = _selectable_cards(dataset)
    if not cards:
        url_state.forget_link_choices()
        counts = sorted({len(card.class_names) for card in map(ModelCard.from_dict, cache.cached_model_cards())
                         if card.is_keypoints == is_keypoint_data(dataset)})  # a keypoint model classifies nothing
        st.sidebar.warning(f"No {'keypoint ' if is_keypoint_data(dataset) else ''}model here classifies "
                           f"{dataset.num_classes} classes ({dataset.name}); the shipped models have "
                           f"{', '.join(f'{count:,}' for count in counts)}. Choose another dataset, upload a "
                           "folder with as many classes as one of them, or start the app with a model of your own "
                           "(`--model`, see the README).")
        return None
    ids = [card.id for card in cards]
    operator = [i for i, card in enumerate(cards) if card.training.get("source")]
    standard = [i for i, model_id in enumerate(ids) if model_id.endswith("-standard")]
    default = (operator[0] if operator else ids.index(DEFAULT_MODEL_ID) if DEFAULT_MODEL_ID in ids
               else (standard[0] if standard else 0))
    _restore("model_id", page_changed)
    if (wanted := st.session_state.get("model_id")) not in ids:
        st.session_state["model_id"] = ids[default]
        if url_state.unavailable_from_link("model_id", wanted):
            _said_from_link("model", wanted, short_spec(ids[default]))
    url_state.forget_link_choices()
    model_id = st.sidebar.selectbox("Model", ids, key="model_id", format_func=short_spec)
    _keep("model_id")
    card = cards[ids.index(model_id)]
    try:
        loaded = cache.cached_named_model(model_id, dataset.class_names)
    except SiaError as error:
        st.sidebar.error(str(error))
        return None
    model, model_key = loaded.model, loaded.model.model_id
    cli_model = model_id
    # the user's weights before the data is fitted to the model: photos without a label take the prediction of the
    # model that will be attacked, not the shipped weights' (and are cached under its key)
    custom = (_custom_weights(card) if not card.training.get("source") and card.architecture in ARCHITECTURES
              else None)
    if custom is not None:
        model, model_key = custom[0].model, custom[0].model.model_id
    if dataset.image_shape != model.input_shape:
        dataset = cache.cached_resized(dataset_key, model.input_shape, dataset)
        dataset_key = f"{dataset_key}|{'x'.join(map(str, model.input_shape))}"
    if not card.is_keypoints:  # a folder's classes sort by name: renumbered to the model's order where names match
        matched, mismatch = cache.cached_class_matched(dataset_key, tuple(model.class_names), dataset)
        if matched is not None:
            dataset, dataset_key = matched, f"{dataset_key}|classes:{model_key}"
        if mismatch:
            st.sidebar.warning(mismatch)
    if card.is_keypoints and dataset.keypoints is None:  # face crops: the model's own points are the reference
        dataset = cache.cached_model_keypoints(dataset_key, model_key, dataset, model)
        dataset_key = f"{dataset_key}|points:{model_key}"
        st.sidebar.caption(f"These {len(dataset)} images carry no marked landmarks: their reference points are the "
                           "model's own on the clean images, and attacks push the points away from them.")
    if has_unlabelled(dataset):  # photos no class names: attacked away from the model's own prediction
        dataset = cache.cached_model_labelled(dataset_key, model_key, dataset, model)
        st.sidebar.caption(f"{int(dataset.attributes['label_is_prediction'].sum())} of {len(dataset)} images have "
                           "no human label: their reference label is the model's own prediction, and attacks push "
                           "away from it.")
    if card.training.get("source"):
        try:
            card = ModelCard.from_dict(cache.cached_measured_card(model_key, dataset_key, loaded, dataset))
        except SiaError as error:
            st.sidebar.error(f"Could not measure {model_id} on {dataset.name}: {error}")
            card = loaded.card
    elif custom is not None:
        uploaded, name = custom
        cli_model = f"{card.id} --weights {Path(name).name}"
        st.sidebar.success(f"Using uploaded weights: {name} ({model_key})")
        # its own card, measured now: the shipped card's recipe and accuracies were the shipped weights'. The card
        # is cached by the weights' digest, shared by sessions: it names no file (another user's name would show)
        own = dataclasses.replace(uploaded.card, description=f"Uploaded weights in the `{card.architecture}` "
                                                             f"architecture of {card.id}.",
                                  training={"source": "uploaded weights", "class_names": list(card.class_names)})
        try:
            card = ModelCard.from_dict(cache.cached_measured_card(model_key, dataset_key,
                                                                  LoadedModel(model, own), dataset))
        except SiaError as error:
            st.sidebar.error(f"Could not measure your weights on {dataset.name}: {error}")
            card = own
    render_model_card(card)
    url_state.publish_view()
    return Selection(dataset=dataset, dataset_key=dataset_key, model=model, model_key=model_key, card=card,
                     cli_model=cli_model)


def require_selection() -> Selection:
    """The sidebar's selection, or a note and a stop when no model fits the chosen dataset."""
    selection = render_sidebar()
    if selection is None:
        st.info("Choose a dataset and a model that fits it in the sidebar.")
        st.stop()
    return selection
