"""Semantic attack — robustify: SIA adversarial training and whether its robustness transfers to other attacks, and
SIA augmentation of under-represented classes against re-balancing baselines."""

from __future__ import annotations

import sia_app.preload  # noqa: F401  (first: a session that opens a fresh server waits here for its imports)
import statistics
from dataclasses import asdict

import streamlit as st

from sia_app import cache
from sia_app.explain import explain
from sia_app.navigation import require_app_frame
from sia_app.references import render_references
from sia_app.report_button import report_button
from sia_app.sidebar import require_selection
from sia_app.verdicts import verdict_and_evidence, verdict_notes
from sia_app.worlds import world_of
from sia_core.claims import (PIXEL_COLUMNS, ablation_control_row, ablation_variant_label, imbalance_ablation_finding,
                             shipped_sia_row)
from sia_core.errors import SiaError
from sia_core.figures import accuracy_bars, to_pil
from sia_core.references import REFERENCES
from sia_core.report import PageReport
from sia_core.robustify import IMBALANCE_METHODS, TRANSFER_COLUMNS, ImbalanceConfig, ImbalanceReport
from sia_core.takeaways import imbalance_takeaway, transfer_takeaway

WORLDS = {"fashion-mnist": "Fashion-MNIST", "shapes": "Shapes"}  # where the imbalance study trains
TRANSFER_WORLDS = {**WORLDS, "cifar10": "CIFAR-10"}  # whose transfer tables ship
LAST_LIVE_KEY = "robustify_last_live_run"  # (world, config fields) of the last live run that finished
# how each training recipe of a transfer table's rows trained its model, for the explanation under the table
RECIPE_WORDS = {"standard": "on clean images only", "pgd": "on PGD attacks (Madry et al.)",
                "fgsm-rs": "on FGSM attacks from a random start (Wong et al.)",
                "sia": "on SIA attacks for half of each batch",
                "random-attributes": "the control: on the same attributes drawn at random, with uniform (not "
                                     "adversarial) pixel noise of the same size"}

require_app_frame("pages/sia_robustify.py")
st.title("Semantic attack — robustify")
st.caption("The Semantic Image Attack paper (" + REFERENCES["sia"].short() + ") proposes using its attack beyond "
           "diagnosis: to train models whose robustness transfers to attacks they never saw, and to add hard variants "
           "of the images of under-represented classes. Every number here is from this app's own runs, on its own "
           "small models; the paper gives none we could compare with.")
render_references(("sia", "pgd", "fgsm", "cw", "fgsm-rs", "long-tail"))
selection = require_selection()  # the sidebar stays, and the page opens on the world of the chosen model
chosen_world = world_of(selection.card.dataset, TRANSFER_WORLDS)
if chosen_world is not None and st.session_state.get("robustify_followed") != selection.model_key:
    st.session_state["robustify_world"] = chosen_world  # once per model choice: the radio stays free after
    st.session_state["robustify_followed"] = selection.model_key

# --- the transfer table ---------------------------------------------------------------------------------------
st.header("Does SIA training transfer to other attacks?")
world = st.radio("World", list(TRANSFER_WORLDS), format_func=TRANSFER_WORLDS.get, horizontal=True,
                 key="robustify_world")
stored_transfer = cache.shipped_result("transfer", world)
transfer_figure, transfer_rows, transfer_text = None, [], ""
if stored_transfer is None:
    st.info("No transfer table ships for this world yet: `python scripts/precompute.py transfer` writes it.")
else:
    table = stored_transfer.result
    columns = table.columns
    labels = {name: TRANSFER_COLUMNS[name].label for name in columns}
    transfer_rows = [{"model": row.model, "trained with": row.recipe, "clean": row.clean_accuracy,
                      **{labels[name]: row.cells[name].robust_accuracy for name in columns}} for row in table.rows]
    rates = ["clean", *labels.values()]
    # on screen in percent with one decimal in every cell (Streamlit's "percent" format wrote 87.04% beside 7%);
    # the report keeps the rates
    st.dataframe([{**row, **{key: 100 * row[key] for key in rates}} for row in transfer_rows], hide_index=True,
                 column_config={key: st.column_config.NumberColumn(format="%.1f%%") for key in rates})
    st.caption(f"Robust accuracy on the first {table.n:,} test images of {table.dataset}: the share "
               "classified correctly before and after the attack. Budgets: "
               + "; ".join(f"**{labels[name]}** {budget}" for name, budget in table.budgets().items()) + ".")
    transfer_figure = accuracy_bars(["clean", *labels.values()],
                                    {row.model: [row.clean_accuracy, *(row.cells[name].robust_accuracy for name in columns)]
                                     for row in table.rows}, title="Accuracy under each attack (ours)")
    st.plotly_chart(transfer_figure, width="stretch", key="robustify_transfer_chart")
    with st.expander("Mean SSIM of the attacked images"):
        st.dataframe([{"model": row.model, **{labels[name]: row.cells[name].mean_ssim for name in columns}}
                      for row in table.rows], hide_index=True,
                     column_config={label: st.column_config.NumberColumn(format="%.3f") for label in labels.values()})
        st.caption("1 = identical to the clean image. Attribute edits (a turn, a shift, a new contrast) lower SSIM "
                   "far more than a pixel budget does, even when a person sees the same object.")
    transfer_text = transfer_takeaway(table.rows, [c for c in PIXEL_COLUMNS if c in columns], labels, n=table.n)
    # the conclusion: the scorecard's verdicts against standard training and the control
    if verdicts := verdict_notes(world, ("sia-training-transfers", "sia-training-beats-random-attributes"),
                                 measured_only=False):
        transfer_text += " " + verdicts
    explain(transfer_text,
            f"Each row is one model of the same architecture, trained {len(table.rows)} ways: "
            + "; ".join(f"*{row.recipe}* ({row.model}), {RECIPE_WORDS.get(row.recipe, 'its own recipe')}"
                        for row in table.rows)
            + ". Each column attacks every model the same way, with the budget written under the table. The "
            "paper's claim is that training on SIA makes a model harder to fool with attacks it was not trained on; "
            "compare the *sia* row "
            "with *standard* in the pixel columns (FGSM, PGD, CW), and with *random-attributes* in the attribute "
            "columns, to tell \"trained against an attack\" from \"trained on varied pictures\".")
    st.caption(f"Precomputed by `{stored_transfer.command}` on {stored_transfer.created} "
               f"({(stored_transfer.seconds or 0) / 60:.0f} min on a CPU). To recompute a table: `python -m sia_core "
               f"robustify transfer --models {','.join(row.model for row in table.rows)} --n {table.n} --json`.")

# --- the imbalance study -------------------------------------------------------------------------------------------
st.header("Does SIA augmentation help under-represented classes? (Fashion-MNIST)")
if world != "fashion-mnist":  # the shipped imbalance study is Fashion-MNIST's, whichever world the table above shows
    st.caption(f"The shipped study below runs on Fashion-MNIST, not on {TRANSFER_WORLDS[world]}; the live run at the "
               "bottom also offers Shapes.")
stored_imbalance = cache.shipped_result("imbalance", "fashion-mnist")
method_labels = IMBALANCE_METHODS.labels()
imbalance_figure, summary_rows, imbalance_text = None, [], ""


def show_imbalance(report: ImbalanceReport, *, key: str, with_gap: bool = True) -> tuple:
    """The study's table, per-class chart and takeaway (SIA's gap left to a verdict that follows, `with_gap`
    False); returns (figure, table rows, takeaway)."""
    config, counts, summary = report.config, report.counts, report.summary()
    def spread(mean: float, std: float, seeds: int) -> str:  # one seed measures no spread: none is written
        return f"{mean:.1%} ± {std:.1%}" if seeds > 1 else f"{mean:.1%}"

    rows = [{"method": method_labels.get(row.method, row.method), "seeds": row.seeds,
             "balanced accuracy": spread(row.balanced_accuracy_mean, row.balanced_accuracy_std, row.seeds),
             "minority classes": spread(row.minority_accuracy_mean, row.minority_accuracy_std, row.seeds)}
            for row in summary]
    st.dataframe(rows, hide_index=True)
    minority = ", ".join(report.class_names[c] for c in report.minority_classes)
    st.caption(f"Long-tailed {report.dataset}: ρ = {config.rho:g}, {sum(counts):,} training images "
               f"({counts[0]:,} of the largest class down to {counts[-1]:,}); the test set stays balanced. "
               f"{config.epochs} passes over the long-tailed set for every method (the same number of steps); "
               + (f"mean ± std over {config.seeds} seeds" if config.seeds > 1 else
                  "one seed, so no spread is measured") + f". Minority classes: {minority}.")
    names = [f"{name} ({count})" for name, count in zip(report.class_names, counts)]
    figure = accuracy_bars(names, {method_labels.get(row.method, row.method): list(row.per_class_accuracy_mean)
                                   for row in summary}, title="Per-class test accuracy (mean over seeds)")
    st.plotly_chart(figure, width="stretch", key=key)
    text = imbalance_takeaway(summary, method_labels, with_gap=with_gap)
    return figure, rows, text


if stored_imbalance is None:
    st.info("No imbalance study ships yet: `python scripts/precompute.py imbalance` writes it.")
else:
    result = stored_imbalance.result
    # the verdict states SIA's gap with its interval, so the takeaway before it leaves the gap out; its evidence,
    # the knobs one at a time, is the section under the takeaway
    verdict, _ = verdict_and_evidence("fashion-mnist", "sia-augmentation-rare-classes")
    imbalance_figure, summary_rows, imbalance_text = show_imbalance(result, key="robustify_imbalance_chart",
                                                                    with_gap=not verdict)
    if verdict:
        imbalance_text += f" {verdict}"
    explain(imbalance_text,
            "A training set where some classes are common and others rare (the class sizes fall exponentially, by a "
            "factor ρ from the first to the last) makes a model neglect the rare ones. Five ways to fight it, each "
            "with the same network, the same starting weights and the same number of training steps: do nothing; "
            "weight the loss of rare classes up; repeat their images; add new images of them made by random "
            "attribute edits; or add new images made by SIA against the model being trained (hard variants that "
            "keep their true label). The augmenting methods add their images half-way through training, once the "
            "model is worth attacking. *Balanced accuracy* averages the accuracy of every class, so rare classes "
            "count as much as common ones.")
    ablation = cache.shipped_study("imbalance-ablation-fashion-mnist")
    if ablation is not None:
        st.subheader("Why SIA augmentation loses here: its knobs, one at a time")
        st.dataframe([{"augmentation": ("random attribute edits (the control)" if row["method"] != "sia" else
                                        "SIA, " + ablation_variant_label(row["change"], ablation["config"])),
                       "balanced accuracy": f"{row['balanced_accuracy']:.1%} ± "
                                            f"{statistics.pstdev(row['balanced_accuracy_per_seed']):.1%}",
                       "minority classes": f"{row['minority_accuracy']:.1%}", "seeds": row["seeds"]}
                      for row in ablation["rows"]], hide_index=True)
        st.markdown(imbalance_ablation_finding(ablation, with_listing=False))  # the table above lists them
        # a separate run of the study's setting: its SIA and control rows beside the study's, so near numbers that
        # differ are explained
        reruns = {"sia": shipped_sia_row(ablation)["balanced_accuracy"],
                  "random-attributes": ablation_control_row(ablation)["balanced_accuracy"]}
        studied = {row.method: row.balanced_accuracy_mean for row in result.summary() if row.method in reruns}
        pairs = [f"{label} {reruns[method]:.1%} where the study's reads {studied[method]:.1%}"
                 for method, label in (("sia", "SIA"), ("random-attributes", "random edits")) if method in studied]
        st.caption(f"The shipped study's setting (ρ {ablation['config']['rho']:g}, {ablation['config']['epochs']} "
                   f"passes), mean ± std over seeds; computed by `{ablation['command']}` on {ablation['created']}"
                   + (f": a separate run from the study above (balanced accuracy: {'; '.join(pairs)})."
                      if pairs else "."))
    samples = result.samples
    if samples:
        st.subheader("Images the augmentation added for the rarest classes")
        class_names = result.class_names
        for method in ("sia", "random-attributes"):
            if method not in samples:
                continue
            images, sample_labels = samples[method]["images"], samples[method]["labels"]
            # the rarest classes first: those the caption above names as the minority
            order = sorted(range(len(sample_labels)), key=lambda i: (result.counts[int(sample_labels[i])], i))[:12]
            st.markdown(f"**{method_labels[method]}**")
            cells = st.columns(min(len(order), 12))
            for cell, index in zip(cells, order):
                cell.image(to_pil(images[index], upscale=3), caption=class_names[int(sample_labels[index])])
    st.caption(f"Precomputed by `{stored_imbalance.command}` on {stored_imbalance.created} "
               f"({(stored_imbalance.seconds or 0) / 60:.0f} min on a CPU); the run below repeats the study with your "
               "settings.")

# --- a live run ------------------------------------------------------------------------------------------------------
st.subheader("Run the imbalance study with your settings")
with st.form("robustify_live_form"):
    c1, c2, c3, c4 = st.columns(4)
    live_world = c1.selectbox("Training set", list(WORLDS), format_func=WORLDS.get, key="robustify_live_world")
    rho = c2.select_slider("Imbalance ratio ρ", [10, 50, 100], value=100, key="robustify_live_rho")
    n_max = c3.slider("Images of the largest class", 100, 2000, 300, step=100, key="robustify_live_n_max")
    epochs = c4.slider("Passes over the long-tailed set", 1, 20, 5, key="robustify_live_epochs")
    methods = st.multiselect("Methods", list(method_labels), default=list(method_labels), format_func=method_labels.get,
                             key="robustify_live_methods")
    seeds = st.slider("Seeds", 1, 3, 1, key="robustify_live_seeds")
    st.caption("A progress bar shows how far it is as it runs. To stop a run, press the Stop button that appears "
               "above the bar; the last run that finished stays on the page.")
    start = st.form_submit_button("Run", type="primary")
live_config = None
if methods:
    try:
        live_config = ImbalanceConfig(rho=float(rho), n_max=n_max, methods=tuple(methods), seeds=seeds, epochs=epochs)
    except SiaError as error:
        st.error(str(error))
if start and not methods:
    st.error("Choose at least one method to run.")
if start and live_config is not None:
    target = (live_world, live_config)
else:  # the last run that finished (a stopped run never gets here, so a rerun does not restart it)
    last = st.session_state.get(LAST_LIVE_KEY)
    target = (last[0], ImbalanceConfig(**last[1])) if last else None
if target is not None:
    target_world, target_config = target
    if start:  # any click reruns the page, which stops this run at its next step: the header's Stop is hidden
        st.button("Stop", key="robustify_live_stop", help="Stops this run; the last run that finished stays.")
    try:
        live = cache.cached_imbalance_study(target_world, repr(target_config), target_config)
    except SiaError as error:
        st.error(f"{error} The live run needs the training split of {WORLDS[target_world]}"
                 + (": choose Shapes as the training set above, which the app draws itself and needs nothing else."
                    if target_world != "shapes" else "."))
    else:
        st.session_state[LAST_LIVE_KEY] = (target_world, asdict(target_config))
        if not start:
            st.caption(f"Your last finished run: {WORLDS[target_world]}, ρ = {target_config.rho:g}, "
                       f"{target_config.n_max} images of the largest class, {target_config.epochs} passes, "
                       f"{target_config.seeds} seed(s).")
        show_imbalance(live, key="robustify_live_chart")
        st.markdown(f"**Takeaway.** {imbalance_takeaway(live.summary(), method_labels)}")

report_button(lambda: PageReport(
    "Semantic attack — robustify", " ".join(text for text in (transfer_text, imbalance_text) if text),
    figures=tuple((caption, figure) for caption, figure in (("Transfer table", transfer_figure),
                                                             ("Per-class accuracy", imbalance_figure)) if figure),
    tables=(("Transfer table", transfer_rows), ("Imbalance study", summary_rows)),
    parameters={"world": world, **({"transfer": asdict(stored_transfer.config)} if stored_transfer else {}),
                **({"imbalance": asdict(stored_imbalance.config)} if stored_imbalance else {})},
    references=("sia", "pgd", "fgsm", "cw", "fgsm-rs", "long-tail"),
    command="python scripts/precompute.py transfer imbalance" + (
        f"  # or: python -m sia_core robustify transfer --models {','.join(row.model for row in table.rows)} "
        f"--n {table.n} --json" if stored_transfer is not None else "")),
    name="robustify", key="robustify_report")
