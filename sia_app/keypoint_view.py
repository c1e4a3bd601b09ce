"""The keypoint worlds on the SIA explore and regions pages: landmarks drawn over the image, moving live with the
attribute sliders; the attack's displaced landmarks and its NME over the steps; RoI (landmark saliency) against RoA.
The pages call `explore(selection)` / `regions(selection)` for a keypoint model and stop."""

from __future__ import annotations

import io
import json
import math

import streamlit as st
import torch

from sia_app import cache
from sia_app.explain import PIXEL_BUDGET_HELP, SPARSITY_WEIGHT_HELP, SPARSITY_WEIGHT_LABEL, STEPS_HELP, explain
from sia_app.sidebar import Selection
from sia_core.attacks import radius_label
from sia_core.attacks.semantic import SemanticAttack
from sia_core.claims import mean_t_interval
from sia_core.data.images import decode_image, decode_photo
from sia_core.errors import SiaError
from sia_core.figures import (ZONE_NAMES, amplified_perturbation, heatmap, keypoint_figure, nme_history_figure,
                              to_pil, zone_overlay)
from sia_core.keypoints.faces import crop_of
from sia_core.semantics import ATTRIBUTES, apply_attributes, attributes_for, edits_in_words, move_points

SLIDER_KEY = "kp_attr_{}"
RESULT_KEY = "kp_attack_result"
IMAGE_SOURCES = ("Dataset image", "Upload")


def _world_note(selection: Selection) -> None:
    dataset, card = selection.dataset, selection.card
    if dataset.keypoint_reference == "model prediction":
        st.info(f"This world has **{len(dataset)} image{'s' if len(dataset) != 1 else ''}** ({dataset.source}). Faces "
                "at hand offline are few: choose *Faces in a folder of photos* in the sidebar, or upload a photo "
                "below, for more. With no marked landmarks, the reference points are the model's own on the clean "
                "image: an attack pushes the points away from where the model put them.")
    else:
        st.caption(f"{len(dataset):,} images of {dataset.name}, each with its true landmarks ({dataset.source}).")
    st.caption(f"**{card.id}** places {len(card.point_names)} points ({', '.join(card.point_names)}). Its error is the "
               "normalized mean error (NME): the mean distance from the reference points, divided by the "
               + ("distance between the eyes" if selection.model.task.normalizer == "inter-ocular"
                  else "diagonal of the object's box") + f"; above {selection.model.task.threshold:g} the prediction "
               "counts as failed, the usual threshold.")


def _choose_image(selection: Selection) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(1, C, H, W) image, (1, R, 2) reference and a key naming them."""
    model, dataset = selection.model, selection.dataset
    source = st.radio("Image", list(IMAGE_SOURCES), horizontal=True, key="kp_image_source")
    if source == "Upload":
        upload = st.file_uploader("PNG, JPEG or WebP", type=["png", "jpg", "jpeg", "webp"], key="kp_upload")
        if upload is None:
            st.info("Upload a photo" + (" with a face" if selection.card.architecture == "mtcnn-onet" else "")
                    + ", or switch to a dataset image.")
            st.stop()
        data = upload.getvalue()
        try:
            if selection.card.architecture == "mtcnn-onet":
                photo = decode_photo(data)
                faces = cache.cached_face_detector().detect(photo)
                if not faces:
                    st.warning("No face found in this photo (MTCNN looks for faces of 20 px or more).")
                    st.stop()
                choice = st.selectbox("Face", range(len(faces)), key="kp_face", format_func=lambda i: (
                    f"face {i + 1}: box ({faces[i].box[0]:.0f}, {faces[i].box[1]:.0f})–({faces[i].box[2]:.0f}, "
                    f"{faces[i].box[3]:.0f}), p = {faces[i].probability:.4f}"))
                image = crop_of(photo, faces[choice])[0]
            else:
                image = decode_image(data, model.input_shape)
        except SiaError as error:
            st.error(str(error))
            st.stop()
        with torch.inference_mode():
            reference = model.points(image)
        st.caption("No marked landmarks for an upload: the reference points are the model's own on it.")
        return image, reference, f"upload|{cache.digest(data)}|{st.session_state.get('kp_face', 0)}"
    if st.session_state.get("kp_index", 0) >= len(dataset):
        st.session_state["kp_index"] = 0
    index = st.number_input("Index in the dataset", 0, len(dataset) - 1, key="kp_index", step=1)
    return (dataset.images[index:index + 1], dataset.keypoints[index:index + 1],
            f"{selection.dataset_key}|{index}")


def _reset_sliders(attributes) -> None:
    for attribute in attributes:
        st.session_state[SLIDER_KEY.format(attribute.name)] = attribute.neutral


def explore(selection: Selection) -> None:
    """The explore page for a keypoint model."""
    model = selection.model
    task = model.task
    _world_note(selection)
    image, reference, image_key = _choose_image(selection)
    attributes = attributes_for(model.input_shape)
    for attribute in attributes:  # another model's sliders may hold values outside these ranges
        key = SLIDER_KEY.format(attribute.name)
        if key in st.session_state and math.isfinite(float(st.session_state[key])):
            st.session_state[key] = min(max(float(st.session_state[key]), attribute.low), attribute.high)

    @st.fragment
    def slider_panel() -> None:
        st.subheader("Attribute sliders")
        controls, picture = st.columns([2, 3])
        with controls:
            params = {}
            for attribute in attributes:
                key = SLIDER_KEY.format(attribute.name)
                st.session_state.setdefault(key, attribute.neutral)
                params[attribute.name] = st.slider(attribute.slider_label, attribute.low, attribute.high,
                                                   step=attribute.step, key=key, help=attribute.description)
            edit = edits_in_words(params)
            st.caption(f"The edit: {edit}." if edit else "No edit: every slider is at its neutral value.")
            st.button("Reset", on_click=_reset_sliders, args=(attributes,), key="kp_reset")
        values = {name: torch.tensor([float(value)]) for name, value in params.items()}
        with torch.inference_mode():
            edited = apply_attributes(image, values)
            predicted = model.points(edited)
            moved = move_points(reference, image, values)  # the landmarks travel with a turned or shifted image
            nme = float(task.errors(predicted, moved)[0])
        with picture:
            st.plotly_chart(keypoint_figure(edited, {"reference": task.landmarks(moved)[0], "predicted": predicted[0]},
                                            model.point_names, title="edited image: reference (green) and "
                                                                     "prediction (red)"),
                            width="stretch", key="kp_slider_figure")
            left, right = st.columns(2)
            left.metric("NME", f"{nme:.3f}", "failed" if nme > task.threshold else "within the threshold",
                        delta_color="inverse" if nme > task.threshold else "off")
            right.metric("Failure threshold", f"{task.threshold:g}")

    slider_panel()
    st.divider()
    st.subheader("Semantic Image Attack")
    with st.form("kp_attack_form"):
        names = [a.name for a in attributes]
        chosen = st.multiselect("Attributes the attack may move", names, default=names, key="kp_attack_attributes",
                                format_func=lambda name: ATTRIBUTES[name].label)
        c1, c2, c3 = st.columns(3)
        steps = c1.slider("Steps", 5, 100, 30, key="kp_steps", help=STEPS_HELP)
        eps_255 = c2.slider("Pixel budget ε_img (/255, L∞)", 0.0, 16.0, 2.0, step=0.5, key="kp_eps",
                            help=PIXEL_BUDGET_HELP)
        sparsity = c3.slider(SPARSITY_WEIGHT_LABEL, 0.0, 2.0, 0.0, step=0.1, key="kp_sparsity",
                             help=SPARSITY_WEIGHT_HELP)
        run = st.form_submit_button("Run the attack", type="primary")
    if run:
        if not chosen:
            st.error("Choose at least one attribute.")
        else:
            attack = SemanticAttack(attributes=tuple(chosen), steps=steps, eps_linf=eps_255 / 255,
                                    sparsity_weight=sparsity)
            bar = st.progress(0.0, text="Attacking…")
            result = attack(model, image, reference,
                            progress=lambda step, total, info: bar.progress(step / total, text=f"step {step}/{total}"))
            bar.empty()
            st.session_state[RESULT_KEY] = {"image_key": image_key, "model_key": selection.model_key,
                                            "result": result, "eps": eps_255 / 255, "config": attack.description}
    stored = st.session_state.get(RESULT_KEY)
    if stored is None:
        return
    if stored["image_key"] != image_key or stored["model_key"] != selection.model_key:
        st.info("The last attack ran on another image or model; run it again to see this one.")
        return
    _attack_result(selection, stored)


def _attack_result(selection: Selection, stored: dict) -> None:
    model, result = selection.model, stored["result"]
    task = model.task
    before = float(task.errors(result.clean_logits, result.labels)[0])
    after = float(task.errors(result.adversarial_logits, result.reference)[0])
    outcome = result.outcome(0)
    verdict = {"succeeded": "The attack succeeded", "failed": "The attack did not succeed",
               "already-fooled": "Nothing to attack: the prediction already fails here"}[outcome]
    st.markdown(f"**{verdict}**: NME {before:.3f} → **{after:.3f}** (failure above {task.threshold:g}) · survives "
                f"8-bit rounding (PNG): **{'yes' if bool(result.success_after_rounding[0]) else 'no'}** · "
                f"SSIM to the original: **{float(result.ssim[0]):.3f}** (1 = identical)")
    moved = task.landmarks(result.reference)[0]
    left, middle, right = st.columns(3)
    left.plotly_chart(keypoint_figure(result.clean_images, {"reference": task.landmarks(result.labels)[0],
                                                            "predicted": result.clean_logits[0]},
                                      model.point_names, title="original"), width="stretch", key="kp_clean")
    middle.plotly_chart(keypoint_figure(result.images, {"reference": moved, "predicted": result.adversarial_logits[0]},
                                        model.point_names, title="adversarial: where the points went"),
                        width="stretch", key="kp_adversarial")
    right.image(to_pil(amplified_perturbation(result.pixel_perturbation, stored["eps"]), width_px=240),
                caption="pixel term δ, amplified (gray = 0)", width="stretch")
    values = result.attributes_of(0)
    magnitudes = result.normalized_magnitudes()[0]
    top = result.attribute_names[int(magnitudes.argmax())] if len(magnitudes) and float(magnitudes.max()) > 0 else None
    explain(f"{verdict.split(':')[0]}: the mean distance of the points from where they belong went from "
            f"{before:.3f} to {after:.3f} of the {'eye distance' if task.normalizer == 'inter-ocular' else 'box diagonal'}"
            + (f"; the attribute that moved furthest was {ATTRIBUTES[top].label.lower()}." if top else "."),
            "Green circles are the reference landmarks (moved with the image where the attack turned, shifted or "
            "zoomed it); red crosses are the model's points. The attack climbs the NME with the named attributes and "
            "a tiny pixel change; the table lists the attribute values it chose.")
    # with how far each went across its range: what "moved furthest" in the takeaway reads
    st.dataframe([{"attribute": ATTRIBUTES[name].label, "value": round(value, 4),
                   "reads as": ATTRIBUTES[name].reading(value), "share of its range": f"{float(magnitudes[index]):.0%}"}
                  for index, (name, value) in enumerate(values.items())], hide_index=True, height="content")
    st.plotly_chart(nme_history_figure(result.history, result.attribute_names,
                                       {name: ATTRIBUTES[name].label for name in result.attribute_names},
                                       threshold=task.threshold, scales=result.attribute_reach()),
                    width="stretch", key="kp_history")
    buffer = io.BytesIO()
    to_pil(result.images).save(buffer, format="PNG")
    parameters = {"model": selection.model_key, "attack": stored["config"], "attributes": values,
                  "nme_before": round(before, 6), "nme_after": round(after, 6), "success": bool(result.success[0]),
                  "points_after": [[round(float(v), 5) for v in p] for p in result.adversarial_logits[0]]}
    c1, c2 = st.columns(2)
    c1.download_button("Adversarial image (PNG)", buffer.getvalue(), file_name="sia_keypoints_adversarial.png",
                       mime="image/png", key="kp_download_png")
    c2.download_button("Parameters (JSON)", json.dumps(parameters, indent=2), file_name="sia_keypoints.json",
                       mime="application/json", key="kp_download_json")


def regions(selection: Selection) -> None:
    """The regions page for a keypoint model: one image's maps, then the overlap over many images."""
    model, dataset = selection.model, selection.dataset
    _world_note(selection)
    c1, c2, c3 = st.columns(3)
    fraction = c1.slider("Top fraction q of each map", 0.05, 0.5, 0.2, step=0.05, key="kp_regions_fraction")
    eps_255 = c2.slider("Attack budget ε (/255, L∞)", 1.0, 16.0, 8.0, step=1.0, key="kp_regions_eps")
    steps = c3.slider("Attack steps", 5, 40, 10, key="kp_regions_steps")
    if st.session_state.get("kp_regions_index", 0) >= len(dataset):
        st.session_state["kp_regions_index"] = 0
    index = st.number_input("Index in the dataset", 0, len(dataset) - 1, key="kp_regions_index", step=1)
    image, reference = dataset.images[index:index + 1], dataset.keypoints[index:index + 1]
    panel = cache.cached_keypoint_panel(selection.model_key, f"{selection.dataset_key}|{index}", fraction,
                                        eps_255 / 255, steps, model, image, reference)
    columns = st.columns(3)
    columns[0].plotly_chart(heatmap(panel.importance, title="RoI: landmark saliency"), width="stretch",
                            key="kp_roi")
    columns[1].plotly_chart(heatmap(panel.attack, title="RoA: |δ ⊙ ∇ NME|"), width="stretch", key="kp_roa")
    columns[2].plotly_chart(zone_overlay(panel.zones, image[0], title=f"top {fraction:.0%} zones"), width="stretch",
                            key="kp_zones")
    means = panel.metrics.means()
    st.caption(f"Zones: {', '.join(ZONE_NAMES)}. This image: IoU {means['iou']:.3f}, Dice {means['dice']:.3f}, "
               f"share of the attack's effect inside the RoI {means['energy_in_roi']:.3f}, rank correlation "
               f"{means['spearman']:.3f}.")
    st.subheader("Over many images")
    if len(dataset) > 2:
        n = st.slider("Images", 2, min(len(dataset), 400), min(len(dataset), 100), key="kp_regions_n")
    else:  # the face photos: all of them
        n = len(dataset)
        st.caption(f"All {n} image{'s' if n != 1 else ''} of this world.")
    if st.button("Map RoI and RoA over the images", key="kp_regions_run", type="primary"):
        st.session_state["kp_regions_ran"] = (selection.model_key, selection.dataset_key, n, fraction, eps_255, steps)
    if st.session_state.get("kp_regions_ran") != (selection.model_key, selection.dataset_key, n, fraction, eps_255,
                                                  steps):
        return
    report = cache.cached_keypoint_regions(selection.model_key, selection.dataset_key, n, fraction, eps_255 / 255,
                                           steps, model, dataset)
    summary = report.to_dict()
    ious = report.metrics.iou.double().numpy()
    # a t-interval of the mean IoU: with a handful of images (the two face photos) a normal one is far too narrow
    low, high = mean_t_interval(ious)
    interval = (f" (95% CI [{low:.3f}, {high:.3f}])" if math.isfinite(low) else " (one image: no interval)")
    above = math.isfinite(low) and low > report.random_iou
    inside = summary["energy_in_roi"]
    explain(f"Over {report.n} images the top-{fraction:.0%} RoI and RoA overlap with IoU {summary['iou']:.3f}"
            + interval + f"; two random masks of that area would overlap {report.random_iou:.3f}. "
            + ("The attack leans toward where the landmark prediction looks (the overlap's interval lies above the "
               "random control)" if above else "The overlap's interval does not clear the random control"
               if math.isfinite(low) else "With one image there is no interval to hold against the random control")
            + f", and {inside:.0%} of its effect lands inside the RoI"
            + (", so most of it lands elsewhere." if inside < 0.5 else ".")
            + f" The attack behind the RoA raised the mean NME from {summary['nme_before']:.3f} to "
              f"{summary['nme_after']:.3f}: {summary['attack_success_rate']:.0%} of the images are past the failure "
              f"threshold ({model.task.threshold:g}) after it"
            + (f", {summary['failed_before']:.0%} were before it." if math.isfinite(summary["failed_before"]) else "."),
            "RoI: how strongly each pixel moves the predicted points (the norm of their gradients). RoA: where PGD's "
            "change, weighted by its effect on the NME, lands. The random control is the IoU two unrelated masks of "
            "the same area would have by chance. The effect inside the RoI: the share of the RoA map's total that "
            "falls in the top-q RoI.")
    st.dataframe([{"images": summary["n"], "region size": f"top {summary['fraction']:.0%}",
                   "attack": f"{summary['steps']}-step PGD at {radius_label(summary['eps'], 'linf')}",
                   "IoU": summary["iou"], "Dice": summary["dice"], "effect inside RoI": summary["energy_in_roi"],
                   "rank correlation": summary["spearman"], "random masks' IoU": summary["random_mask_iou"],
                   "NME before → after": f"{summary['nme_before']:.3f} → {summary['nme_after']:.3f}",
                   "past threshold before → after": f"{summary['failed_before']:.0%} → "
                                                    f"{summary['attack_success_rate']:.0%}"}],
                 hide_index=True, width="stretch",
                 column_config={name: st.column_config.NumberColumn(format="%.3f") for name in
                                ("IoU", "Dice", "effect inside RoI", "rank correlation", "random masks' IoU")})
    st.caption("Neutralizing the attacked region as a defense is a classification study here; it is not run on "
               "keypoint models.")


def home(selection: Selection) -> None:
    """The home page's view of a keypoint model: its error on these images, and a few of them with their points."""
    model, dataset = selection.model, selection.dataset
    task = model.task
    st.subheader(f"{model.model_id} on {dataset.title}")
    count = min(len(dataset), 500)
    with torch.inference_mode():
        predicted = model.points(dataset.images[:count])
    errors = task.errors(predicted, dataset.keypoints[:count])
    failed = float((errors > task.threshold).float().mean())
    st.caption(f"{dataset.source}. On the first {count} images, computed in this run: mean NME **{float(errors.mean()):.3f}**, "
               f"failed (NME > {task.threshold:g}) on **{failed:.1%}**"
               + (" (the reference points are the model's own here, so the error is zero by construction)."
                  if dataset.keypoint_reference == "model prediction" else "."))
    columns = st.columns(min(4, count))
    for index, column in enumerate(columns):
        column.plotly_chart(keypoint_figure(dataset.images[index], {"reference": task.landmarks(
            dataset.keypoints[index:index + 1])[0], "predicted": predicted[index]}, model.point_names,
            title=f"NME {float(errors[index]):.3f}", height=240), width="stretch", key=f"kp_home_{index}")
    st.info("Keypoint models go through the SIA explore and diagnosis pages and the RoI vs RoA page; margins and the "
            "robust-feature datasets are defined for classifiers.")
