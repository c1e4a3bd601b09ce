"""Region of Importance vs Region of Attack: where the model looks, where the attack works, and blanking the difference."""

from __future__ import annotations

import sia_app.preload  # noqa: F401  (first: a session that opens a fresh server waits here for its imports)
import json
from dataclasses import replace

import streamlit as st
import torch

from sia_app import cache, keypoint_view, url_state
from sia_app.explain import explain
from sia_app.report_button import report_button
from sia_app.navigation import require_app_frame
from sia_app.references import render_references
from sia_app.sidebar import require_selection
from sia_core.claims import mask_gain_ci
from sia_core.errors import SiaError
from sia_core.figures import ZONE_NAMES, curves, heatmap, histogram, to_pil, zone_overlay
from sia_core.references import REFERENCES
from sia_core.report import PageReport
from sia_core.takeaways import neutralization_takeaway, overlap_takeaway
from sia_core.regions.attack_maps import ROA_METHODS
from sia_core.regions.importance import ROI_METHODS, conv_layer_names
from sia_core.regions.neutralization import (FILLS, MASK_KINDS, RANDOM_CONTROLS, NeutralizationConfig,
                                             random_control)
from sia_core.regions.overlap import overlap_metrics, random_regions_iou, top_fraction_mask, zones

STUDY_RUNS_KEY = "regions_study_runs"

require_app_frame("pages/regions.py")
st.title("Region of Importance vs Region of Attack")
st.caption("Where the model looks (RoI), where an attack changes the image to effect (RoA), how much they overlap, "
           "and whether blanking the vulnerable-but-unimportant part defends the model, after " +
           REFERENCES["roi-roa"].short() + " (its exact recipe is not public, so every number here is this app's own).")
render_references(('roi-roa', 'occlusion', 'saliency', 'smoothgrad', 'gradcam', 'integrated-gradients',
                   'pgd'))

url_state.seed_from_url({"regions_index": url_state.integer(0, 10**7),
                          "regions_roi_method": url_state.choice(ROI_METHODS.names()),
                          "regions_roa_method": url_state.choice(ROA_METHODS.names()),
                          "regions_q": url_state.integer(5, 50)})
selection = require_selection()
if selection.card.is_keypoints:  # RoI as the saliency of the landmark prediction, RoA as the NME attack's change
    keypoint_view.regions(selection)
    st.stop()
model, dataset = selection.model, selection.dataset

# --- one image ----------------------------------------------------------------------------------
st.subheader("One image")
c1, c2, c3, c4 = st.columns([0.8, 1.2, 1.2, 0.8])  # the methods' names are the longest: "Effect-weighted perturbation"
if st.session_state.get("regions_index", 0) >= len(dataset):  # a link made on a larger dataset
    st.session_state["regions_index"] = 0
index = c1.number_input("Index in the dataset", 0, len(dataset) - 1, key="regions_index")
roi_method = c2.selectbox("RoI method", ROI_METHODS.names(), key="regions_roi_method",
                          format_func=ROI_METHODS.labels().__getitem__,
                          help=ROI_METHODS.help_text())
roa_method = c3.selectbox("RoA method", ROA_METHODS.names(), key="regions_roa_method",
                          format_func=ROA_METHODS.labels().__getitem__,
                          help=ROA_METHODS.help_text())
target = c4.selectbox("Explain the class", ["true", "predicted"] + [str(i) for i in range(model.num_classes)],
                      key="regions_target", help="Whose score the maps explain: the image's true class, the model's "
                                                 "prediction, or a class you choose.",
                      format_func=lambda t: f"{t} class" if not t.isdigit() else f"class {model.class_names[int(t)]}")
roi_options: dict = {}
layers = conv_layer_names(model) if ROI_METHODS[roi_method].traits.get("needs_conv_layer") else []
if layers:  # a model without one gets the method's own clear error below
    default_layer = cache.cached_cam_layer(selection.model_key, model)  # the last conv with a spatial map
    roi_options["layer"] = st.selectbox("Grad-CAM layer", layers, index=layers.index(default_layer) if default_layer
                                        in layers else len(layers) - 1, key="regions_layer")
st.session_state.setdefault("regions_q", 20)
q_percent = st.slider("Region size q (% of pixels in each region)", 5, 50, key="regions_q")
shared_scale = st.toggle("One colour scale for both maps", value=False, key="regions_shared_scale",
                         help="Off: each map is scaled to its own maximum. On: both use the larger maximum.")

image, label = dataset.images[index:index + 1], int(dataset.labels[index])
try:  # e.g. Grad-CAM on a model without a convolutional layer
    maps = cache.cached_region_maps(selection.model_key, selection.dataset_key, int(index), roi_method,
                                    json.dumps(roi_options, sort_keys=True), roa_method, target, model, image, label)
except SiaError as error:
    st.error(str(error))
    st.stop()
importance, attack = maps["importance"].unsqueeze(0), maps["attack"].unsqueeze(0)
fraction = q_percent / 100
metrics = overlap_metrics(importance, attack, fraction)
zone_map = zones(top_fraction_mask(importance, fraction), top_fraction_mask(attack, fraction))[0]
scale_max = float(torch.maximum(importance.max(), attack.max())) if shared_scale else None
predicted = int(model.predict_proba(image).argmax())

columns = st.columns(4)
columns[0].image(to_pil(image, width_px=224), width="stretch",
                 caption=f"true {model.class_names[label]} · predicted {model.class_names[predicted]}")
# short titles (a quarter of the page wide): the methods are named in the boxes just above
columns[1].plotly_chart(heatmap(importance[0], title=f"RoI, for {model.class_names[maps['explained_class']]}",
                                zmax=scale_max), width="stretch", key="regions_roi")
adversarial = maps["adversarial_prediction"]
roa_title = "RoA" + (f", now {model.class_names[adversarial]}" if adversarial is not None else "")
columns[2].plotly_chart(heatmap(attack[0], title=roa_title, zmax=scale_max, colorscale="Inferno"), width="stretch",
                        key="regions_roa")
columns[3].plotly_chart(zone_overlay(zone_map, image[0], title=f"Zones at q = {q_percent}%"), width="stretch",
                        key="regions_zones")
st.caption("Zones: " + " · ".join(f"{name}" for name in ZONE_NAMES) + " (light, red, blue, purple). "
           "Red is what neutralization would blank.")
means = metrics.means()
m1, m2, m3, m4 = st.columns(4)
m1.metric("IoU of the regions", f"{means['iou']:.3f}",
          help=f"Intersection over union of the two top-q regions: 0 apart, 1 the same; two random regions of "
               f"this size: {random_regions_iou(fraction):.2f}.")
m2.metric("Dice", f"{means['dice']:.3f}", help="Twice the intersection over the sum of the two areas: like IoU, "
                                                "0 apart, 1 the same.")
m3.metric("Attack energy inside the RoI", f"{means['energy_in_roi']:.1%}",
          help=f"The share of the attack's effect that falls in the region of importance, which covers "
               f"{fraction:.0%} of the image: an attack blind to it would put about that much there.")
m4.metric("Spearman of the two maps", f"{means['spearman']:.3f}",
          help="The rank correlation of the two whole maps, pixel by pixel, before any threshold: -1 to 1.")
explain(overlap_takeaway(means["iou"], means["energy_in_roi"], fraction=fraction),
        "The first map after the image shows **where the model looks**: pixels whose change moves its decision "
        "most (the Region of Importance). The next map shows **where an attack puts its effort**: pixels an "
        "adversarial attack changes to flip the decision (the Region of Attack). The zones picture keeps the top "
        "q% of each map and colours their overlap. If the attack works mostly *outside* the important region, "
        "blanking that outside part (neutralization, below) could undo the attack without hurting the model.")

# --- the dataset view -----------------------------------------------------------------------------
st.divider()
st.subheader("Across the dataset, and neutralization as a defense")
SMALLEST_STUDY = 64  # the sliders' least: 32 images to learn the deployable masks, 32 to evaluate them
if len(dataset) < SMALLEST_STUDY:
    st.info(f"The dataset-level study learns its masks on held-out images and evaluates them on others: it needs at "
            f"least {SMALLEST_STUDY} images, and {dataset.name} has {len(dataset)}. The one-image panel above works "
            "on each of them; for the study, "
            + ("start the app with `--data imagenet-folder:PATH`, a folder of your photos in sub-folders named by "
               "ImageNet class or WordNet id (an uploaded .zip must have one folder per class of a model here, and "
               "this model has 1,000)." if selection.model.num_classes > 100 else
               "upload a .zip of your photos in the sidebar (\"Upload an image folder\": one sub-folder per class), "
               "or start the app with `--data imagefolder:PATH`."))
    st.stop()
with st.form("regions_study_form"):
    d1, d2, d3, d4 = st.columns(4)
    n = d1.slider("Evaluation images", 32, 1024, 256, step=32, key="regions_n")
    n_fit = d2.slider("Held-out images (learn the deployable masks)", 32, 1024, 256, step=32, key="regions_n_fit")
    eps_255 = d3.slider("PGD ε (/255, L∞)", 1.0, 32.0, 8.0, step=1.0, key="regions_eps")
    fill = d4.selectbox("Fill", FILLS.names(), key="regions_fill", format_func=FILLS.labels().__getitem__,
                        help="What replaces the blanked pixels.\n\n" + FILLS.help_text())
    run = st.form_submit_button("Run the study", type="primary")
config = NeutralizationConfig(n=n, n_fit=n_fit, fraction=fraction, eps_linf=eps_255 / 255, fill=fill)
config_key = repr(config)  # names every field
if cache.remember_run(STUDY_RUNS_KEY, f"{selection.model_key}|{selection.dataset_key}|{config_key}", just_ran=run):
    try:
        report = cache.cached_neutralization_study(selection.model_key, selection.dataset_key, config_key, model,
                                                   dataset, config)
    except SiaError as error:  # e.g. a dataset too small for the held-out split
        st.error(str(error))
        st.stop()
else:  # the shipped result for these settings, if there is one, so the page opens on a result
    stored = cache.precomputed("regions", selection.model_key, selection.dataset_key, config)
    if stored is None:
        shipped = cache.shipped_result("regions", selection.model_key)
        # the shipped study is for one set of settings: say which differ, so the page's q slider (shared with the
        # one-image panel above) does not seem to have thrown it away
        differ = [] if shipped is None or shipped.dataset_key != selection.dataset_key else [
            f"{label} {shown(getattr(shipped.config, field))}" for field, label, shown in (
                ("fraction", "q", lambda value: f"{value:.0%}"), ("n", "evaluation images", str),
                ("n_fit", "held-out images", str), ("eps_linf", "ε", lambda value: f"{value * 255:g}/255"),
                ("fill", "fill", lambda value: FILLS.labels().get(value, value)))
            if getattr(shipped.config, field) != getattr(config, field)]
        st.info("Run the study to see class-averaged maps, the IoU histogram and the neutralization table "
                "(a progress bar shows the time left). It uses occlusion RoI and effect-weighted PGD RoA."
                + (f" A precomputed study ships for this model with {', '.join(differ)}: set "
                   f"{'that' if len(differ) == 1 else 'those'} to see it without running." if differ else ""))
        st.stop()
    report = stored.result
    cache.precomputed_note(stored)

class_name = st.selectbox("Class-averaged maps for", list(report.class_names), key="regions_class")
k = list(report.class_names).index(class_name)
left, middle, right = st.columns(3)
study_figures = {f"Mean RoI, {class_name}": heatmap(report.class_importance[k], title=f"mean RoI · {class_name}"),
                 f"Mean RoA, {class_name}": heatmap(report.class_attack[k], title=f"mean RoA · {class_name}",
                                                    colorscale="Inferno"),
                 "IoU histogram": histogram(report.iou_per_image, title=f"IoU of RoI and RoA (q = {report.fraction:.0%})",
                                            x_label="IoU")}
for column, (name, figure), key in zip((left, middle, right), study_figures.items(),
                                       ("regions_class_roi", "regions_class_roa", "regions_iou")):
    column.plotly_chart(figure, width="stretch", key=key)
st.markdown("**Neutralization** — blank each mask in the adversarial *and* the clean images, then classify again; "
            "the adaptive column attacks the defended pipeline itself.")
mask_labels = MASK_KINDS.labels()
def _against_random(row) -> str:
    """A mask's recovery minus its random control's, at the same area, with its 95% interval (the scorecard's rule)."""
    if row.mask in RANDOM_CONTROLS:
        return "(a control)"
    control = random_control(report.rows, row.mask)
    if control is None:
        return "—"
    low, high = mask_gain_ci(row, control, report.n)
    gain = row.adversarial_accuracy_after - control.adversarial_accuracy_after
    return f"{gain * 100:+.1f} [{low * 100:+.1f}, {high * 100:+.1f}]"


# every row is scored on the same images, so "before" (no mask) is one number for the attacked images and one for
# the clean ones: said once above the table, which leaves room for the adaptive column, the one that decides
first = report.rows[0]
st.caption(f"Without a mask: {first.adversarial_accuracy_before:.1%} on the attacked images, "
           f"{first.clean_accuracy_before:.1%} on the clean ones.")
table = [{"mask": mask_labels[row.mask], "area": f"{row.mean_area:.1%}",
          "attacked: after": f"{row.adversarial_accuracy_after:.1%}",
          "vs random mask (points, 95% CI)": _against_random(row),
          "adaptive attack": f"{row.adaptive_accuracy:.1%}",
          "clean: after": f"{row.clean_accuracy_after:.1%}"} for row in report.rows]
# short headers and the mask's name pinned: the columns fit a laptop's page, or scroll beside their row's name
st.dataframe(table, hide_index=True, width="stretch", column_config={
    "mask": st.column_config.TextColumn(pinned=True),
    "attacked: after": st.column_config.TextColumn(help="Accuracy on the attacked images once the mask is blanked."),
    "clean: after": st.column_config.TextColumn(help="Accuracy on the clean images once the mask is blanked: the "
                                                     "defence's cost."),
    "adaptive attack": st.column_config.TextColumn(help="Accuracy when the attack is run against the defended "
                                                        "pipeline itself (mask included).")})
study_figures["Recovered accuracy against mask area"] = curves(
    report.curve, mask_labels, title="Recovered adversarial accuracy against mask area",
    x_label="share of pixels blanked", y_label="accuracy on adversarial inputs")
st.plotly_chart(study_figures["Recovered accuracy against mask area"], width="stretch", key="regions_curve")
takeaway = neutralization_takeaway(report.rows, mask_labels, report.n)
explain(takeaway,
        "Each row blanks one mask in every image, clean and attacked, then classifies again. **Before/after** "
        "compare accuracy with and without the mask; **area** is the share of pixels blanked; the **oracle** mask "
        "is computed from each image's own attack (not deployable), the others are learned on held-out images. "
        "The **adaptive attack** column attacks the defended pipeline itself: a defense is only as good as that "
        "number.")
st.caption(f"This run: {report.n} evaluation images, PGD-L∞ ε = {report.eps_linf * 255:.0f}/255, fill = {FILLS[report.fill].label}.")
fills = cache.precomputed("regions-fills", selection.model_key, selection.dataset_key, replace(config, fill="zero"))
if fills is not None:  # the same study with every fill, shipped for photos (where black is not "nothing")
    st.markdown("**Every fill** (the same images, masks and attack; only what replaces the blanked pixels changes)")
    fill_table = [{"fill": FILLS[fill].label, "mask": mask_labels[row.mask],
                   "attacked: after": f"{row.adversarial_accuracy_after:.1%}",
                   "clean: after": f"{row.clean_accuracy_after:.1%}",
                   "adaptive attack": f"{row.adaptive_accuracy:.1%}"}
                  for fill, rows in fills.result.rows.items() for row in rows]
    st.dataframe(fill_table, hide_index=True, width="stretch")
    cache.precomputed_note(fills)
report_button(lambda: PageReport(
    f"Region of Importance vs Region of Attack: {report.model_id}", takeaway, figures=tuple(study_figures.items()),
    tables=(("Neutralization", table), ("Mean overlap", [report.overlap_means])), card=selection.card.to_dict(),
    parameters={**config.__dict__, "dataset": report.dataset}, references=("roi-roa", "occlusion", "pgd"),
    command=f"python -m sia_core regions {selection.model_arguments} --n {config.n} --n-fit {config.n_fit} "
            f"--fraction {config.fraction:g} --eps-linf {config.eps_linf:.6g} --steps {config.attack_steps} --fill {config.fill} "
            f"--seed {config.seed} --json"), name="regions", key="regions_report")
