"""The margins page's zoo: every shipped model of a world at a glance, τ and AUROC against robust accuracy, the
pseudo-margin's τ, the sample-efficient estimate's error, and a click to open one model's scatter."""

from __future__ import annotations

import streamlit as st
import torch

from sia_app import cache
from sia_app.verdicts import verdict_list, world_claims
from sia_app.worlds import world_of
from sia_app.explain import explain
from sia_core.attacks import attack_label, radius_label
from sia_core.claims import VERDICT_WORDS
from sia_core.data.cifar10 import CIFAR10_CLASSES
from sia_core.data.fashion_mnist import FASHION_MNIST_CLASSES
from sia_core.figures import estimate_error_figure, margin_scatter, zoo_figure
from sia_core.margins import PAPER_ZOO, ZOO_MODELS
from sia_core.models.registry import in_notation
from sia_core.takeaways import ROBUST_MODEL_LINE, zoo_takeaway

WORLD_LABELS = {"fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
CLASS_NAMES = {"fashion-mnist": FASHION_MNIST_CLASSES, "cifar10": CIFAR10_CLASSES}


def _autoattack_cell(entry: dict | None) -> str:
    if entry is None:
        return "not measured yet"
    text = f"{entry['robust_accuracy']:.1%} (n {entry['n']})"
    if entry.get("pgd20_robust_accuracy") is not None:
        text += f"; PGD-20 {entry['pgd20_robust_accuracy']:.1%}"
    return text


def _figure(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def autoattack_entries(eps: float, norm: str) -> dict[str, dict]:
    """Each shipped model's AutoAttack entry at the zoo's radius and norm, from its card (scripts/autoattack_cards.py)."""
    found = {}
    for card in cache.cached_model_cards():
        for entry in card.get("evaluations", ()):
            if (entry.get("attack") == f"autoattack-{norm}" and entry.get("eps") is not None
                    and abs(entry["eps"] - eps) < 1e-3 and entry.get("robust_accuracy") is not None):
                found[card["id"]] = entry
    return found


def on_autoattack_axis(points: list[dict], autoattack: dict[str, dict]) -> list[dict]:
    """The zoo's points with AutoAttack's robust accuracy across where the card has it (else the margin search's,
    marked so): the measure the paper's points use."""
    return [{**point, "margin_robust_accuracy": point["robust_accuracy"],
             **({"robust_accuracy": autoattack[point["model_id"]]["robust_accuracy"], "axis": "AutoAttack"}
                if point["model_id"] in autoattack else {"axis": "margin search"})} for point in points]


def render_zoo(default_world: str) -> None:
    """The zoo section, for the worlds whose zoo ships (the sidebar's world first)."""
    st.subheader("The zoo: is every model margin consistent?")
    worlds = [world for world in ZOO_MODELS if cache.shipped_zoo(world) is not None]
    if not worlds:
        st.info("No zoo is shipped in this copy; `python scripts/precompute.py zoo` computes it.")
        return
    own = world_of(default_world, worlds)
    if own is None:  # the ImageNet photos, a keypoint world, a user's folder: say whose zoo this is
        st.caption(f"No zoo ships for this dataset: these are the zoos of {' and '.join(map(WORLD_LABELS.get, worlds))}"
                   ", models trained here with different recipes; your model's own margins are below.")
    if st.session_state.get("margins_zoo_world") not in worlds:
        st.session_state["margins_zoo_world"] = own or worlds[0]
    world = (st.radio("Zoo of", worlds, horizontal=True, key="margins_zoo_world", format_func=WORLD_LABELS.get)
             if len(worlds) > 1 else worlds[0])
    shipped = cache.shipped_zoo(world)
    zoo, zoo_command, zoo_created = shipped.result, shipped.command, shipped.created
    zoo_by_id = {entry.model_id: entry for entry in zoo.entries}
    autoattack = autoattack_entries(zoo.config.eps, zoo.config.norm)
    zoo_points = on_autoattack_axis([entry.summary() for entry in zoo.entries], autoattack)
    zoo_sizes = zoo.config.subset_sizes
    weakest = zoo.least_consistent
    typical_size = min(zoo_sizes, key=lambda size: abs(size - 100))
    taus = [entry.kendall_tau for entry in zoo.entries]
    # the estimate's error over the robust models, as the claim judges it (else over all of them)
    judged = [e for e in zoo.entries if e.robust_accuracy >= ROBUST_MODEL_LINE] or list(zoo.entries)
    zoo_summary = zoo_takeaway(len(zoo.entries), weakest.model_id, weakest.pseudo_kendall_tau_before,
                               weakest.pseudo_kendall_tau_after, (min(taus), max(taus)),
                               (typical_size, sum(e.estimate_error(typical_size)[0] for e in judged) / len(judged)),
                               robust_models=len(judged) if len(judged) < len(zoo.entries) else None)
    # the zoo is the study behind the margins claims: their verdicts close the takeaway in a line, their whys (long:
    # they pushed the chart below a laptop's fold) in an expander under it
    claims = {"Margin-consistent": "robust-models-are-margin-consistent",
              "Flags brittle inputs": "logit-margin-flags-brittle-inputs",
              "Sample-efficient estimate": "sample-efficient-robust-accuracy"}
    judged_claims = [claim for claim in world_claims(world, claims.values()) if claim.verdict != "not-measured"]
    labels = {claim_id: label for label, claim_id in claims.items()}
    if judged_claims:
        zoo_summary += " The scorecard: " + "; ".join(
            f"{labels[claim.id].lower()}: **{VERDICT_WORDS[claim.verdict].rstrip('.').lower()}**"
            for claim in judged_claims) + " (why, below)."
    explain(zoo_summary.strip(),
            f"Each filled dot is one of our {len(zoo.entries)} {WORLD_LABELS[world]} models, trained with a different recipe "
            f"and strength, measured on {zoo.config.n} test images: across, its robust accuracy under AutoAttack "
            f"({radius_label(zoo.config.eps, zoo.config.norm)}; on the first test images its card names, as the "
            "paper's points are; where a card has no AutoAttack figure yet, the dot is a square at our margin search's "
            "robust accuracy: input margin > ε); up, how well its free logit margin ranks "
            "images like their input margin (Kendall τ), or how well it flags the non-robust ones (AUROC). The open "
            "circle above or below is the same model ranked by a learned pseudo-margin instead. The red diamonds are "
            "the paper's robust CIFAR-10 models (ε = 8/255, much larger networks): "
            + ("the same dataset, " if world == "cifar10" else "another dataset, shown ")
            + "for the shape of the claim, not for its numbers. Select a dot to open that model's scatter.")
    if judged_claims:
        with st.expander("Why: the scorecard on these claims"):
            st.markdown(verdict_list(world, claims))
    z1, z2 = st.columns([3, 2])
    zoo_score = z2.radio("Vertical axis", ["kendall_tau", "auroc"], horizontal=True, key="margins_zoo_score",
                         format_func={"kendall_tau": "Kendall τ", "auroc": "AUROC"}.get)
    zoo_event = z1.plotly_chart(zoo_figure(zoo_points, PAPER_ZOO, score=zoo_score), on_select="rerun",
                                selection_mode="points", key="margins_zoo_chart")
    zoo_selected = [point["customdata"][0] for point in (zoo_event.selection.get("points", []) if zoo_event and
                    getattr(zoo_event, "selection", None) else []) if point.get("customdata")]
    if zoo_selected and zoo_selected[0] in zoo_by_id:
        st.session_state["margins_zoo_model"] = zoo_selected[0]
    if st.session_state.get("margins_zoo_model") not in zoo_by_id:  # the first view, or another world's model
        st.session_state["margins_zoo_model"] = weakest.model_id
    opened = zoo_by_id[z2.selectbox("Model (or select a dot)", list(zoo_by_id), key="margins_zoo_model")]
    z2.markdown(f"**{opened.model_id}** · {in_notation(opened.description)}  \n"
                f"card's first evaluation (its own test images, not the zoo's): clean {opened.card_clean_accuracy:.1%}"
                f", {attack_label(opened.card_attack, opened.card_eps)}: {opened.card_robust_accuracy:.1%}  \n"
                f"here: τ **{opened.kendall_tau:.3f}** → pseudo-margin {opened.pseudo_kendall_tau_after:.3f} "
                f"({opened.pseudo_fit_split})")
    z2.plotly_chart(margin_scatter(torch.tensor(opened.input_margins), torch.tensor(opened.logit_margins),
                                   torch.tensor(opened.correct), torch.tensor(opened.labels),
                                   CLASS_NAMES[world], eps=zoo.config.eps, norm=zoo.config.norm),
                    width="stretch", key="margins_zoo_scatter")
    # the table the whole page wide: beside the estimate chart, half a page hid most of its ten columns
    # "clean" is the zoo's own count on its test images; the card's first evaluation (above the scatter) used others
    st.dataframe([{"model": e.model_id, "recipe": e.recipe, f"clean (zoo's {zoo.config.n})": f"{e.clean_accuracy:.1%}",
                   "AutoAttack (card)": _autoattack_cell(autoattack.get(e.model_id)),
                   "robust (margin search)": f"{e.robust_accuracy:.1%}", "τ": f"{e.kendall_tau:.3f}",
                   "τ pseudo": f"{e.pseudo_kendall_tau_after:.3f}", "AUROC": _figure(e.auroc),
                   "FPR@95": _figure(e.fpr_at_95_tpr),
                   f"estimate error ({typical_size}, points)": "{:.1f} ± {:.1f}".format(
                       *(100 * value for value in e.estimate_error(typical_size)))}
                  for e in zoo.entries], hide_index=True, width="stretch", key="margins_zoo_table",
                 column_config={"model": st.column_config.TextColumn(pinned=True)})
    st.caption("Paper (CIFAR-10, ε = 8/255, 10,000 test images, RobustBench's robust accuracy): "
               + "; ".join(f"{p['model']} τ {p['kendall_tau']:.2f}"
                           + (f" → pseudo-margin {p['pseudo_kendall_tau']:.2f}" if p["pseudo_kendall_tau"] else "")
                           + ("" if p["verified"] else " (from a cell of the authors' notebook, not checked against "
                                                       "the paper)")
                           for p in PAPER_ZOO) + ". AUROC n/a: every image (or none) is non-robust at this ε.")
    st.markdown(f"**Robust accuracy from a few attacked images** — {zoo.config.repeats} random subsets per size; "
                "the logit-margin threshold fitted on the subset labels the rest.")
    st.plotly_chart(estimate_error_figure({entry.model_id: {size: entry.estimate_error(size) for size in zoo_sizes}
                                           for entry in zoo.entries}), width="stretch", key="margins_zoo_estimates")
    st.caption(f"The zoo was computed by `{zoo_command}` on {zoo_created}, for every model above.")

