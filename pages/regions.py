"""Region of Importance vs Region of Attack: where the model looks, where the attack works, and blanking the difference."""

from __future__ import annotations

import json

import streamlit as st
import torch

from sia_app import cache
from sia_app.navigation import require_app_frame
from sia_app.sidebar import require_selection
from sia_core.figures import ZONE_NAMES, curves, heatmap, histogram, to_pil, zone_overlay
from sia_core.regions.attack_maps import ROA_METHODS
from sia_core.regions.importance import ROI_METHODS, conv_layer_names
from sia_core.regions.neutralization import MASK_LABELS, NeutralizationConfig, neutralization_study
from sia_core.regions.overlap import overlap_metrics, top_fraction_mask, zones

STUDIES_KEY = "regions_studies"

require_app_frame("pages/regions.py")
st.title("Region of Importance vs Region of Attack")
st.caption("Where the model looks (RoI), where an attack changes the image to effect (RoA), how much they overlap, "
           "and whether blanking the vulnerable-but-unimportant part defends the model (PAPERS.md §2.4; the paper's "
           "own recipe is not public, so every number here is from this run).")

selection = require_selection()
model, dataset = selection.model, selection.dataset

# --- one image ----------------------------------------------------------------------------------
st.subheader("One image")
c1, c2, c3, c4 = st.columns(4)
index = c1.number_input("Index in the dataset", 0, len(dataset) - 1, 0, key="regions_index")
roi_method = c2.selectbox("RoI method", list(ROI_METHODS), key="regions_roi_method", help="\n\n".join(ROI_METHODS.values()))
roa_method = c3.selectbox("RoA method", list(ROA_METHODS), key="regions_roa_method",
                          help="\n\n".join(ROA_METHODS.values()))
target = c4.selectbox("Explain", ["true", "predicted"] + [str(i) for i in range(model.num_classes)], key="regions_target",
                      format_func=lambda t: t if not t.isdigit() else f"class {model.class_names[int(t)]}")
roi_options: dict = {}
if roi_method == "gradcam":
    layers = conv_layer_names(model)
    roi_options["layer"] = st.selectbox("Grad-CAM layer", layers, index=len(layers) - 1, key="regions_layer")
q_percent = st.slider("Region size q (% of pixels in each region)", 5, 50, 20, key="regions_q")
shared_scale = st.toggle("One colour scale for both maps", value=False, key="regions_shared_scale",
                         help="Off: each map is scaled to its own maximum. On: both use the larger maximum.")

image, label = dataset.images[index:index + 1], int(dataset.labels[index])
maps = cache.cached_region_maps(selection.model_key, selection.dataset_key, int(index), roi_method,
                                json.dumps(roi_options, sort_keys=True), roa_method, target, model, image, label)
importance, attack = maps["importance"].unsqueeze(0), maps["attack"].unsqueeze(0)
fraction = q_percent / 100
metrics = overlap_metrics(importance, attack, fraction)
zone_map = zones(top_fraction_mask(importance, fraction), top_fraction_mask(attack, fraction))[0]
scale_max = float(torch.maximum(importance.max(), attack.max())) if shared_scale else None
predicted = int(model.predict_proba(image).argmax())

columns = st.columns(4)
columns[0].image(to_pil(image, upscale=8), width="stretch",
                 caption=f"true {model.class_names[label]} · predicted {model.class_names[predicted]}")
columns[1].plotly_chart(heatmap(importance[0], title=f"RoI: {roi_method} ({model.class_names[maps['explained_class']]})",
                                zmax=scale_max), width="stretch", key="regions_roi")
adversarial = maps["adversarial_prediction"]
columns[2].plotly_chart(heatmap(attack[0], title=f"RoA: {roa_method}" + (
    f" → {model.class_names[adversarial]}" if adversarial is not None else ""), zmax=scale_max, colorscale="Inferno"),
    width="stretch", key="regions_roa")
columns[3].plotly_chart(zone_overlay(zone_map, image[0], title=f"Zones at q = {q_percent}%"), width="stretch",
                        key="regions_zones")
st.caption("Zones: " + " · ".join(f"{name}" for name in ZONE_NAMES) + " (light, red, blue, purple). "
           "Red is what neutralization would blank.")
means = metrics.means()
m1, m2, m3, m4 = st.columns(4)
m1.metric("IoU of the regions", f"{means['iou']:.3f}")
m2.metric("Dice", f"{means['dice']:.3f}")
m3.metric("Attack energy inside the RoI", f"{means['energy_in_roi']:.1%}")
m4.metric("Spearman of the two maps", f"{means['spearman']:.3f}")

# --- the dataset view -----------------------------------------------------------------------------
st.divider()
st.subheader("Across the dataset, and neutralization as a defense")
with st.form("regions_study_form"):
    d1, d2, d3, d4 = st.columns(4)
    n = d1.slider("Evaluation images", 32, 1024, 256, step=32, key="regions_n")
    n_fit = d2.slider("Held-out images (learn the deployable masks)", 32, 1024, 256, step=32, key="regions_n_fit")
    eps_255 = d3.slider("PGD ε (/255, L∞)", 1.0, 32.0, 8.0, step=1.0, key="regions_eps")
    fill = d4.selectbox("Fill", ["zero", "mean", "blur"], key="regions_fill",
                        help="What replaces the blanked pixels: black, the dataset's mean colour, or a blurred copy.")
    run = st.form_submit_button("Run the study", type="primary")
config = NeutralizationConfig(n=n, n_fit=n_fit, fraction=fraction, eps=eps_255 / 255, fill=fill)
study_key = f"{selection.model_key}|{selection.dataset_key}|{config}"
studies: dict = st.session_state.setdefault(STUDIES_KEY, {})
if run:
    bar = st.progress(0.0, text="Running…")
    studies[study_key] = neutralization_study(
        model, dataset, config, progress=lambda s, t, info: bar.progress(s / t, text=f"{info['stage']} ({s}/{t})"))
    bar.empty()
report = studies.get(study_key)
if report is None:
    st.info("Run the study to see class-averaged maps, the IoU histogram and the neutralization table "
            "(about 10 s for 256 + 256 images on a CPU). It uses occlusion RoI and effect-weighted PGD RoA.")
    st.stop()

class_name = st.selectbox("Class-averaged maps for", list(report.class_names), key="regions_class")
k = list(report.class_names).index(class_name)
left, middle, right = st.columns(3)
left.plotly_chart(heatmap(report.class_importance[k], title=f"mean RoI · {class_name}"), width="stretch",
                  key="regions_class_roi")
middle.plotly_chart(heatmap(report.class_attack[k], title=f"mean RoA · {class_name}", colorscale="Inferno"),
                    width="stretch", key="regions_class_roa")
right.plotly_chart(histogram(report.iou_per_image, title=f"IoU of RoI and RoA (q = {report.fraction:.0%})",
                             x_label="IoU"), width="stretch", key="regions_iou")
st.markdown("**Neutralization** — blank each mask in the adversarial *and* the clean images, then classify again; "
            "the adaptive column attacks the defended pipeline itself.")
st.dataframe([{"mask": MASK_LABELS[row.mask], "area": f"{row.mean_area:.1%}",
               "adversarial acc. before": f"{row.adversarial_accuracy_before:.1%}",
               "adversarial acc. after": f"{row.adversarial_accuracy_after:.1%}",
               "clean acc. before": f"{row.clean_accuracy_before:.1%}",
               "clean acc. after": f"{row.clean_accuracy_after:.1%}",
               "adaptive attack": f"{row.adaptive_accuracy:.1%}"} for row in report.rows],
             hide_index=True, width="stretch")
st.plotly_chart(curves(report.curve, MASK_LABELS, title="Recovered adversarial accuracy against mask area",
                       x_label="share of pixels blanked", y_label="accuracy on adversarial inputs"),
                width="stretch", key="regions_curve")
st.caption(f"This run: {report.n} evaluation images, PGD-L∞ ε = {report.eps * 255:.0f}/255, fill = {report.fill}.")
