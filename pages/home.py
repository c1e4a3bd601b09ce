"""Home: what each lens shows, and a gallery of sample images with the model's predictions."""

from __future__ import annotations

import sia_app.preload  # noqa: F401  (first: a session that opens a fresh server waits here for its imports)
import math

import streamlit as st
import torch

from sia_app import cache, keypoint_view
from sia_app.navigation import require_app_frame
from sia_app.references import render_references
from sia_app.sidebar import require_selection
from sia_app.verdicts import verdict_of
from sia_app.worlds import world_of
from sia_core.claims import VERDICT_WORDS
from sia_core.data.images import decode_image
from sia_core.data.imagenet import labelled_by_prediction
from sia_core.errors import SiaError
from sia_core.figures import probability_bars, to_pil
from sia_core.references import REFERENCES
from sia_core.semantics import ATTRIBUTES
from sia_core.regions.neutralization import random_control
from sia_core.takeaways import NOT_DEPLOYABLE, confidence_percent, leading_attributes, listed

GALLERY_SIZE = 12

require_app_frame("pages/home.py")
st.title("SIA Explorer")
st.markdown(
    "See, explain and teach how image classifiers break. SIA Explorer looks at one model through four lenses:\n\n"
    f"1. **Semantic Image Attack** ({REFERENCES['sia'].short()}) — move named attributes (brightness, contrast, "
    "hue, rotation, …) and watch the prediction change; let an attack search those attributes plus a tiny pixel "
    "change, and learn which attributes make the model fail; then train on those attacks and see whether the "
    "robustness carries over to other attacks, and use them to help under-represented classes.\n"
    f"2. **Region of Importance vs Region of Attack** ({REFERENCES['roi-roa'].short()}) — where the model looks, "
    "where an attack changes pixels, how much the two overlap, and whether blanking the vulnerable-but-unimportant "
    "part defends the model.\n"
    f"3. **Margin consistency** ({REFERENCES['margins'].short()}) — how far each input is from the decision "
    "boundary, and whether the free logit margin can flag brittle decisions without running an attack.\n"
    f"4. **Robust vs non-robust features** ({REFERENCES['features'].short()}) — build datasets whose labels look wrong to "
    "a person, train on them, and see whether they still teach a model and what it learns.\n\n"
    "Each lens is a page in the navigation; this page shows the chosen model at work."
)
render_references(tuple(REFERENCES))

selection = require_selection()

model, dataset = selection.model, selection.dataset
if selection.card.is_keypoints:
    keypoint_view.home(selection)
    st.stop()
probabilities, accuracy = cache.cached_predictions(selection.model_key, selection.dataset_key, model, dataset)
st.subheader(f"{model.model_id} on {dataset.title}")
human = ~labelled_by_prediction(dataset)
labelled = int(human.sum())
if labelled == len(dataset):
    st.caption(f"{dataset.source}. Accuracy of this model on these {len(dataset):,} images, computed in this run: "
               f"**{accuracy:.1%}**.")
else:  # photos labelled by the model's own prediction would be right by construction: counted apart
    right = int((probabilities.argmax(1)[human] == dataset.labels[human]).sum())
    st.caption(f"{dataset.source}. Accuracy of this model on the {labelled:,} of these {len(dataset):,} images "
               f"with a human label, computed in this run: **{right} of {labelled:,}**"
               + (f" ({right / labelled:.0%})" if labelled else "") + f"; the other "
               f"{len(dataset) - labelled:,} take the model's own prediction as their label, so they are not "
               "counted.")

# one headline number per lens, from the results shipped for this model (scripts/precompute.py)
shipped = {kind: cache.shipped_result(kind, selection.model_key) for kind in ("diagnosis", "regions", "margins")}
if any(shipped.values()):
    columns = st.columns(3)
    if shipped["diagnosis"]:
        report = shipped["diagnosis"].result
        dominance = report.by_attribute(report.dominance)
        leaders = leading_attributes(dominance)  # none where no joint attack succeeded
        successes = report.joint_successes
        # tied leaders: the first as the tile's value (a third of the page cuts a longer one), the others named
        columns[0].metric("Semantic attack: the leading attribute",
                          ATTRIBUTES[leaders[0]].label + (f" +{len(leaders) - 1}" if len(leaders) > 1 else "")
                          if leaders else "none",
                          (f"tied with {listed([ATTRIBUTES[name].label for name in leaders[1:]])}: each "
                           if len(leaders) > 1 else "") + f"leads {dominance[leaders[0]]:.0%} of {successes} "
                          "successful attacks" if leaders else "no attack succeeded", delta_color="off",
                          help="The attack edits named attributes (brightness, hue, a turn...) together with a tiny "
                               "pixel change; this is the attribute it moved furthest in most of its successes.")
    if shipped["regions"]:
        all_rows = shipped["regions"].result.rows
        best = max((row for row in all_rows if row.mask not in NOT_DEPLOYABLE),
                   key=lambda row: row.adversarial_accuracy_after)
        control = random_control(all_rows, best.mask)
        defends = verdict_of(selection.dataset_key, "neutralizing-roa-defends")
        # the delta stays short (a long one is cut off in a third of the page); the control and verdict go below
        columns[1].metric("RoI vs RoA: best deployable neutralization", f"{best.adversarial_accuracy_after:.0%}",
                          f"from {best.adversarial_accuracy_before:.0%} on attacked images", delta_color="off",
                          help="RoI: where the model looks. RoA: where an attack changes pixels. Blanking the "
                               "region an attack uses but the model does not need is a possible defense; the number "
                               "is the share of attacked images classified correctly after it, beside a random mask "
                               "of the same area, the control it must beat.")
        notes = []
        if control is not None:
            notes.append(f"its control, a random mask of the same area ({control.mean_area:.0%} of the pixels): "
                         f"{control.adversarial_accuracy_after:.0%}")
        if defends is not None:
            notes.append(f"as a defense: {VERDICT_WORDS[defends.verdict].rstrip('.').lower()}")
        if notes:
            text = "; ".join(notes)
            columns[1].caption(text[0].upper() + text[1:] + ".")
    if shipped["margins"]:
        summary = shipped["margins"].result.summary()
        scored = math.isfinite(summary.auroc)
        detection = f"AUROC {summary.auroc:.2f} for brittle inputs" if scored else "AUROC n/a"
        columns[2].metric("Margin consistency: Kendall τ", f"{summary.kendall_tau:.2f}",
                          f"{detection} at ε {summary.eps * 255:.0f}/255", delta_color="off",
                          help="Kendall τ: how alike two rankings are, from -1 to 1 (1: the same order). Here, the "
                               "free logit margin (top score minus the second) against the input margin (the "
                               "smallest change that flips the decision, found by an attack). AUROC: how well the "
                               "logit margin alone picks out the inputs an attack breaks (0.5: chance, 1: perfect).")
        study = shipped["margins"].result
        low, high = cache.cached_tau_interval(f"{selection.model_key}|home|shipped", study)
        notes = [] if not (math.isfinite(low) and math.isfinite(high)) else [
            f"Kendall τ's 95% interval over its {len(study.labels):,} images: [{low:.2f}, {high:.2f}]"
            + (", which reaches zero: this sample shows no relation" if low <= 0 <= high else "")]
        if not scored:  # the reason in a caption: a long delta is cut off in a third of the page
            notes.append(f"every input breaks at ε = {summary.eps * 255:.0f}/255 (or none does): no brittle-input "
                         "detection to score")
        if notes:
            text = "; ".join(notes)
            columns[2].caption(text[0].upper() + text[1:] + ".")
    dates = sorted({stored.created for stored in shipped.values() if stored})
    when = dates[0] if len(dates) == 1 else f"{', '.join(dates[:-1])} and {dates[-1]}"
    st.caption(f"Precomputed by `python scripts/precompute.py` on {when} on the embedded test subset "
               f"of {selection.card.dataset or 'its dataset'}; each lens's page recomputes it live (its settings, as "
               "the margins page's ε, may differ from these).")

# the papers' claims as verdicts, for the world of the chosen model (none for a world without a scorecard)
scorecard_world = world_of(selection.card.dataset, ("fashion-mnist", "cifar10"))
scorecard = cache.shipped_scorecard(scorecard_world) if scorecard_world is not None else None
if scorecard is not None:
    held = [claim for claim in scorecard.claims if claim.verdict == "reproduces"]
    failed = [claim for claim in scorecard.claims if claim.verdict == "does-not-reproduce"]
    partly = sum(claim.verdict == "partly" for claim in scorecard.claims)
    unmeasured = sum(claim.verdict == "not-measured" for claim in scorecard.claims)
    # every claim counted once, the unmeasured ones too, so the parts add up to the whole
    st.markdown(f"**Do the papers' claims hold here?** Of {len(scorecard.claims)} claims checked against their "
                f"controls on the {scorecard.world} models, {len(held)} reproduce, {partly} partly, {len(failed)} "
                f"do not" + (f" and {unmeasured} could not be measured" if unmeasured else "")
                + (f" (one that does not: “{failed[0].claim.rstrip('.')}”)." if failed else "."))
    st.page_link("pages/claims.py", label="Open the claims scorecard", icon=":material/fact_check:")

if "gallery_seed" not in st.session_state:
    st.session_state["gallery_seed"] = 0
if st.button("Show other images", key="shuffle_gallery"):
    st.session_state["gallery_seed"] += 1
generator = torch.Generator().manual_seed(st.session_state["gallery_seed"])
indices = torch.randperm(len(dataset), generator=generator)[:GALLERY_SIZE].tolist()

st.markdown("**Sample predictions** — green: correct, red: wrong, · no human label to compare with; the percentage "
            "is the model's confidence.")
columns = st.columns(6)
for position, index in enumerate(indices):
    predicted = int(probabilities[index].argmax())
    confidence = float(probabilities[index, predicted])
    true_label = int(dataset.labels[index])
    unlabelled = bool(labelled_by_prediction(dataset)[index])
    mark = "·" if unlabelled else ":green[✓]" if predicted == true_label else ":red[✗]"
    truth = "no human label" if unlabelled else f"true: {dataset.class_names[true_label]}"
    with columns[position % 6]:
        st.image(to_pil(dataset.images[index], width_px=112), width="stretch")
        st.markdown(f"{mark} **{dataset.class_names[predicted]}** {confidence_percent(confidence)}  \n"
                    f"<small>{truth} · #{index}</small>", unsafe_allow_html=True)

st.divider()
st.subheader("Try your own image")
upload = st.file_uploader("PNG, JPEG or WebP", type=["png", "jpg", "jpeg", "webp"], key="home_upload")
if upload is not None:
    try:
        image = decode_image(upload.getvalue(), model.input_shape)
    except SiaError as error:
        st.error(f"{error}")
    else:
        left, right = st.columns([1, 2])
        left.image(to_pil(image, width_px=168), caption=f"resized to {model.input_shape[1]}×{model.input_shape[2]}")
        right.plotly_chart(probability_bars(model.predict_proba(image)[0], model.class_names,
                                            title="Class probabilities"), width="stretch")
