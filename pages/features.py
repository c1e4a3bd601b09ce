"""Robust vs non-robust features: build the constructed datasets, look at them, train on them, see what generalizes."""

from __future__ import annotations

import sia_app.preload  # noqa: F401  (first: a session that opens a fresh server waits here for its imports)
import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import streamlit as st

from sia_app import cache, url_state
from sia_app.explain import explain
from sia_app.report_button import report_button
from sia_app.navigation import require_app_frame
from sia_app.references import render_references
from sia_app.sidebar import compatible_cards, require_selection
from sia_core.data.base import ImageDataset
from sia_core.errors import SiaError
from sia_core.features import KINDS, PAPER_CIFAR10, ConstructedSet, FeaturesStudyReport, FeatureTrainingConfig
from sia_core.features.training import ACCURACY_CURVE_IMAGES
from sia_core.figures import accuracy_bars, curves, to_pil, transfer_scatter
from sia_core.models.architectures import ARCHITECTURES
from sia_core.references import REFERENCES
from sia_core.report import PageReport
from sia_core.results_io import SavedResult
from sia_core.takeaways import features_takeaway
from sia_app.features_scale_view import SET_GLOSSARY, at_scale_block, beside_paper, how_built, render_at_scale
from sia_app.verdicts import verdict_notes, world_claims
from sia_app.worlds import world_of

SETS_KEY = "feature_sets"  # dataset key -> kind -> how to fetch its set from the cache (a few strings)
TRAINING_RUNS_KEY = "feature_training_runs"
TRANSFER_RUNS_KEY = "feature_transfer_runs"
SHIPPED_SETTINGS_KEY = "features_shipped_settings"  # the dataset whose shipped training settings the sliders took
SHIPPED_BUILD_KEY = "features_shipped_build"  # the dataset whose shipped construction settings the sliders took
ORIGINAL_LABEL = "D (original)"  # the row of the original test images: a label on this page, not a kind

require_app_frame("pages/features.py")
st.title("Robust vs non-robust features")
st.caption("Repeats, at this machine's scale, the experiments of “Adversarial examples are not bugs, they are features” (" +
           REFERENCES["features"].short() + "), which finds that datasets whose labels look wrong to a person still "
           "teach a model. Our numbers are this app's own runs and say whether that holds here; the paper's CIFAR-10 "
           "numbers are shown beside them and labelled as the paper's.")
render_references(('features', 'pgd'))

# the link keeps the sources, the build settings and the training settings (the sets themselves stay in the cache)
# D̂_det first: the transfer study below needs it, so a newcomer who keeps the defaults can go on to it
URL_DEFAULTS = {"features_kind": "d_det", "features_n": 1000, "features_steps": 50, "features_eps": 2.0,
                "features_epochs": 5, "features_eval_eps": 0.5, "features_eval_n": 500}
url_state.seed_from_url({"features_std": str, "features_robust": str, "features_kind": url_state.choice(KINDS.names()),
                         "features_n": url_state.integer(100, 10_000), "features_steps": url_state.integer(10, 500),
                         "features_eps": url_state.number(0.25, 4.0), "features_epochs": url_state.integer(1, 20),
                         "features_eval_eps": url_state.number(0.1, 2.0), "features_eval_n": url_state.integer(100, 2000)})
for key, default in URL_DEFAULTS.items():
    st.session_state.setdefault(key, default)
selection = require_selection()
if selection.card.is_keypoints:
    st.info(f"**{selection.card.id}** places landmarks; it does not classify. The robust and non-robust datasets are "
            "built by relabelling images with a classifier's targeted attacks, so this lens needs a classifier: choose "
            "one and its dataset in the sidebar. The keypoint worlds go through the SIA explore and diagnosis pages and "
            "the RoI vs RoA page.")
    st.stop()
LARGEST_SIDE = 64  # px: above it, building and training the sets is days of CPU time
if min(selection.model.input_shape[1:]) > LARGEST_SIDE:
    height, width = selection.model.input_shape[1:]
    st.info(f"Not at this size on a CPU. The experiment trains a fresh network on each constructed set of tens of "
            f"thousands of images, each image made by 100 to 1,000 gradient steps through the source model: at "
            f"{height}×{width} px that is weeks of CPU time for one set (the paper built its Restricted ImageNet "
            f"sets on GPUs). It runs here on 28 and 32 px images (Fashion-MNIST, CIFAR-10): choose one of those "
            f"worlds in the sidebar; at this size it would take a GPU and a training split of many thousand labelled "
            f"photos.")
    st.stop()
with st.expander("What D, D̂_det, D̂_rand, D̂_R and D̂_NR are", expanded=True):
    st.markdown(SET_GLOSSARY)
# the study at scale decides the claims of the sets it holds; the small study below speaks for the others only
at_scale_sets = {row["set"] for row in (at_scale_block(selection.dataset_key) or {}).get("rows", ())}
if render_at_scale(selection.dataset_key, selection.dataset.num_classes):
    st.subheader("Build and train at a small scale, live")
cards = {card.id: card for card in compatible_cards(selection.dataset)}
ids = list(cards)
c1, c2 = st.columns(2)
# the model chosen in the sidebar is the standard source unless it is a robust one (then the world's "-standard"
# one); the world's "-robust" model is the robust source (fmnist-robust, cifar10-robust)
standard = next((i for i in (selection.card.id, *(i for i in ids if i.endswith("-standard")), *ids)
                 if i in ids and not i.endswith(("-robust", "-robust-l2"))), ids[0])
# D̂_R's source: an L2 adversarially trained model where the world has one (the paper's), else its robust model
robust = next((i for i in ids if i.endswith("-robust-l2")), next((i for i in ids if i.endswith("-robust")), ids[0]))
for key, default in (("features_std", standard), ("features_robust", robust)):
    if st.session_state.get(key) not in ids:  # first visit, a link from another dataset, or a stale id
        st.session_state[key] = default
source_ids = {"standard": c1.selectbox("Standard source model (D̂_rand, D̂_det, D̂_NR)", ids, key="features_std"),
              "robust": c2.selectbox("Robust source model (D̂_R)", ids, key="features_robust")}
# per dataset: a set built on one dataset, trained on and scored against another's test images, would read as the
# other's result (Shapes and CIFAR-10 share a shape)
set_refs: dict[str, dict] = st.session_state.setdefault(SETS_KEY, {}).setdefault(selection.dataset_key, {})


def training_split(dataset_name: str, image_shape: tuple[int, int, int]) -> Optional[ImageDataset]:
    """The original training split, as the source model's input, or None after saying why (building and the
    transfer study need it)."""
    try:
        if not dataset_name:
            raise SiaError("This model came without a dataset of its own (start the app with --data for it).")
        return cache.cached_train_split(dataset_name, image_shape=image_shape)
    except SiaError as error:
        st.error(f"{error} This step needs the training split; load a saved set instead.")
        return None


def features_commands(shown: dict[str, ConstructedSet], epochs: int, eval_eps: float, eval_n: int,
                      showing_shipped: bool, shipped_run: Optional[SavedResult]) -> str:
    """The commands that build the sets shown and train on them with the page's settings (the shipped study's
    architecture when its numbers are the ones shown, else the page's own)."""
    architecture = (shipped_run.result.config.training.architecture if showing_shipped
                    else FeatureTrainingConfig().architecture)
    lines = [f"python -m sia_core features build --kind {kind} --model {constructed.source_model} "
             f"--n {constructed.config.n} --eps-l2 {constructed.config.eps_l2:g} --steps {constructed.config.steps} "
             f"--out {kind}.npz" for kind, constructed in shown.items()]
    lines += [f"python -m sia_core features train --constructed {kind}.npz --architecture {architecture} "
              f"--epochs {epochs} --eval-eps-l2 {eval_eps:g} --eval-n {eval_n} --json" for kind in shown]
    if any((card := cards.get(constructed.source_model)) is not None and card.dataset == "cifar10"
           for constructed in shown.values()):
        lines.insert(0, "# CIFAR-10's splits: set SIA_CIFAR10_DIR to the CIFAR-10 folder (or add --data-dir FOLDER)")
    return "\n".join(lines)


def _with_paper(ours: float, kind: str, column: str, beside: bool) -> str:
    """Our number, and the paper's CIFAR-10 number for the same column where it reports one and `beside` (a
    CIFAR-10 world: on another dataset the paper's number is no comparison)."""
    return beside_paper(f"{ours:.1%}", PAPER_CIFAR10[kind].get(column) if beside else None)


def fetch(ref: dict) -> Optional[ConstructedSet]:
    """The set a session reference names, from the cache (rebuilt or reloaded if it was evicted)."""
    try:
        if ref["how"] == "file":
            return cache.cached_constructed_file(ref["path"], ref["modified_ns"], ref["size"])
        train_set = training_split(ref["train_name"], cache.cached_model(ref["model_id"]).input_shape)
        if train_set is None:
            return None
        return cache.cached_constructed_set(ref["config_key"], ref["model_id"], ref["train_name"],
                                            cache.cached_model(ref["model_id"]), train_set)
    except SiaError as error:
        st.error(str(error))
        return None


# the shipped sets of this world: from the chosen standard source, else from the world's "-standard" model
shipped = next((stored for model_id in (source_ids["standard"], *(i for i in ids if i.endswith("-standard")))
                for stored in [cache.shipped_result("features", model_id)]
                if stored is not None and stored.dataset_key == selection.dataset_key), None)
if shipped is not None and st.session_state.get(SHIPPED_BUILD_KEY, {}).get("dataset_key") != selection.dataset_key:
    # once per world, the build sliders the user has not moved take the shipped relabelled sets' construction (CIFAR-10
    # builds at L2 0.5 with 100 steps, Fashion-MNIST at 2.0 with 50), as the training sliders below take its training
    relabelled_plan = next((plan.construction for plan in shipped.result.config.sets
                            if plan.construction.kind in ("d_det", "d_rand")), None)
    taken_build = st.session_state.get(SHIPPED_BUILD_KEY, {}).get("values", {})
    values = {}
    if relabelled_plan is not None:
        for key, value in (("features_n", relabelled_plan.n), ("features_steps", relabelled_plan.steps),
                           ("features_eps", relabelled_plan.eps_l2)):
            if st.session_state.get(key) in (URL_DEFAULTS[key], taken_build.get(key)):
                st.session_state[key] = values[key] = value
    st.session_state[SHIPPED_BUILD_KEY] = {"dataset_key": selection.dataset_key, "values": values}

# --- build or load ------------------------------------------------------------------------------------------
build_tab, load_tab = st.tabs(["Build", "Load a saved set"])
with build_tab, st.form("features_build_form"):
    b1, b2, b3, b4 = st.columns(4)
    kind = b1.selectbox("Set", KINDS.names(), format_func=lambda k: f"{KINDS[k].label}: {KINDS[k].description}",
                        key="features_kind")
    paper = ", ".join(f"{name.replace('_', ' ')} {value:g}" for name, value in KINDS[kind].defaults.items())
    n = b2.slider("Training images (N)", 100, 10_000, step=100, key="features_n")
    steps = b3.slider("Steps", 10, 500, step=10, key="features_steps",
                      help="PGD steps for D̂_rand / D̂_det; normalized-gradient steps for D̂_R / D̂_NR. "
                           f"The paper's {KINDS[kind].label} (CIFAR-10): {paper}.")
    eps = b4.slider("L2 radius (D̂_rand / D̂_det)", 0.25, 4.0, step=0.25, key="features_eps")
    build = st.form_submit_button("Build", type="primary")
if build:
    model_id = source_ids[KINDS[kind].traits["source"]]
    config = KINDS.build(kind, n=n, eps_l2=eps, steps=steps)
    set_refs[kind] = {"how": "build", "model_id": model_id, "train_name": cards[model_id].dataset,
                      "config_key": json.dumps(asdict(config), sort_keys=True)}
    set_refs[kind]["key"] = cache.constructed_set_key(set_refs[kind]["config_key"], model_id,
                                                      set_refs[kind]["train_name"])
with load_tab:
    if cache.cached_launch_config().server_paths:
        path = st.text_input("Path of a .npz written by `python -m sia_core features build`", key="features_path")
        load = st.button("Load", key="features_load")
    else:
        path, load = "", False
        st.info("This server reads no path its visitors type (it was started with --no-server-paths): build the "
                "sets here, or load a saved one on your own copy of SIA Explorer.")
    if load and path:
        try:
            file = Path(path).expanduser().resolve()
            # the file's time and size join the key, so a rebuilt file is read again rather than served stale
            modified_ns, size = (file.stat().st_mtime_ns, file.stat().st_size) if file.is_file() else (0, 0)
            loaded = cache.cached_constructed_file(str(file), modified_ns, size)
        except OSError as error:  # a path this server may not read
            st.error(f"Could not read {path}: {error.strerror or error}.")
        except SiaError as error:
            st.error(str(error))
        else:
            set_refs[loaded.config.kind] = {"how": "file", "path": str(file), "modified_ns": modified_ns, "size": size,
                                            "key": f"file|{file}|{modified_ns}|{size}"}
            st.success(f"Loaded {loaded.label}: {len(loaded)} images from {loaded.source_model}.")

sets = {kind_name: constructed for kind_name in KINDS.names() if kind_name in set_refs
        for constructed in [fetch(set_refs[kind_name])] if constructed is not None}
counts: dict[str, int] = {}
if sets:
    shipped = None  # the sets built or loaded here speak, not the shipped ones
else:  # the shipped sets and training table, so the page opens on a result
    if shipped is None:
        st.info("Build a set (a progress bar shows the time left) or load a saved one.")
        st.stop()
    study: FeaturesStudyReport = shipped.result
    sets, counts = dict(study.previews), study.counts
    cache.precomputed_note(shipped)
    chosen = {source_ids[KINDS[kind_name].traits["source"]] for kind_name in study.config.sources}
    if set(study.config.sources.values()) != chosen:
        # the boxes name other models than the shipped study's sources: say whose sets these are
        st.info(f"These are the shipped sets, built from {' and '.join(sorted(set(study.config.sources.values())))}"
                f", not from {' and '.join(sorted(chosen))}: no study ships for "
                f"{'that model' if len(chosen) == 1 else 'those models'}. Press Build to make the sets from the "
                "models chosen above.")
    taken = st.session_state.get(SHIPPED_SETTINGS_KEY, {"dataset_key": None, "values": {}})
    if taken["dataset_key"] != selection.dataset_key:
        # once per world, the training sliders the user has not moved take the shipped run's settings, so its
        # table shows at once (a link's own values stay)
        values = {}
        shipped_training = study.config.training
        for key, value in (("features_epochs", shipped_training.epochs),
                           ("features_eval_eps", shipped_training.eval_eps_l2),
                           ("features_eval_n", shipped_training.eval_n)):
            if st.session_state.get(key) in (URL_DEFAULTS[key], taken["values"].get(key)):
                st.session_state[key] = values[key] = value
        st.session_state[SHIPPED_SETTINGS_KEY] = {"dataset_key": selection.dataset_key, "values": values}

# --- grids ----------------------------------------------------------------------------------------------------
st.subheader("What the sets look like")
st.caption("Each image with the label a model is trained on and, for D̂_rand / D̂_det, the true label of the image "
           "it was made from (in brackets): their labels look wrong to a person. D̂_R / D̂_NR keep the label of the "
           "image whose features they match, from a random other image as the start; D̂_NR images look like that "
           "start.")
test_images = selection.dataset
st.markdown(f"**{ORIGINAL_LABEL}** — the original test images with their true labels")
for column, index in zip(st.columns(8), range(min(8, len(test_images)))):
    column.image(to_pil(test_images.images[index], width_px=84), width="stretch",
                 caption=test_images.class_names[int(test_images.labels[index])])
for constructed in sets.values():
    built = how_built(constructed.metric)
    st.markdown(f"**{constructed.label}** — {counts.get(constructed.config.kind, len(constructed)):,} images from "
                f"{constructed.source_model}" + (f"; {built}" if built else ""))
    relabelled = KINDS[constructed.config.kind].traits["relabel"] is not None  # else label and source's agree
    for column, index in zip(st.columns(8), range(min(8, len(constructed)))):
        label = constructed.class_names[int(constructed.labels[index])]
        column.image(to_pil(constructed.images[index], width_px=84), width="stretch",
                     caption=f"{label} (was {constructed.class_names[int(constructed.original_labels[index])]})"
                     if relabelled else label)

# --- train and compare ----------------------------------------------------------------------------------------
st.subheader("Train on each set, test on the original test set")
t1, t2, t3 = st.columns(3)
epochs = t1.slider("Epochs", 1, 20, key="features_epochs")
eval_eps = t2.slider("L2 ε for robust accuracy", 0.1, 2.0, step=0.05, key="features_eval_eps")
eval_n = t3.slider("Test images attacked", 100, 2000, step=100, key="features_eval_n")
train_all = st.button("Train a fresh model on each set", type="primary", key="features_train")
results = {kind_name: cache.cached_feature_training(set_refs[kind_name]["key"], selection.dataset_key, epochs,
                                                    eval_eps, eval_n, constructed, selection.dataset)
           for kind_name, constructed in sets.items()
           if kind_name in set_refs and cache.remember_run(TRAINING_RUNS_KEY, f"{set_refs[kind_name]['key']}|{selection.dataset_key}|{epochs}|"
                                                    f"{eval_eps}|{eval_n}", just_ran=train_all, keep=8)}
extra_robust: dict[str, float] = {}  # robust accuracy at a second radius, where the shipped run measured one
showing_shipped = False  # the shipped study's own numbers: the scorecard's verdicts on them close the takeaway
extra_eps = None if shipped is None else study.config.extra_eval_eps_l2
if not results and shipped is not None and (study.config.training.epochs, study.config.training.eval_eps_l2,
                                            study.config.training.eval_n) == (epochs, eval_eps, eval_n):
    results = dict(study.training)  # trained by the same script, with these settings
    extra_robust = dict(study.robust_accuracy_extra)
    showing_shipped = True
elif train_all and shipped is not None:
    st.info("The sets shown are the shipped previews (eight images each): build the sets above to train on them "
            "live.")
if results:
    labels = {kind_name: KINDS[kind_name].label for kind_name in results}
    # the paper's number in the same cell as ours (at the same radius only): beside it, in a table that fits a
    # laptop's page
    paper_world = world_of(selection.dataset_key, ("cifar10",)) is not None  # the paper's numbers are CIFAR-10's
    test_column = "test accuracy (ours · paper)" if paper_world else "test accuracy"
    training_table = [{"trained on": labels[kind_name], "N": result.n_train,
                       test_column: _with_paper(result.test_accuracy, kind_name, "test_accuracy", paper_world),
                       f"robust accuracy, L2 ε = {result.eps:g}": _with_paper(
                           result.robust_accuracy, kind_name, f"robust_accuracy_l2_{result.eps:g}", paper_world),
                       **({f"robust accuracy, L2 ε = {extra_eps:g}": _with_paper(
                           extra_robust[kind_name], kind_name, f"robust_accuracy_l2_{extra_eps:g}", paper_world)}
                          if kind_name in extra_robust else {}),
                       "accuracy on (y + 1) mod C labels": ("—" if result.relabelled_test_accuracy is None
                                                            else f"{result.relabelled_test_accuracy:.1%}")}
                      for kind_name, result in results.items()]
    st.dataframe(training_table, hide_index=True, width="stretch")
    # where each paper number comes from (on another world, with the test accuracy the cells leave out)
    sources = "; ".join(f"{labels[kind_name]}: " + ("" if paper_world else
                                                    f"{PAPER_CIFAR10[kind_name]['test_accuracy']:.1%}, ")
                        + f"its {PAPER_CIFAR10[kind_name]['source']}" for kind_name in results)
    st.caption("Ours: this app's run on this world's test images. " + (
        f"After “paper”: the paper's number on CIFAR-10 with a ResNet-50 trained on 50,000 images ({sources})."
        if paper_world else
        f"The paper's test accuracies are CIFAR-10's ({sources}), another dataset, so none stands beside these."))
    if extra_robust and (baseline := study.baseline) is not None and baseline.robust_accuracy_extra is not None:
        st.caption(f"At this scale, the same network trained on the first {baseline.n_train:,} original training "
                   f"images (D) reaches {baseline.test_accuracy:.1%} on these test images, "
                   f"{baseline.robust_accuracy:.1%} at L2 ε = {study.config.training.eval_eps_l2:g} and "
                   f"{baseline.robust_accuracy_extra:.1%} at {extra_eps:g}; the paper's "
                   f"ResNet-50 on all of CIFAR-10: {PAPER_CIFAR10['d']['test_accuracy']:.1%}, "
                   f"{PAPER_CIFAR10['d']['robust_accuracy_l2_0.25']:.1%} and "
                   f"{PAPER_CIFAR10['d']['robust_accuracy_l2_0.5']:.1%}.")
    left, right = st.columns(2)
    bars_figure = accuracy_bars(list(labels.values()), {
        "test accuracy (ours)": [r.test_accuracy for r in results.values()],
        "robust accuracy (ours)": [r.robust_accuracy for r in results.values()],
        **({"paper: CIFAR-10 test acc.": [PAPER_CIFAR10[k]["test_accuracy"] for k in results]} if paper_world
           else {})}, title="Accuracy on the ORIGINAL test set", grey=("paper: CIFAR-10 test acc.",))
    curve_n = min(ACCURACY_CURVE_IMAGES, len(selection.dataset))
    curves_figure = curves({k: list(enumerate(r.epoch_test_accuracy, start=1)) for k, r in results.items()}, labels,
                           title=f"Test accuracy per epoch ({'all' if curve_n == len(selection.dataset) else 'first'} "
                                 f"{curve_n:,} test images)", x_label="epoch", y_label="accuracy")
    left.plotly_chart(bars_figure, width="stretch", key="features_bars")
    right.plotly_chart(curves_figure, width="stretch", key="features_curves")
    st.caption(f"Chance is {1 / selection.dataset.num_classes:.0%}. D̂_det teaches only through non-robust features: "
               "its labels are wrong for every robust feature. If its model scores high on the (y + 1) mod C labels, "
               "it learned the label permutation from robust features instead (the paper's Table 10 check).")
    claim_ids = {kind: f"{kind.replace('_', '-')}-{claim}" for kind, claim in (
        ("d_det", "generalizes"), ("d_rand", "generalizes"), ("d_r", "gives-robustness"),
        ("d_nr", "gives-no-robustness")) if kind in results and kind not in at_scale_sets}
    shipped_verdicts = ({claim.id: claim for claim in world_claims(selection.dataset_key, claim_ids.values())}
                        if showing_shipped else {})
    takeaway = features_takeaway({k: r.test_accuracy for k, r in results.items()}, labels,
                                 selection.dataset.num_classes, len(selection.dataset),
                                 verdicts={kind: shipped_verdicts[claim_id].verdict for kind, claim_id in
                                           claim_ids.items() if claim_id in shipped_verdicts},
                                 relabelled_accuracy={k: r.relabelled_test_accuracy for k, r in results.items()},
                                 decided_elsewhere=at_scale_sets)
    if shipped_verdicts:
        takeaway = " ".join((takeaway, verdict_notes(selection.dataset_key, claim_ids.values()))).strip()
    explain(takeaway,
            "Each set was made from the training images by a source model. **D̂_rand / D̂_det**: every image is "
            "nudged by a small targeted attack toward a new class and *relabelled* as that class, so to a person the "
            "labels look wrong. **D̂_R**: images that keep only what a robust model sees; **D̂_NR**: what a standard "
            "model sees. A fresh model trains on each set and is tested on the untouched original test images: if "
            "it scores well above chance after training on 'wrong' labels, the attack's small patterns are real, "
            "predictive features of the class.")
    report_button(lambda: PageReport(
        "Robust vs non-robust features", takeaway,
        figures=(("Accuracy on the original test set", bars_figure), ("Test accuracy per epoch", curves_figure)),
        tables=(("Training on each set", training_table),
                ("Constructed sets", [{"set": s.label, "images": len(s), "source model": s.source_model,
                                       **{k: round(v, 4) for k, v in s.metric.items()}} for s in sets.values()])),
        card=selection.card.to_dict(), parameters={"epochs": epochs, "eval_eps": eval_eps, "eval_n": eval_n,
                                                   "dataset": selection.dataset.name},
        references=("features", "pgd"),
        command=features_commands(sets, epochs, eval_eps, eval_n, showing_shipped, shipped)),
        name="features", key="features_report")

# --- transfer study -------------------------------------------------------------------------------------------
st.subheader("Transfer: do architectures that learn from D̂_det also take the source's attacks?")
st.caption("Each architecture is trained twice: on D̂_det (x: its accuracy on the original test set) and on the same "
           "source images with their true labels (y: how often the source model's untargeted L2-PGD examples fool "
           "it). The paper (Figure 3): VGG-16, Inception-v3, ResNet-18, DenseNet and ResNet-50 trained on D̂_det "
           "from a standard ResNet-50, a rising trend.")
if "d_det" not in set_refs:
    st.info("The D̂_det above is the shipped study's preview (eight of its images; the set itself is not shipped): "
            "build or load the whole set to run the transfer "
            "study." if "d_det" in sets else "Build or load D̂_det to run the transfer study.")
    st.stop()
det = sets["d_det"]
r1, r2, r3 = st.columns(3)
architectures = tuple(r1.multiselect("Architectures", sorted(ARCHITECTURES), default=sorted(ARCHITECTURES),
                                     key="features_transfer_architectures"))
transfer_epochs = r2.slider("Epochs per model", 1, 20, 3, key="features_transfer_epochs")
transfer_eps = r3.slider("L2 ε of the source's attack", 0.1, 3.0, 1.0, step=0.1, key="features_transfer_eps")
run_transfer = st.button("Run the transfer study", key="features_transfer") and bool(architectures)
transfer_key = f"{set_refs['d_det']['key']}|{selection.dataset_key}|{architectures}|{transfer_epochs}|{transfer_eps}"
if cache.remember_run(TRANSFER_RUNS_KEY, transfer_key, just_ran=run_transfer, keep=2):
    source_card = cards.get(det.source_model)
    train_set = training_split(source_card.dataset, source_card.input_shape) if source_card else None
    if source_card is None:
        st.error(f"The source model of this D̂_det ({det.source_model}) is not installed.")
    elif train_set is not None:
        points = cache.cached_transfer_study(set_refs["d_det"]["key"], selection.dataset_key, architectures,
                                             transfer_epochs, transfer_eps, 500, cache.cached_model(det.source_model),
                                             det, train_set, selection.dataset)
        st.plotly_chart(transfer_scatter([point.to_dict() for point in points],
                                         title=f"Transfer from {det.source_model}",
                                         chance=1 / selection.dataset.num_classes),
                        width="stretch", key="features_transfer_scatter")
