"""Semantic Image Attack — explore: attribute sliders with a live prediction, and the joint attack on one image."""

from __future__ import annotations

import sia_app.preload  # noqa: F401  (first: a session that opens a fresh server waits here for its imports)
import io
import json
import math
import secrets

import streamlit as st
import torch

from sia_app import cache, keypoint_view, url_state
from sia_app.explain import (PERCEPTUAL_WEIGHT_HELP, PERCEPTUAL_WEIGHT_LABEL, PIXEL_BUDGET_HELP, SPARSITY_WEIGHT_HELP,
                             SPARSITY_WEIGHT_LABEL, STEPS_HELP, explain)
from sia_app.report_button import report_button
from sia_app.navigation import require_app_frame
from sia_app.references import render_references
from sia_app.uploads import keep_upload, kept_upload
from sia_app.sidebar import require_selection
from sia_core.attacks.semantic import SemanticAttack
from sia_core.data.images import decode_image
from sia_core.errors import SiaError
from sia_core.figures import amplified_perturbation, attack_history_figure, probability_bars, to_pil
from sia_core.references import REFERENCES
from sia_core.report import PageReport
from sia_core.semantics import ATTRIBUTES, apply_attributes, attributes_for, edits_in_words
from sia_core.takeaways import attack_takeaway, confidence_percent

SLIDER_KEY = "sia_attr_{}"
RESULT_KEY = "sia_attack_result"
PERCEPTUAL_KEY = "sia_perceptual_weight"
LONG_CLASS_NAME = 14  # characters a prediction tile shows whole in a third of a laptop's page
IMAGE_SOURCES = ("Dataset image", "Upload")
UPLOAD_ID_KEY = "sia_upload_id"  # the kept upload a link names (sia_app.uploads)

require_app_frame("pages/sia_explore.py")
st.title("Semantic Image Attack — explore")
st.caption("Move named attributes and watch the prediction; then let the attack search the same attributes plus a "
           "tiny pixel change, after " + REFERENCES["sia"].short() + ". Every number on this page is computed in this run.")
render_references(('sia', 'pgd'))

url_state.seed_from_url({"sia_index": url_state.integer(0, 10**7), PERCEPTUAL_KEY: url_state.number(0.0, 20.0),
                          "sia_image_source": url_state.choice(IMAGE_SOURCES), UPLOAD_ID_KEY: url_state.sha256_hex,
                          **{SLIDER_KEY.format(name): url_state.finite for name in ATTRIBUTES},
                          # a keypoint world's image and sliders, kept in the link the same way
                          "kp_index": url_state.integer(0, 10**7),
                          **{keypoint_view.SLIDER_KEY.format(name): url_state.finite for name in ATTRIBUTES}})
selection = require_selection()
if selection.card.is_keypoints:  # the keypoint worlds: landmarks over the image instead of class probabilities
    keypoint_view.explore(selection)
    st.stop()
st.session_state.setdefault(PERCEPTUAL_KEY, 0.0)  # after the keypoint branch: its links need no classifier weight
model, dataset = selection.model, selection.dataset
attributes = attributes_for(model.input_shape)  # ranges in pixels sized to this model's images
for attribute in attributes:  # a link, or another model's sliders, may hold values outside these ranges
    key = SLIDER_KEY.format(attribute.name)
    if key in st.session_state:
        value = float(st.session_state[key])
        st.session_state[key] = (min(max(value, attribute.low), attribute.high) if math.isfinite(value)
                                 else attribute.neutral)
if st.session_state.get("sia_index", 0) >= len(dataset):  # a link made on a larger dataset
    st.session_state["sia_index"] = 0


# --- the image -------------------------------------------------------------------------------
source = st.radio("Image", list(IMAGE_SOURCES), horizontal=True, key="sia_image_source")
label: int | None
if source == "Upload":
    upload = st.file_uploader("PNG, JPEG or WebP", type=["png", "jpg", "jpeg", "webp"], key="sia_upload")
    # a new upload, else the one this session (or the link it came from) kept on the server
    data = upload.getvalue() if upload is not None else kept_upload(st.session_state.get(UPLOAD_ID_KEY, ""))
    if data is None:
        if st.session_state.get(UPLOAD_ID_KEY):
            st.warning("The image this link names is no longer kept on this server: upload it again.")
        st.info("Upload an image, or switch to a dataset image.")
        st.stop()
    try:
        image = decode_image(data, model.input_shape)
    except SiaError as error:
        st.error(str(error))
        st.stop()
    if upload is not None:  # kept, so the share link opens the same photo
        st.session_state[UPLOAD_ID_KEY] = keep_upload(data)
    else:
        st.caption("The uploaded image of this link (kept on this server).")
    image_key, label = f"upload|{cache.digest(data)}", None
else:
    left, right = st.columns([3, 1])
    if right.button("Random image", key="sia_random"):
        st.session_state["sia_index"] = secrets.randbelow(len(dataset))  # not the global generator sessions share
    index = left.number_input("Index in the dataset", 0, len(dataset) - 1, key="sia_index", step=1)
    image, label = dataset.images[index:index + 1], int(dataset.labels[index])
    image_key = f"{selection.dataset_key}|{index}"
    if "label_is_prediction" in dataset.attributes and bool(dataset.attributes["label_is_prediction"][index]):
        st.caption(f"No human label for this photo: the attack pushes away from the model's own prediction, "
                   f"**{model.class_names[label]}**.")
if label is None:  # an upload has no label: attack the model's own prediction
    label = int(model.predict_proba(image).argmax())
    st.caption(f"No label for an upload: the attack targets the model's prediction, **{model.class_names[label]}**.")


def reset_sliders() -> None:
    for attribute in attributes:
        st.session_state[SLIDER_KEY.format(attribute.name)] = attribute.neutral


def load_into_sliders(values: dict[str, float]) -> None:
    for attribute in attributes:
        value = min(max(values.get(attribute.name, attribute.neutral), attribute.low), attribute.high)
        st.session_state[SLIDER_KEY.format(attribute.name)] = value


# --- live sliders: only this fragment reruns on a slider change --------------------------------
@st.fragment
def slider_panel() -> None:
    st.subheader("Attribute sliders")
    controls, picture, bars = st.columns([2, 1, 2])
    with controls:
        params = {}
        for attribute in attributes:
            key = SLIDER_KEY.format(attribute.name)
            st.session_state.setdefault(key, attribute.neutral)
            params[attribute.name] = st.slider(attribute.slider_label, attribute.low, attribute.high,
                                               step=attribute.step, key=key, help=attribute.description)
        # the log-unit sliders (zoom, contrast, ...) read as the factors they apply
        edit = edits_in_words(params)
        st.caption(f"The edit: {edit}." if edit else "No edit: every slider is at its neutral value.")
        st.button("Reset", on_click=reset_sliders, key="sia_reset")
    with torch.inference_mode():
        edited = apply_attributes(image, {name: float(value) for name, value in params.items()})
        logits = model.logits(edited)[0]
    probabilities = torch.softmax(logits, 0)
    top = torch.topk(logits, 2)
    predicted = int(top.indices[0])
    picture.image(to_pil(edited, width_px=168), caption="edited image", width="stretch")
    confidence = confidence_percent(float(probabilities[predicted]))
    picture.metric("Prediction", model.class_names[predicted], f"{confidence} confident",
                   delta_color="off")
    if len(model.class_names[predicted]) > LONG_CLASS_NAME:  # a tile a third of the page wide cuts it with "…"
        picture.caption(f"Predicted: {model.class_names[predicted]}")
    picture.metric("Logit margin (top-1 − top-2)", f"{float(top.values[0] - top.values[1]):.2f}")
    picture.metric(f"p({model.class_names[label]})", f"{float(probabilities[label]):.3f}")
    bars.plotly_chart(probability_bars(probabilities, model.class_names, true_label=label,
                                       title="Class probabilities (red outline: the label)"),
                      width="stretch", key="sia_slider_bars")


slider_panel()

# --- the attack --------------------------------------------------------------------------------
st.divider()
st.subheader("Semantic Image Attack")
with st.form("sia_attack_form"):
    names = [a.name for a in attributes]
    # one widget per attribute set: a gray world's choice must not carry over as the whole choice in an RGB world
    chosen = st.multiselect("Attributes the attack may move", names, default=names,
                            key=f"sia_attack_attributes_{len(names)}",
                            format_func=lambda name: ATTRIBUTES[name].label)
    c1, c2, c3, c4, c5 = st.columns(5)
    steps = c1.slider("Steps", 5, 100, 30, key="sia_steps", help=STEPS_HELP)
    eps_255 = c2.slider("Pixel budget ε_img (/255, L∞)", 0.0, 16.0, 2.0, step=0.5, key="sia_eps",
                        help=PIXEL_BUDGET_HELP)
    sparsity = c3.slider(SPARSITY_WEIGHT_LABEL, 0.0, 2.0, 0.0, step=0.1, key="sia_sparsity", help=SPARSITY_WEIGHT_HELP)
    perceptual = c4.slider(PERCEPTUAL_WEIGHT_LABEL, 0.0, 20.0, step=0.5, key=PERCEPTUAL_KEY,
                           help=PERCEPTUAL_WEIGHT_HELP)
    early_stop = c5.checkbox("Stop at the first flip", value=False, key="sia_early_stop",
                             help="Freeze the image at the attack's first success: the first edit along its path "
                                  "that fools the model, rather than where it ends after every step.")
    # the image's own label is no target: the attack would have nothing to move it to
    targeted = st.selectbox("Goal", ["untargeted"] + [f"target: {name}" for index, name in enumerate(model.class_names)
                                                      if index != label], key="sia_goal")
    run = st.form_submit_button("Run the attack", type="primary")

if run:
    if not chosen:
        st.error("Choose at least one attribute, or use pixel-only PGD instead.")
    else:
        attack = SemanticAttack(attributes=tuple(chosen), steps=steps, eps_linf=eps_255 / 255, sparsity_weight=sparsity,
                                perceptual_weight=perceptual, early_stop=early_stop)
        target = None
        if targeted != "untargeted":
            target = torch.tensor([list(model.class_names).index(targeted.removeprefix("target: "))])
        bar = st.progress(0.0, text="Attacking…")
        result = attack(model, image, torch.tensor([label]), target=target,
                        progress=lambda step, total, info: bar.progress(step / total, text=f"step {step}/{total}"))
        bar.empty()
        st.session_state[RESULT_KEY] = {"image_key": image_key, "model_key": selection.model_key, "result": result,
                                        "eps": eps_255 / 255, "config": attack.description, "steps": steps,
                                        "target": None if target is None else model.class_names[int(target[0])]}

stored = st.session_state.get(RESULT_KEY)
if stored is not None and (stored["image_key"] != image_key or stored["model_key"] != selection.model_key):
    st.info("The last attack ran on another image or model; run it again to see this one.")
elif stored is not None:
    result = stored["result"]
    predicted_clean = int(result.clean_logits[0].argmax())
    predicted_adversarial = int(result.adversarial_logits[0].argmax())
    predicted_edit = int(model.logits(result.edited_images).argmax(1)[0])
    outcome = result.outcome(0)
    if outcome == "already-fooled":
        # a search from a wrong answer has nothing to find: its pictures, table and loss curve would read as an attack
        explain(attack_takeaway(outcome, model.class_names[predicted_clean], model.class_names[predicted_adversarial],
                                None, False, float(result.ssim[0])),
                "The attack moves an image away from the class the model gets right. This image's label is "
                f"{model.class_names[label]} and the model already answers {model.class_names[predicted_clean]}, so "
                "there is no right answer to attack: choose another image (the index above) and run it again.")
        st.stop()  # nothing of this page follows the attack's result
    first_flip = int(result.first_success_step[0])
    verdict = {"succeeded": "The attack succeeded",
               "failed": ("The attack " + ("reached its target" if stored.get("target") else "fooled the model")
                          + " on the way, not at its last step") if first_flip >= 0 else "The attack did not succeed",
               "already-fooled": "Nothing to attack: the model already gets this image wrong"}[outcome]
    # rounding is asked of a success only: a failed attack has nothing to survive it
    rounding = (f"survives 8-bit rounding (PNG): **{'yes' if bool(result.success_after_rounding[0]) else 'no'}** · "
                if outcome == "succeeded" else "")
    aimed = f" (target: {stored['target']})" if stored.get("target") else ""
    st.markdown(f"**{verdict}**: {model.class_names[predicted_clean]} → "
                f"**{model.class_names[predicted_adversarial]}**{aimed} · first flip at step "
                f"{first_flip if first_flip >= 0 else '—'} · {rounding}"
                f"largest pixel change from the original {float(result.perturbation_linf[0]) * 255:.1f}/255 "
                f"(attribute edits and δ together; δ alone ≤ ε_img = {stored['eps'] * 255:.1f}/255) · "
                f"SSIM to the original: **{float(result.ssim[0]):.3f}** (1 = identical)")
    columns = st.columns(4)
    panels = [(result.clean_images, f"original — {model.class_names[predicted_clean]}"),
              (result.edited_images, f"attributes only — {model.class_names[predicted_edit]}"),
              (result.images, f"adversarial — {model.class_names[predicted_adversarial]}"),
              (amplified_perturbation(result.pixel_perturbation, stored["eps"]), "pixel term δ, amplified (gray = 0)")]
    for column, (picture, caption) in zip(columns, panels):
        column.image(to_pil(picture, width_px=168), caption=caption, width="stretch")
    values = result.attributes_of(0)
    moved = result.normalized_magnitudes()[0]
    top = result.attribute_names[int(moved.argmax())] if len(moved) and float(moved.max()) > 0 else None
    takeaway = attack_takeaway(outcome, model.class_names[predicted_clean],
                               model.class_names[predicted_adversarial],
                               ATTRIBUTES[top].label.lower() if top else None, bool(result.success_after_rounding[0]),
                               float(result.ssim[0]), steps=stored.get("steps"), first_flip_step=first_flip,
                               target_class=stored.get("target"))
    explain(takeaway,
            "Four pictures: the **original**; the **attributes only** (the named edits the attack chose, such as a "
            "little more contrast or a small turn, without the pixel term); the **adversarial** image (those edits "
            "plus a tiny pixel change, at most ε_img per pixel); and that **pixel change**, amplified so it can be "
            "seen. The table lists the value the attack chose for each attribute; *Load these values into the "
            "sliders* lets you replay and tweak the edit by hand.")
    table, actions = st.columns([2, 1])
    # by the sliders' names, with how far each went across its range: what "mostly through" in the takeaway reads
    table.dataframe([{"attribute (slider)": ATTRIBUTES[name].label, "value": round(value, 4),
                      "reads as": ATTRIBUTES[name].reading(value), "share of its range": f"{float(moved[index]):.0%}"}
                     for index, (name, value) in enumerate(values.items())], hide_index=True, width="stretch",
                    height="content")  # every attribute in view: an RGB world's 13 rows scrolled out of sight
    actions.button("Load these values into the sliders", on_click=load_into_sliders, args=(values,), key="sia_load")
    buffer = io.BytesIO()
    to_pil(result.images).save(buffer, format="PNG")
    actions.download_button("Adversarial image (PNG)", buffer.getvalue(), file_name="sia_adversarial.png",
                            mime="image/png", key="sia_download_png")
    parameters = {"model": selection.model_key, "image": image_key, "label": model.class_names[label],
                  "attack": stored["config"], "attributes": values, "eps_linf": stored["eps"],
                  "success": bool(result.success[0]), "success_after_8bit_rounding": bool(result.success_after_rounding[0]),
                  "ssim": round(float(result.ssim[0]), 6),
                  "adversarial_prediction": model.class_names[predicted_adversarial]}
    actions.download_button("Parameters (JSON)", json.dumps(parameters, indent=2), file_name="sia_parameters.json",
                            mime="application/json", key="sia_download_json")
    # each attribute as a signed share of its reach (the scale the table's "share of its range" uses)
    history_figure = attack_history_figure(
        result.history, result.attribute_names, {name: ATTRIBUTES[name].label for name in result.attribute_names},
        scales=result.attribute_reach())
    st.plotly_chart(history_figure, width="stretch", key="sia_history")
    st.caption("Each step climbs the loss; watch the true-class probability fall and which attributes move to get there.")
    probabilities_figure = probability_bars(torch.softmax(result.adversarial_logits[0], 0), model.class_names,
                                            true_label=label, title="Class probabilities of the adversarial image")
    report_button(lambda: PageReport(
        f"Semantic Image Attack on one image: {selection.card.id}", takeaway,
        figures=(("The attack, step by step", history_figure), ("After the attack", probabilities_figure)),
        tables=(("Attribute values found", [{"attribute": ATTRIBUTES[name].label, "value": round(value, 6),
                                            "reads as": ATTRIBUTES[name].reading(value)}
                                           for name, value in values.items()]),),
        card=selection.card.to_dict(), parameters=parameters, references=("sia", "pgd")),
        name="sia-attack", key="sia_report")
