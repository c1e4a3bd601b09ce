"""Semantic Image Attack — diagnosis: which attributes make the model fail, over many images, against baselines."""

from __future__ import annotations

import sia_app.preload  # noqa: F401  (first: a session that opens a fresh server waits here for its imports)
import streamlit as st

from sia_app import cache, url_state
from sia_app.explain import (PERCEPTUAL_WEIGHT_HELP, PERCEPTUAL_WEIGHT_LABEL, PIXEL_BUDGET_HELP, SPARSITY_WEIGHT_HELP,
                             SPARSITY_WEIGHT_LABEL, STEPS_HELP, explain)
from sia_app.report_button import report_button
from sia_app.navigation import require_app_frame
from sia_app.references import render_references
from sia_app.sidebar import require_selection
from sia_core.data.imagenet import labelled_by_prediction
from sia_core.diagnosis import BASELINES, WEIGHTED_DIAGNOSIS, DiagnosisConfig
from sia_core.errors import SiaError
from sia_core.figures import attribute_bars, success_rate_bars, success_vs_ssim_figure
from sia_core.references import REFERENCES
from sia_core.report import PageReport
from sia_core.semantics import ATTRIBUTES, applicable_attributes
from sia_core.takeaways import SSIM_FLOOR, diagnosis_takeaway, perceptual_takeaway

RUNS_KEY = "sia_diagnosis_runs"

require_app_frame("pages/sia_diagnosis.py")
st.title("Semantic Image Attack — diagnosis")
st.caption("Attack many correctly classified images and count which attributes break the model "
           "(the attribute histogram of " + REFERENCES["sia"].short() + "). All numbers are this app's own runs, not "
           "a paper's.")
render_references(('sia', 'fgsm', 'pgd'))

# the link keeps every setting of the run, so whoever opens it runs the same diagnosis (the attribute choice has
# one widget per attribute set: gray and colour worlds)
ATTRIBUTE_KEYS = {f"diag_attributes_{len(applicable_attributes(channels))}" for channels in (1, 3)}
url_state.seed_from_url({"diag_n": url_state.integer(16, 1024), "diag_eps": url_state.number(0.0, 16.0),
                          "diag_steps": url_state.integer(5, 60), "diag_sparsity": url_state.number(0.0, 10.0),
                          "diag_perceptual": url_state.number(0.0, 50.0), "diag_seed": url_state.integer(0, 10_000),
                          **{key: url_state.choices(list(ATTRIBUTES)) for key in sorted(ATTRIBUTE_KEYS)}})
for key, default in (("diag_n", 256), ("diag_eps", 2.0), ("diag_steps", 30), ("diag_sparsity", 0.0),
                     ("diag_perceptual", 0.0), ("diag_seed", 0)):
    st.session_state.setdefault(key, default)
selection = require_selection()
model, dataset = selection.model, selection.dataset
names = [a.name for a in applicable_attributes(model.input_shape[0])]

with st.form("sia_diagnosis_form"):
    c1, c2, c3, c4 = st.columns(4)
    n = c1.slider("Images (N)", 16, 1024, step=16, key="diag_n",
                  help="How many test images the diagnosis attacks: the histograms count over them.")
    eps_255 = c2.slider("Pixel budget ε_img (/255, L∞), shared by all attacks", 0.0, 16.0, step=0.5, key="diag_eps",
                        help=PIXEL_BUDGET_HELP)
    steps = c3.slider("Steps", 5, 60, key="diag_steps", help=STEPS_HELP)
    seed = c4.number_input("Seed", 0, 10_000, key="diag_seed",
                           help="The seed of the attacks' random starts: the same seed repeats the same run.")
    # one widget per attribute set: a gray world's choice must not carry over as the whole choice in an RGB world
    attributes_key = f"diag_attributes_{len(names)}"
    if attributes_key not in st.session_state:
        st.session_state[attributes_key] = names
    elif any(name not in names for name in st.session_state[attributes_key]):  # a link from another world
        st.session_state[attributes_key] = [name for name in st.session_state[attributes_key] if name in names]
    # folded: every attribute and zero weights by default, and open they filled a laptop's screen, the charts below it
    changed = (len(st.session_state[attributes_key]) < len(names) or st.session_state.get("diag_sparsity")
               or st.session_state.get("diag_perceptual"))
    with st.expander(f"Attributes ({len(st.session_state[attributes_key])} of {len(names)}) and the joint attack's "
                     "weights", expanded=bool(changed)):
        chosen = st.multiselect("Attributes", names, key=attributes_key,
                                format_func=lambda name: ATTRIBUTES[name].label)
        w1, w2 = st.columns(2)
        sparsity = w1.number_input(SPARSITY_WEIGHT_LABEL, 0.0, 10.0, step=0.1, key="diag_sparsity",
                                   help=f"{SPARSITY_WEIGHT_HELP} The precomputed diagnoses use 0 and "
                                        f"{WEIGHTED_DIAGNOSIS['sparsity_weight']:g}.")
        perceptual = w2.number_input(PERCEPTUAL_WEIGHT_LABEL, 0.0, 50.0, step=0.5, key="diag_perceptual",
                                     help=f"{PERCEPTUAL_WEIGHT_HELP} The precomputed diagnoses use 0 and "
                                          f"{WEIGHTED_DIAGNOSIS['perceptual_weight']:g}.")
    run = st.form_submit_button("Run the diagnosis", type="primary")

if not chosen:  # an empty choice is not "all of them": say so rather than run on every attribute
    st.error("Choose at least one attribute: the diagnosis moves only the attributes chosen above.")
    st.stop()
config = DiagnosisConfig(n=n, eps_linf=eps_255 / 255, steps=steps, attributes=tuple(chosen), seed=int(seed),
                         sparsity_weight=float(sparsity), perceptual_weight=float(perceptual))
config_key = repr(config)  # names every field
stored = None
if cache.remember_run(RUNS_KEY, f"{selection.model_key}|{selection.dataset_key}|{config_key}", just_ran=run):
    try:
        report = cache.cached_diagnosis(selection.model_key, selection.dataset_key, config_key, model, dataset, config)
    except SiaError as error:  # e.g. a model that gets no image right
        st.error(str(error))
        st.stop()
else:  # the shipped result for these settings, if there is one, so the page opens on a result
    stored = (cache.precomputed("diagnosis", selection.model_key, selection.dataset_key, config)
              or cache.precomputed("diagnosis-weighted", selection.model_key, selection.dataset_key, config))
    if stored is None:
        st.info("No precomputed diagnosis for these settings: press **Run the diagnosis** to compute it (a progress "
                "bar shows how far it is).")
        st.stop()
    report = stored.result
    cache.precomputed_note(stored)

keypoints = report.task == "keypoints"
labels = {name: ATTRIBUTES[name].label for name in report.attribute_names}  # the sliders' names, everywhere below
judged = (f"images whose landmarks it places within the failure threshold (NME against the "
          f"{'model’s own points' if report.reference == 'model prediction' else 'true landmarks'})"
          if keypoints else "correctly classified images")
if not keypoints and len(report.sample_indices) and report.dataset == dataset.name \
        and int(report.sample_indices.max()) < len(dataset):
    # photos without a person's label take the model's prediction as theirs: "correct" by construction, said so
    guessed = int(labelled_by_prediction(dataset)[report.sample_indices].sum())
    if guessed:
        judged += (f" ({guessed} of them labelled by the model's own prediction, so correct by construction: the "
                   "attack pushes them away from it)")
st.markdown(f"**{report.model_id}** on {report.n} {judged} of {report.dataset}; "
            f"ε_img = {report.eps_linf * 255:.1f}/255, {report.steps} steps. Most harmful one at a time "
            "(sensitivity): "
            + ", ".join(f"**{labels[name]}**" for name in report.ranking()[:3]) + ".")

scope = st.selectbox("Scope", ["all classes"] + list(report.class_names), key="diag_scope")
if scope == "all classes":
    sensitivity = report.by_attribute(report.sensitivity)
    dominance = report.by_attribute(report.dominance)
    success = report.by_attribute(report.sensitivity_success)
else:
    c = list(report.class_names).index(scope)
    sensitivity = {a: float(v) for a, v in zip(report.attribute_names, report.per_class_sensitivity[c])}
    dominance = {a: float(v) for a, v in zip(report.attribute_names, report.per_class_dominance[c])}
    success = None
    st.caption(f"{int(report.class_counts[c])} images of class {scope}.")

# the sliders' names (Shift right, Zoom, ...) on the charts too, so a reader can match a bar to its slider
sensitivity, dominance = ({labels[name]: value for name, value in values.items()}
                          for values in (sensitivity, dominance))
success = None if success is None else {labels[name]: value for name, value in success.items()}
left, right = st.columns(2)
sensitivity_figure = attribute_bars(sensitivity, title="(a) Sensitivity: one attribute at a time",
                                    value_label="mean |ΔNME|" if keypoints else "mean |Δp(true class)|",
                                    secondary=success,
                                    secondary_label="success rate")
dominance_figure = attribute_bars(dominance, title="(b) Dominance in joint attacks", value_label="share of successes")
left.plotly_chart(sensitivity_figure, width="stretch", key="diag_sensitivity")
left.caption("Each attribute alone (no pixel term) is pushed to hurt the model; tall bars are attributes the model "
             "should not care about but does.")
right.plotly_chart(dominance_figure, width="stretch", key="diag_dominance")
right.caption("After the joint attack, the attribute that moved furthest (relative to its range) in each successful "
              "attack.")

takeaway = diagnosis_takeaway(report.by_attribute(report.dominance), report.success_rate, labels,
                              successes=report.joint_successes)
explain(takeaway,
        ("Every image here had its landmarks placed within the failure threshold before the attack. **(a)** pushes "
         "one attribute at a time (say, only brightness) as far as its range allows in the direction that hurts the "
         "model, and measures how much the normalized mean error of the points changes (a turn or a shift moves the "
         "reference points with the image, so following it is no error)" if keypoints else
         "Every image here was classified correctly before the attack. **(a)** pushes one attribute at a time (say, "
         "only brightness) as far as its range allows in the direction that hurts the model, and measures how much "
         "the probability of the true class drops") + ": a tall bar is an attribute the model is sensitive to. **(b)** "
        "runs the full attack (all attributes plus a tiny pixel change) and, for each image it fools, records which "
        "attribute moved furthest: the share of wins each attribute leads."
        + (" Choose a class in *Scope* to see one class only." if len(report.class_names) > 1 else ""))

st.subheader("Attack success at the same pixel budget")
baselines_figure = success_rate_bars(report.success_rate, BASELINES.labels(), title="Success rate (ours)")
st.plotly_chart(baselines_figure, width="stretch", key="diag_baselines")
mean_ssim = report.mean_ssim_of_successes()  # empty for a result saved before SSIM was recorded
success_table = [{"attack": BASELINES[k].label, "success rate": f"{v:.1%}",  # a percentage, as on the chart
                  **({"mean SSIM of successes (as attacked)": round(mean_ssim[k], 3)
                      if mean_ssim.get(k) is not None else None}
                     if mean_ssim else {}),
                  "what it may change": BASELINES[k].description}
                 for k, v in report.success_rate.items()]
st.dataframe(success_table, hide_index=True, column_config={"attack": st.column_config.TextColumn(pinned=True)})

st.subheader("Attack success against perceptual quality (SSIM)")
ssim_figures: tuple = ()
if mean_ssim:
    aligned = st.toggle("Undo each attack's rotation, shift and zoom before comparing (a person sees the same object "
                        "turned or moved)", value=bool(report.attack_ssim_aligned),
                        disabled=not report.attack_ssim_aligned, key="diag_ssim_aligned")
    ssim_curves = report.success_vs_ssim(aligned=aligned)
    ssim_figure = success_vs_ssim_figure(ssim_curves, BASELINES.labels(),
                                         title="Success rate counting only images with SSIM ≥ s"
                                               + (", geometry undone" if aligned else "") + " (ours)")
    st.plotly_chart(ssim_figure, width="stretch", key="diag_ssim")
    st.caption("Each line is one attack; a point at s is the share of images it fooled with an image at least that "
               "similar to the original (SSIM, [Wang et al. 2004](https://doi.org/10.1109/TIP.2003.819861); "
               "1 = identical). A line that stays high to the right fools the model with images that still look like "
               "the original.")
    at_floor = {k: points[0][1] for k, points in report.success_vs_ssim((SSIM_FLOOR,), aligned=aligned).items()}
    # the mean SSIM on the same footing as the curve and the share above it: geometry undone when the toggle is on
    perceptual = perceptual_takeaway(at_floor, report.mean_ssim_of_successes(aligned=aligned), BASELINES.labels(),
                                     SSIM_FLOOR, report.fooled_at_floor_difference(SSIM_FLOOR, aligned=aligned),
                                     aligned=aligned)
    explain(perceptual,
            "Succeeding is not the whole story: an attack that fools the model by changing the picture a lot is "
            "less telling than one whose image still looks like the original. **SSIM** (structural similarity) "
            "compares the two images patch by patch (brightness, contrast and structure): 1 means identical, lower "
            "means visibly different. The chart raises a bar on similarity from left to right and counts, for each "
            "attack, how many images it still fooled with an image above the bar. SSIM punishes geometric edits "
            "hard (a small turn or a shift of a pixel or two moves every edge), even where a person sees the same "
            "object, while a tiny pixel change barely lowers it: so pixel-only PGD's line usually stays flat almost "
            "to 1, and the attribute attacks' lines start low unless the toggle undoes their turns and shifts."
            + ("" if keypoints else
               " The *Perceptual weight μ* on the explore page makes the attack trade success for SSIM."))
    ssim_figures = (("Success against SSIM", ssim_figure),)
    takeaway += " " + perceptual  # the report carries the comparison the first takeaway points to
else:
    st.info("This precomputed result was saved before SSIM was recorded; run the diagnosis to see it.")
report_button(lambda: PageReport(
    f"Semantic Image Attack diagnosis of {report.model_id}", takeaway,
    figures=(("Sensitivity", sensitivity_figure), ("Dominance", dominance_figure), ("Baselines", baselines_figure),
             *ssim_figures),
    tables=(("Attack success at the same pixel budget", success_table),
            ("Sensitivity and dominance", [{"attribute": labels.get(a, a), "sensitivity (drop in p(true class))"
                                            if not keypoints else "sensitivity (rise in NME)": round(float(s), 4),
                                            "dominance (share of successes it leads)": round(float(d), 4)}
                                           for a, s, d in zip(report.attribute_names, report.sensitivity,
                                                              report.dominance)])),
    card=selection.card.to_dict(), parameters={"scope": scope, **config.__dict__, "dataset": report.dataset},
    references=("sia", "fgsm", "pgd"),
    command=f"python -m sia_core sia {selection.model_arguments} --n {config.n} --eps-linf {config.eps_linf:.6g} "
            f"--steps {config.steps} --seed {config.seed} --json"), name="sia-diagnosis", key="diag_report")
st.download_button("Histograms (CSV)", report.to_csv(), file_name=f"sia_diagnosis_{report.model_id}.csv",
                   mime="text/csv", key="diag_csv")
