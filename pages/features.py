"""Robust vs non-robust features: build the constructed datasets, look at them, train on them, see what generalizes."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from sia_app import cache
from sia_app.navigation import require_app_frame
from sia_app.sidebar import compatible_cards, require_selection
from sia_core.data.catalog import load_dataset
from sia_core.errors import SiaError
from sia_core.features import (KIND_LABELS, KINDS, PAPER_CIFAR10, ConstructedSet, ConstructionConfig,
                               build_constructed_set, train_on_constructed, transfer_study)
from sia_core.figures import to_pil, transfer_scatter
from sia_core.models.architectures import ARCHITECTURES

SETS_KEY = "feature_sets"
RESULTS_KEY = "feature_results"
TRANSFER_KEY = "feature_transfer"
KIND_HELP = {"d_rand": "targeted L2 PGD to a random class, relabelled with it",
             "d_det": "targeted L2 PGD to class (y + 1) mod C, relabelled with it",
             "d_r": "from another image, match the ROBUST model's penultimate features",
             "d_nr": "from another image, match the STANDARD model's penultimate features"}

require_app_frame("pages/features.py")
st.title("Robust vs non-robust features")
st.caption("Reproduces, at this machine's scale, “Adversarial examples are not bugs, they are features” (Ilyas et al. "
           "2019; PAPERS.md §3): datasets whose labels look wrong to a person still teach a model. Our numbers are "
           "from this run; the paper's CIFAR-10 numbers are shown beside them and labelled as the paper's.")

selection = require_selection()
ids = [card.id for card in compatible_cards(selection.dataset)]
c1, c2 = st.columns(2)
standard_id = c1.selectbox("Standard source model (D̂_rand, D̂_det, D̂_NR)", ids,
                           index=ids.index("fmnist-standard") if "fmnist-standard" in ids else 0, key="features_std")
robust_id = c2.selectbox("Robust source model (D̂_R)", ids,
                         index=ids.index("fmnist-robust") if "fmnist-robust" in ids else 0, key="features_robust")
sets: dict[str, ConstructedSet] = st.session_state.setdefault(SETS_KEY, {})


def training_split(dataset_name: str):
    """The original training split, or None after saying why (building and the transfer study need it)."""
    try:
        return load_dataset(dataset_name, "train")
    except SiaError as error:
        st.error(f"{error} This step needs the training split; load a saved set instead.")
        return None


# --- build or load ------------------------------------------------------------------------------------------
build_tab, load_tab = st.tabs(["Build", "Load a saved set"])
with build_tab, st.form("features_build_form"):
    b1, b2, b3, b4 = st.columns(4)
    kind = b1.selectbox("Set", list(KINDS), format_func=lambda k: f"{KIND_LABELS[k]}: {KIND_HELP[k]}",
                        key="features_kind")
    n = b2.slider("Training images (N)", 100, 10_000, 1000, step=100, key="features_n")
    steps = b3.slider("Steps", 10, 500, 50, step=10, key="features_steps",
                      help="PGD steps for D̂_rand / D̂_det; normalized-gradient steps for D̂_R / D̂_NR.")
    eps = b4.slider("L2 radius (D̂_rand / D̂_det)", 0.25, 4.0, 2.0, step=0.25, key="features_eps")
    build = st.form_submit_button("Build", type="primary")
if build:
    card = next(c for c in compatible_cards(selection.dataset) if c.id == (robust_id if kind == "d_r" else standard_id))
    train_set = training_split(card.dataset)
    if train_set is not None:
        bar = st.progress(0.0, text="Building…")
        sets[kind] = build_constructed_set(
            cache.cached_model(card.id), train_set, ConstructionConfig(kind=kind, n=n, eps=eps, steps=steps),
            progress=lambda s, t, info: bar.progress(s / t, text=f"{info['built']} images"))
        bar.empty()
with load_tab:
    path = st.text_input("Path of a .npz written by `python -m sia_core features build`", key="features_path")
    if st.button("Load", key="features_load") and path:
        try:
            loaded = ConstructedSet.load(Path(path).expanduser())
        except SiaError as error:
            st.error(str(error))
        else:
            sets[loaded.config.kind] = loaded
            st.success(f"Loaded {KIND_LABELS[loaded.config.kind]}: {len(loaded)} images from {loaded.source_model}.")

if not sets:
    st.info("Build a set (a few seconds for N = 1,000 on a CPU) or load a saved one.")
    st.stop()

# --- grids ----------------------------------------------------------------------------------------------------
st.subheader("What the sets look like")
st.caption("Each image with the label a model is trained on, and (grey) the label of the image it came from. "
           "D̂_rand / D̂_det labels look wrong to a person; D̂_NR images look like their starting image.")
test_images = selection.dataset
st.markdown(f"**{KIND_LABELS['d']}** — the original test images with their true labels")
for column, index in zip(st.columns(8), range(min(8, len(test_images)))):
    column.image(to_pil(test_images.images[index], upscale=3), width="stretch",
                 caption=test_images.class_names[int(test_images.labels[index])])
for kind_name in KINDS:
    if kind_name not in sets:
        continue
    constructed = sets[kind_name]
    metric = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in constructed.metric.items())
    st.markdown(f"**{KIND_LABELS[kind_name]}** — {len(constructed)} images from {constructed.source_model}; {metric}")
    columns = st.columns(8)
    for column, index in zip(columns, range(min(8, len(constructed)))):
        column.image(to_pil(constructed.images[index], upscale=3), width="stretch",
                     caption=f"{constructed.class_names[int(constructed.labels[index])]} "
                             f"(was {constructed.class_names[int(constructed.original_labels[index])]})")

# --- train and compare ----------------------------------------------------------------------------------------
st.subheader("Train on each set, test on the original test set")
t1, t2, t3 = st.columns(3)
epochs = t1.slider("Epochs", 1, 20, 5, key="features_epochs")
eval_eps = t2.slider("L2 ε for robust accuracy", 0.1, 2.0, 0.5, step=0.05, key="features_eval_eps")
eval_n = t3.slider("Test images attacked", 100, 2000, 500, step=100, key="features_eval_n")
results: dict = st.session_state.setdefault(RESULTS_KEY, {})
if st.button("Train a fresh model on each set", type="primary", key="features_train"):
    test_set = selection.dataset
    for kind_name, constructed in sets.items():
        bar = st.progress(0.0, text=f"Training on {KIND_LABELS[kind_name]}…")
        _, results[kind_name] = train_on_constructed(
            constructed.as_dataset(), test_set, kind=kind_name, epochs=epochs, eval_eps=eval_eps, eval_n=eval_n,
            progress=lambda s, t, info: bar.progress(s / t, text=f"epoch {s}/{t}: test {info['test_accuracy']:.1%}"))
        bar.empty()
if results:
    rows = []
    figure = go.Figure()
    curves = go.Figure()
    for kind_name, result in results.items():
        paper = PAPER_CIFAR10[kind_name]
        rows.append({"trained on": KIND_LABELS[kind_name], "N": result.n_train,
                     "test accuracy (this run)": f"{result.test_accuracy:.1%}",
                     f"robust accuracy, L2 ε = {result.eps:g} (this run)": f"{result.robust_accuracy:.1%}",
                     "paper, CIFAR-10 test accuracy": f"{paper['test_accuracy']:.1%}",
                     "paper, CIFAR-10 robust acc. L2 0.25": ("—" if paper["robust_accuracy_l2_0.25"] is None
                                                             else f"{paper['robust_accuracy_l2_0.25']:.1%}"),
                     "paper source": paper["source"],
                     "accuracy on (y + 1) mod C labels": ("—" if result.relabelled_test_accuracy is None
                                                          else f"{result.relabelled_test_accuracy:.1%}")})
        curves.add_scatter(x=list(range(1, len(result.epoch_test_accuracy) + 1)), y=list(result.epoch_test_accuracy),
                           mode="lines+markers", name=KIND_LABELS[kind_name])
    names = [KIND_LABELS[k] for k in results]
    figure.add_bar(x=names, y=[r.test_accuracy for r in results.values()], name="test accuracy (this run)")
    figure.add_bar(x=names, y=[r.robust_accuracy for r in results.values()], name="robust accuracy (this run)")
    figure.add_bar(x=names, y=[PAPER_CIFAR10[k]["test_accuracy"] for k in results], name="paper: CIFAR-10 test acc.",
                   marker_color="#bbbbbb")
    figure.update_layout(barmode="group", yaxis_range=[0, 1], height=380, margin=dict(l=10, r=10, t=30, b=10),
                         title="Accuracy on the ORIGINAL test set")
    curves.update_layout(title="Test accuracy per epoch (first 2,000 test images)", xaxis_title="epoch",
                         yaxis_title="accuracy", yaxis_range=[0, 1], height=340, margin=dict(l=10, r=10, t=40, b=10))
    st.dataframe(rows, hide_index=True, width="stretch")
    left, right = st.columns(2)
    left.plotly_chart(figure, width="stretch", key="features_bars")
    right.plotly_chart(curves, width="stretch", key="features_curves")
    st.caption(f"Chance is {1 / selection.dataset.num_classes:.0%}. D̂_det teaches only through non-robust features: "
               "its labels are wrong for every robust feature. If its model scores high on the (y + 1) mod C labels, "
               "it learned the label permutation from robust features instead (the paper's Table 10 check).")

# --- transfer study -------------------------------------------------------------------------------------------
st.subheader("Transfer: do architectures that learn from D̂_det also take the source's attacks?")
st.caption("Each architecture is trained twice: on D̂_det (x: its accuracy on the original test set) and on the same "
           "source images with their true labels (y: how often the source model's untargeted L2-PGD examples fool "
           "it). The paper (Figure 3, five ImageNet-scale architectures) finds a positive trend.")
if "d_det" not in sets:
    st.info("Build or load D̂_det to run the transfer study.")
else:
    r1, r2, r3 = st.columns(3)
    architectures = r1.multiselect("Architectures", sorted(ARCHITECTURES), default=sorted(ARCHITECTURES),
                                   key="features_transfer_architectures")
    transfer_epochs = r2.slider("Epochs per model", 1, 20, 3, key="features_transfer_epochs")
    transfer_eps = r3.slider("L2 ε of the source's attack", 0.1, 3.0, 1.0, step=0.1, key="features_transfer_eps")
    if st.button("Run the transfer study", key="features_transfer") and architectures:
        det = sets["d_det"]
        source_card = next((c for c in compatible_cards(selection.dataset) if c.id == det.source_model), None)
        train_set = training_split(source_card.dataset) if source_card else None
        if source_card is None:
            st.error(f"The source model of this D̂_det ({det.source_model}) is not installed.")
        elif train_set is not None:
            bar = st.progress(0.0, text="Training and attacking…")
            points = transfer_study(cache.cached_model(det.source_model), det, train_set, selection.dataset,
                                    tuple(architectures), epochs=transfer_epochs, attack_eps=transfer_eps,
                                    attack_n=500,
                                    progress=lambda s, t, info: bar.progress(s / t, text=f"{info['architecture']} done"))
            bar.empty()
            st.session_state[TRANSFER_KEY] = [point.to_dict() for point in points]
    if st.session_state.get(TRANSFER_KEY):
        st.plotly_chart(transfer_scatter(st.session_state[TRANSFER_KEY],
                                         title=f"Transfer from {sets['d_det'].source_model}"),
                        width="stretch", key="features_transfer_scatter")
