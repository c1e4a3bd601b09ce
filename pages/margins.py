"""Margin consistency: the free logit margin against the expensive input-space margin, and detecting brittle decisions."""

from __future__ import annotations

import sia_app.preload  # noqa: F401  (first: a session that opens a fresh server waits here for its imports)
import math

import streamlit as st

from sia_app import cache, url_state
from sia_app.explain import explain
from sia_app.report_button import report_button
from sia_app.navigation import require_app_frame
from sia_app.references import render_references
from sia_app.sidebar import compatible_cards, require_selection
from sia_app.worlds import world_of
from sia_app.zoo_view import render_zoo
from sia_core.attacks import radius_label
from sia_core.attacks.base import NORMS
from sia_core.errors import SiaError
from sia_core.figures import binned_margin_curves, margin_scatter, roc_curves, to_pil
from sia_core.margins import PSEUDO_INPUTS, ZOO_MODELS, binned_median_curve, detection_metrics
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.references import REFERENCES
from sia_core.report import PageReport
from sia_core.takeaways import margins_takeaway

STUDY_RUNS_KEY = "margin_study_runs"    # the keys of the studies this session computed (results stay in the cache)
PSEUDO_RUNS_KEY = "margin_pseudo_runs"

require_app_frame("pages/margins.py")
st.title("Margin consistency")
st.caption("How far is each input from the decision boundary (input margin, found by an attack), and does the free "
           "logit margin rank inputs the same way? After " + REFERENCES["margins"].short() + " (its figures are on "
           "CIFAR-10; every number here is this app's own.)")
render_references(('margins', 'deepfool', 'pgd'))

url_state.seed_from_url({"margins_n": url_state.integer(50, 2000), "margins_norm": url_state.choice(NORMS)})
st.session_state.setdefault("margins_n", 300)
selection = require_selection()
if selection.card.is_keypoints:
    st.info(f"**{selection.card.id}** places landmarks; it does not classify. Margins (the logit margin, and the "
            "distance to the decision boundary) are defined for classifiers: there is no decision boundary between "
            "classes to measure here. Choose a classifier and its dataset in the sidebar to use this lens; the keypoint "
            "worlds go through the SIA explore and diagnosis pages and the RoI vs RoA page.")
    st.stop()
render_zoo(selection.card.dataset)  # every shipped model of a world at a glance: precomputed, no click needed

st.subheader("Two models, image by image")
dataset = selection.dataset
cards = {card.id: card for card in compatible_cards(dataset)}
# the sidebar's model even when no card lists it: uploaded weights are a model of their own (their card's id names
# the weights' digest), not the shipped model of that architecture
ids = list(cards) if selection.card.id in cards else [selection.card.id, *cards]


def model_of(model_id: str) -> ClassifierWrapper:
    """The sidebar's own model for its card's id, else the model of that id."""
    return selection.model if model_id == selection.card.id else cache.cached_model(model_id)


def cache_key_of(model_id: str) -> str:
    """The key a model's studies are cached under, shared by sessions: its model's id (an operator's model carries
    its weights' digest there), never the card's id alone."""
    return model_of(model_id).model_id


# the sidebar's model first, then a shipped one to compare it with
shipped_pair = [model_id for model_id in ids if model_id.endswith(("-standard", "-robust"))]
defaults = list(dict.fromkeys(i for i in (selection.card.id, *shipped_pair) if i in ids))[:2]
defaults = defaults or ids[:1]

with st.form("margins_form"):
    c1, c2, c3 = st.columns(3)
    chosen = c1.multiselect("Models (two to compare)", ids, default=defaults, max_selections=2, key="margins_models")
    n = c2.slider("Images (N)", 50, 2000, step=50, key="margins_n")
    norm = c3.radio("Norm", list(NORMS), horizontal=True, key="margins_norm")
    run = st.form_submit_button("Compute the margins", type="primary")

keys = {model_id: f"{cache_key_of(model_id)}|{selection.dataset_key}|{n}|{norm}" for model_id in chosen}
ready = {model_id: cache.cached_margin_study(cache_key_of(model_id), selection.dataset_key, n, norm,
                                             model_of(model_id), dataset)
         for model_id in chosen if cache.remember_run(STUDY_RUNS_KEY, keys[model_id], just_ran=run)}
live = set(ready)  # computed in this session, not read from the shipped studies
if not ready:  # the shipped studies for these settings, if there are, so the page opens on a result
    shipped = {model_id: cache.precomputed("margins", model_id, selection.dataset_key, {"n": n, "norm": norm})
               for model_id in chosen}
    if shipped and all(shipped.values()):
        ready = {model_id: stored.result for model_id, stored in shipped.items()}
        cache.precomputed_note(next(iter(shipped.values())))
if not ready:
    st.info("Choose one or two models and N, then compute the margins (a progress bar shows the time left, as measured "
            "on this machine).")
    st.stop()

if norm == "linf":
    eps = st.slider("ε for 'non-robust' (/255): input margin ≤ ε", 0.5, 32.0, 2.0, step=0.5, key="margins_eps") / 255
else:
    eps = st.slider("ε for 'non-robust' (L2): input margin ≤ ε", 0.05, 3.0, 0.25, step=0.05, key="margins_eps_l2")
summaries = {model_id: study.summary(eps=eps) for model_id, study in ready.items()}
report_figures: dict = {}

# --- scatter per model, side by side ------------------------------------------------------------------
tau_intervals: dict[str, tuple[float, float]] = {}
zoo_world = world_of(selection.card.dataset, tuple(ZOO_MODELS))
zoo_shipped = cache.shipped_zoo(zoo_world) if zoo_world else None
in_zoo = [model_id for model_id in ready if zoo_shipped and any(entry.model_id == model_id
                                                                 for entry in zoo_shipped.result.entries)]
if in_zoo and zoo_shipped.result.config.n != n:
    # the same model's τ twice on one page: the zoo's (which the scorecard judges) and this sample's
    st.caption(f"The zoo above measures {' and '.join(in_zoo)} on {zoo_shipped.result.config.n:,} test images, and "
               f"the scorecard's verdict reads that; here τ is over the first {n:,}, so the two can differ within "
               "their intervals, and this one draws no verdict.")
for column, (model_id, study) in zip(st.columns(len(ready)), ready.items()):
    summary = summaries[model_id]
    with column:
        # the sample and the interval beside τ: the zoo above measures the same model on a sample of its own size
        source = "live" if model_id in live else "shipped"
        low, high = cache.cached_tau_interval(f"{model_id}|{selection.dataset_key}|{n}|{norm}|{source}", study)
        tau_intervals[model_id] = (low, high)
        interval = f" [{low:.2f}, {high:.2f}]" if math.isfinite(low) and math.isfinite(high) else ""
        st.markdown(f"**{model_id}** · Kendall τ = **{summary.kendall_tau:.3f}**{interval} on the "
                    f"first {len(study.labels):,} images · Pearson r = {summary.pearson:.3f}",
                    help="Kendall τ: how often two images are ordered the same way by their logit margin and by "
                         "their input margin, from −1 (always reversed) through 0 (no relation) to 1 (always the "
                         "same); in brackets its 95% interval, a bootstrap over these images (the zoo above "
                         "measures τ over its own number of images, so the two may differ). Pearson r: how close "
                         "the two margins lie to a straight line.")
        figure = margin_scatter(study.input.margins, study.scores.logit_margin, study.correct, study.labels,
                                dataset.class_names, eps=eps, norm=norm)
        report_figures[f"Margins of {model_id}"] = figure
        event = st.plotly_chart(figure, on_select="rerun", selection_mode="points", key=f"margins_scatter_{model_id}")
        sample_key = f"margins_sample_{model_id}"
        points = (event.selection.get("points", []) if event and getattr(event, "selection", None) else [])
        if points:
            st.session_state[sample_key] = int(points[0]["customdata"][0])
        sample = st.number_input("Sample (or select a point)", 0, len(study.labels) - 1, key=sample_key)
        left, right = st.columns(2)
        left.image(to_pil(dataset.images[sample], width_px=140), width="stretch",
                   caption=f"#{sample}: {dataset.class_names[int(study.labels[sample])]}, predicted "
                           f"{dataset.class_names[int(study.scores.predictions[sample])]}")
        adversarial = (study.input.adversarial_images[sample] if len(study.input.adversarial_images) else  # shipped
                       cache.cached_adversarial_at_margin(cache_key_of(model_id), selection.dataset_key, int(sample),
                                                          norm, model_of(model_id), dataset.images[sample]))
        adversarial_prediction = int(model_of(model_id).predict_proba(adversarial).argmax())
        right.image(to_pil(adversarial, width_px=140), width="stretch",
                    caption=f"at the margin: {dataset.class_names[adversarial_prediction]}")
        margin = float(study.input.margins[sample])
        st.caption(f"input margin {f'{margin * 255:.2f}/255' if norm == 'linf' else f'{margin:.4f}'} · logit margin "
                   f"{float(study.scores.logit_margin[sample]):.3f} · feature margin "
                   f"{float(study.scores.feature_margin[sample]):.4f}",
                   help="Input margin: the smallest change that flips the decision. Logit margin: the gap between "
                        "the two highest scores. Feature margin: the logit margin divided by the L1 size of the "
                        "difference of the two classes' last-layer weights: the L∞ distance to the boundary in the "
                        "penultimate features.")

# --- binned median curve, detection and cost -------------------------------------------------------------
detections = {model_id: detection_metrics(study.input.margins, -study.scores.logit_margin, eps)
              for model_id, study in ready.items()}
left, right = st.columns(2)
report_figures["Binned median logit margin"] = binned_margin_curves({
    f"{model_id} (τ = {summaries[model_id].kendall_tau:.2f})": binned_median_curve(study.input.margins,
                                                                                  study.scores.logit_margin)
    for model_id, study in ready.items()}, norm=norm)
# a model with no AUROC (every input, or none, breaks within ε) has no curve to draw: the title says so
undefined = [model_id for model_id, detection in detections.items() if not math.isfinite(detection.auroc)]
report_figures["Detection ROC"] = roc_curves({f"{model_id} (AUROC {detection.auroc:.3f})":
                                              (detection.roc_fpr, detection.roc_tpr)
                                              for model_id, detection in detections.items()
                                              if math.isfinite(detection.auroc)},
                                             title="Detecting non-robust inputs with the negative logit margin"
                                                   + (f" (no curve for {', '.join(undefined)}: every input, or "
                                                      "none, breaks within ε)" if undefined else ""))
left.plotly_chart(report_figures["Binned median logit margin"], width="stretch", key="margins_curve")
right.plotly_chart(report_figures["Detection ROC"], width="stretch", key="margins_roc")
takeaway = " ".join(margins_takeaway(model_id, summary.kendall_tau, summary.auroc, summary.non_robust_share,
                                      n=summary.n, eps=summary.eps, norm=norm,
                                      tau_interval=tau_intervals.get(model_id))
                    for model_id, summary in summaries.items())
explain(takeaway,
        "Each dot is one test image. Across: its **input margin**, the smallest change (found by an attack) that "
        "flips the model's decision: how robust that one decision is, and expensive to compute. Up: its **logit "
        "margin**, the gap between the top two scores: free, from one forward pass. If the dots climb together "
        "(high Kendall τ) the free number can stand in for the expensive one. The ROC curve asks how well the "
        "logit margin alone picks out the inputs an attack within ε breaks (the dots left of the dashed line).")
st.markdown("**Detection and cost** — the logit margin needs one forward pass; the input margin needs an attack per "
            "image (DeepFool in the chosen norm, then a walk along the decision boundary that shrinks the flip). "
            "Detection treats the inputs an attack within ε flips as the ones to catch: AUROC is the chance that the "
            "logit margin ranks a brittle input below a robust one; AUPR the area under precision (flagged inputs "
            "that are brittle) against recall (brittle inputs flagged); FPR @ 95% TPR the share of robust inputs "
            "flagged by mistake once 95% of the brittle ones are caught.")
# the columns a reader compares first (detection, the two robust accuracies, the speed-up) before the details, so
# they show on a laptop's page; the attacked count in the header when the models share it, not in every cell
attacked = {summary.estimate_attacked_samples for summary in summaries.values()}
shared = len(attacked) == 1
estimate_header = f"robust (estimate, {next(iter(attacked)):,} attacked)" if shared else "robust (estimate)"
detection_table = [{"model": model_id, "AUROC": f"{summary.auroc:.3f}",
                    "non-robust share": f"{summary.non_robust_share:.1%}",
                    "robust (attack)": f"{summary.robust_accuracy_attack:.1%}",
                    estimate_header: f"{summary.robust_accuracy_estimate:.1%}"
                                     + ("" if shared else f" ({summary.estimate_attacked_samples:,} attacked)"),
                    "speed-up": f"{summary.speedup:.0f}×",
                    "AUPR": f"{summary.aupr:.3f}", "FPR @ 95% TPR": f"{summary.fpr_at_95_tpr:.3f}",
                    "logit margins (s)": f"{summary.seconds_logit_margins:.3f}",
                    "input margins (s)": f"{summary.seconds_input_margins:.1f}"}
                   for model_id, summary in summaries.items()]
st.dataframe(detection_table, hide_index=True, width="stretch", column_config={
    "model": st.column_config.TextColumn(pinned=True),
    "robust (attack)": st.column_config.TextColumn(help="Robust accuracy: the share of the inputs that are "
                                                        "classified correctly and that no attack within ε flips."),
    estimate_header: st.column_config.TextColumn(help="Robust accuracy estimated from the logit margin: a few "
                                                      "images are attacked to fit a margin threshold, the rest are "
                                                      "read off their logit margin."),
    "speed-up": st.column_config.TextColumn(help="How many times faster the logit margins were than the input "
                                                 "margins, on this machine."),
    "AUROC": st.column_config.TextColumn(help="How well the logit margin alone ranks the inputs an attack within ε "
                                              "breaks above the others: 0.5 is chance, 1 perfect."),
    "AUPR": st.column_config.TextColumn(help="Area under the precision-recall curve of the same detection: its "
                                             "chance level is the non-robust share."),
    "FPR @ 95% TPR": st.column_config.TextColumn(help="The share of robust inputs flagged by mistake when the "
                                                      "threshold catches 95% of the brittle ones (lower is better)."),
    "non-robust share": st.column_config.TextColumn(help="The share of inputs an attack within ε flips.")})
report_button(lambda: PageReport(
    "Margin consistency: " + " vs ".join(ready), takeaway, figures=tuple(report_figures.items()),
    tables=(("Detection and cost", detection_table),
            ("Summary", [{"model": m, **{k: v for k, v in s.to_dict().items() if not isinstance(v, (list, dict))}}
                         for m, s in summaries.items()])),
    card=selection.card.to_dict(), parameters={"models": list(ready), "n": n, "norm": norm, "eps": eps,
                                               "dataset": dataset.name},
    references=("margins", "deepfool", "pgd"),
    command="\n".join(f"python -m sia_core margins "
                      f"{selection.model_arguments if m == selection.card.id else f'--model {m}'} --n {n} "
                      f"--norm {norm} --eps {eps:.6g} --json" for m in ready)), name="margins", key="margins_report")

# --- pseudo-margin --------------------------------------------------------------------------------------
st.subheader("Pseudo-margin")
st.caption("For weakly consistent models: a small MLP (the paper's CNET) learns √(input margin) from the logits or "
           "the penultimate features on held-out images, then ranks the evaluated images instead of the logit margin.")
p1, p2, p3 = st.columns(3)
pseudo_model = p1.selectbox("Model", list(ready), key="margins_pseudo_model")
source = p2.radio("Input", list(PSEUDO_INPUTS), horizontal=True, key="margins_pseudo_source")
fit_n = p3.slider("Held-out images", 50, 1000, 200, step=50, key="margins_pseudo_n")
learn = st.button("Learn the pseudo-margin", key="margins_pseudo_run")
if cache.remember_run(PSEUDO_RUNS_KEY, f"{keys[pseudo_model]}|{source}|{fit_n}|{eps}", just_ran=learn, keep=1):
    try:
        pseudo = cache.cached_pseudo_margin_study(cache_key_of(pseudo_model), selection.dataset_key, n, norm, source,
                                                  fit_n, eps, model_of(pseudo_model), dataset, ready[pseudo_model],
                                                  (cards.get(pseudo_model) or selection.card).dataset)
    except SiaError as error:
        st.error(str(error))
    else:
        result = pseudo.result
        q1, q2 = st.columns(2)
        q1.metric("Kendall τ: logit margin → pseudo-margin", f"{result.kendall_tau_after:.3f}",
                  f"{result.kendall_tau_after - result.kendall_tau_before:+.3f} from {result.kendall_tau_before:.3f}")
        q2.metric(f"AUROC at {radius_label(pseudo.eps, norm)}", f"{result.auroc_after:.3f}",
                  f"{result.auroc_after - result.auroc_before:+.3f} from {result.auroc_before:.3f}")
        st.caption(f"Learned from the {result.source} of {pseudo.fit_split}; evaluated on the N images above.")
