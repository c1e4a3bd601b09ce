"""Margin consistency: the free logit margin against the expensive input-space margin, and detecting brittle decisions."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from sia_app import cache
from sia_app.navigation import require_app_frame
from sia_app.sidebar import compatible_cards, require_selection
from sia_core.figures import to_pil
from sia_core.margins import (InputMarginEstimator, binned_median_curve, detection_metrics, fit_pseudo_margin,
                              margin_study, model_inputs_for_pseudo_margin, pseudo_margin_fit_images)

STUDIES_KEY = "margin_studies"
PSEUDO_KEY = "margin_pseudo"

require_app_frame("pages/margins.py")
st.title("Margin consistency")
st.caption("How far is each input from the decision boundary (input margin, found by an attack), and does the free "
           "logit margin rank inputs the same way? (PAPERS.md §4; the paper's figures are on CIFAR-10 — every number "
           "here is from this run.)")

selection = require_selection()
dataset = selection.dataset
ids = [card.id for card in compatible_cards(dataset)]
defaults = [i for i in ("fmnist-standard", "fmnist-robust") if i in ids] or ids[:1]

with st.form("margins_form"):
    c1, c2, c3 = st.columns(3)
    chosen = c1.multiselect("Models (two to compare)", ids, default=defaults, max_selections=2, key="margins_models")
    n = c2.slider("Images (N)", 50, 2000, 300, step=50, key="margins_n")
    norm = c3.radio("Norm", ["linf", "l2"], horizontal=True, key="margins_norm")
    run = st.form_submit_button("Compute the margins", type="primary")

studies: dict = st.session_state.setdefault(STUDIES_KEY, {})
keys = {model_id: f"{model_id}|{selection.dataset_key}|{n}|{norm}" for model_id in chosen}
if run:
    for model_id in chosen:
        if keys[model_id] in studies:
            continue
        bar = st.progress(0.0, text=f"Input margins of {model_id}…")
        studies[keys[model_id]] = margin_study(
            cache.cached_model(model_id), dataset.images[:n], dataset.labels[:n], norm=norm,
            estimator=InputMarginEstimator(norm=norm), dataset=dataset.name,
            progress=lambda s, t, info: bar.progress(s / t, text=f"{model_id}: {info['images']} images"))
        bar.empty()
ready = {model_id: studies[key] for model_id, key in keys.items() if key in studies}
if not ready:
    st.info("Choose one or two models and N, then compute the margins (about 15 s per 300 images per model on a CPU).")
    st.stop()

if norm == "linf":
    eps = st.slider("ε for 'non-robust' (/255): input margin ≤ ε", 0.5, 32.0, 2.0, step=0.5, key="margins_eps") / 255
else:
    eps = st.slider("ε for 'non-robust' (L2): input margin ≤ ε", 0.05, 3.0, 0.25, step=0.05, key="margins_eps_l2")

# --- scatter per model, side by side ------------------------------------------------------------------
columns = st.columns(len(ready))
for column, (model_id, study) in zip(columns, ready.items()):
    summary = study.summary(eps=eps)
    with column:
        st.markdown(f"**{model_id}** · Kendall τ = **{summary['kendall_tau']:.3f}** · Pearson r = "
                    f"{summary['pearson']:.3f}")
        correct = study.correct
        figure = go.Figure()
        for is_correct, color, name in ((True, "#1f4e79", "correct"), (False, "#d62728", "misclassified")):
            members = (correct == is_correct).nonzero().squeeze(1)
            figure.add_scatter(
                x=study.input.margins[members].numpy(), y=study.scores.logit_margin[members].numpy(), mode="markers",
                name=name, marker=dict(color=color, size=5, opacity=0.6),
                customdata=[[int(i), dataset.class_names[int(study.labels[i])]] for i in members],
                hovertemplate="sample %{customdata[0]} (%{customdata[1]})<br>input margin %{x:.4f}<br>"
                              "logit margin %{y:.3f}<extra></extra>")
        figure.add_vline(x=eps, line_dash="dash", line_color="gray")
        figure.update_layout(xaxis_title=f"input margin ({norm})", yaxis_title="logit margin", height=360,
                             margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=1.08))
        event = st.plotly_chart(figure, on_select="rerun", selection_mode="points", key=f"margins_scatter_{model_id}")
        sample_key = f"margins_sample_{model_id}"
        points = (event.selection.get("points", []) if event and getattr(event, "selection", None) else [])
        if points:
            st.session_state[sample_key] = int(points[0]["customdata"][0])
        sample = st.number_input("Sample (or select a point)", 0, len(study.labels) - 1, key=sample_key)
        left, right = st.columns(2)
        left.image(to_pil(dataset.images[sample], upscale=5), width="stretch",
                   caption=f"#{sample}: {dataset.class_names[int(study.labels[sample])]}, predicted "
                           f"{dataset.class_names[int(study.scores.predictions[sample])]}")
        adversarial = study.input.adversarial_images[sample]
        adversarial_prediction = int(cache.cached_model(model_id).predict_proba(adversarial).argmax())
        right.image(to_pil(adversarial, upscale=5), width="stretch",
                    caption=f"at the margin: {dataset.class_names[adversarial_prediction]}")
        st.caption(f"input margin {float(study.input.margins[sample]):.4f} · logit margin "
                   f"{float(study.scores.logit_margin[sample]):.3f} · feature margin "
                   f"{float(study.scores.feature_margin[sample]):.4f}")

# --- binned median curve, detection and cost -------------------------------------------------------------
curve_figure = go.Figure()
roc_figure = go.Figure()
rows = []
for model_id, study in ready.items():
    summary = study.summary(eps=eps)
    curve = binned_median_curve(study.input.margins, study.scores.logit_margin)
    curve_figure.add_scatter(x=curve["centers"], y=curve["median"], error_y=dict(array=curve["stderr"]),
                             mode="lines+markers", name=f"{model_id} (τ = {summary['kendall_tau']:.2f})")
    detection = detection_metrics(study.input.margins, -study.scores.logit_margin, eps)
    roc_figure.add_scatter(x=detection.roc_fpr, y=detection.roc_tpr, mode="lines",
                           name=f"{model_id} (AUROC {detection.auroc:.3f})")
    rows.append({"model": model_id, "non-robust share": f"{summary['non_robust_share']:.1%}",
                 "AUROC": f"{detection.auroc:.3f}", "AUPR": f"{detection.aupr:.3f}",
                 "FPR @ 95% TPR": f"{detection.fpr_at_95_tpr:.3f}",
                 "robust acc. (attack)": f"{summary['robust_accuracy_attack']:.1%}",
                 "robust acc. (logit-margin estimate, 100 attacked)": f"{summary['robust_accuracy_estimate']:.1%}",
                 "logit margins (s)": f"{study.seconds_logit_margins:.3f}",
                 "input margins (s)": f"{study.seconds_input_margins:.1f}",
                 "speed-up": f"{summary['speedup']:.0f}×"})
curve_figure.update_layout(title="Median normalized logit margin per input-margin bin (5–95% kept)",
                           xaxis_title="input margin", yaxis_title="normalized logit margin", height=360,
                           margin=dict(l=10, r=10, t=40, b=10))
roc_figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="gray"), name="chance")
roc_figure.update_layout(title="Detecting non-robust inputs with the negative logit margin", xaxis_title="FPR",
                         yaxis_title="TPR", height=360, margin=dict(l=10, r=10, t=40, b=10))
left, right = st.columns(2)
left.plotly_chart(curve_figure, width="stretch", key="margins_curve")
right.plotly_chart(roc_figure, width="stretch", key="margins_roc")
st.markdown("**Detection and cost** — the logit margin needs one forward pass; the input margin needs an attack per "
            "image (DeepFool in the chosen norm, then PGD bisection).")
st.dataframe(rows, hide_index=True, width="stretch")

# --- pseudo-margin --------------------------------------------------------------------------------------
st.subheader("Pseudo-margin")
st.caption("For weakly consistent models: a small MLP (the paper's CNET) learns √(input margin) from the logits or "
           "the penultimate features on held-out images, then ranks the evaluated images instead of the logit margin.")
p1, p2, p3 = st.columns(3)
pseudo_model = p1.selectbox("Model", list(ready), key="margins_pseudo_model")
source = p2.radio("Input", ["logits", "features"], horizontal=True, key="margins_pseudo_source")
fit_n = p3.slider("Held-out images", 50, 1000, 200, step=50, key="margins_pseudo_n")
if st.button("Learn the pseudo-margin", key="margins_pseudo_run"):
    study = ready[pseudo_model]
    model = cache.cached_model(pseudo_model)
    fit_images, split = pseudo_margin_fit_images(selection.card.dataset, fit_n, dataset.images, n)
    if len(fit_images) < 20:
        st.error("Not enough held-out images (no training split here, and too few test images after N); lower N.")
    else:
        with st.spinner("Input margins of the held-out images, then training…"):
            fit_margins = InputMarginEstimator(norm=norm)(model, fit_images).margins
            result = fit_pseudo_margin(model_inputs_for_pseudo_margin(model, fit_images, source), fit_margins,
                                       model_inputs_for_pseudo_margin(model, dataset.images[:n], source),
                                       study.input.margins, study.scores.logit_margin, eps, source=source)
        st.session_state[PSEUDO_KEY] = {"key": keys[pseudo_model], "eps": eps, "result": result, "split": split}
stored = st.session_state.get(PSEUDO_KEY)
if stored is not None and stored["key"] == keys.get(pseudo_model):
    result = stored["result"]
    q1, q2 = st.columns(2)
    q1.metric("Kendall τ: logit margin → pseudo-margin", f"{result.kendall_tau_after:.3f}",
              f"{result.kendall_tau_after - result.kendall_tau_before:+.3f} from {result.kendall_tau_before:.3f}")
    q2.metric(f"AUROC at ε = {stored['eps']:.4f}", f"{result.auroc_after:.3f}",
              f"{result.auroc_after - result.auroc_before:+.3f} from {result.auroc_before:.3f}")
    st.caption(f"Learned from the {result.source} of {stored['split']}; evaluated on the N images above.")
