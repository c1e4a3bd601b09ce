"""The features page's study at scale: the four constructed sets and plain training ("D") at thousands of images,
built by scripts/features_at_scale.py, each score with its 95% interval beside the paper's, the representation
error curve that chose D̂_R / D̂_NR's steps, and the scorecard's verdicts."""

from __future__ import annotations

from typing import Optional

import streamlit as st

from sia_app import cache
from sia_app.explain import explain
from sia_app.verdicts import SCORECARD_WORLDS, verdict_and_evidence, verdict_list, verdict_notes, world_claims
from sia_app.worlds import world_of
from sia_core.features import (KINDS, PAPER_CIFAR10, PAPER_ROBUST_SOURCE, seed_mean_points, transfer_attack_label,
                               transfer_by_radius, transfer_runs, transfer_settings)
from sia_core.claims import (CONSTRUCTION_SUCCESS, class_extremes, class_pair, current_test_pixels,
                             earlier_source_sentence, exact_pixels_sentence, jpeg_control_sentence, rate_interval,
                             source_transfer_compared, source_transfer_sentence,
                             transfer_built_from_another_source)
from sia_core.figures import class_success_bars, curves, transfer_scatter
from sia_core.takeaways import features_takeaway

SET_LABELS = {"d": "D (original images)", "d_small": "D (as many images as D̂_R)",
              "d_matched_nr": "D (as accurate as D̂_NR)", **KINDS.labels(),
              "d_det_robust": "D̂_det, robust source", "d_rand_robust": "D̂_rand, robust source"}
SET_GLOSSARY = (
    "**The training sets**, each made from the original training images by a source model (the paper's names):\n"
    "- **D**: the original images with their true labels, the baseline.\n"
    "- **D̂_det**: each image nudged by a small targeted attack (hard to see) toward the *next* class, (y + 1) mod C "
    "(true class y of C classes; the last wraps to the first), and relabelled with it. Every label is wrong for "
    "what a person sees, so a model can learn the true classes from it only through the attack's small "
    "patterns.\n"
    "- **D̂_rand**: the same, toward a random other class.\n"
    "- **D̂_R**: images that keep only what a *robust* model sees of an image, drawn from a random other image.\n"
    "- **D̂_NR**: the same for a *standard* model; they look like the image they started from.\n"
    "- **…, robust source**: D̂_det or D̂_rand built by the same attack on the *robust* model instead of the "
    "standard one (the control).\n\n"
    "A fresh model trains on each set and is scored on the untouched original test images; \"robust\" accuracy is "
    "its accuracy under an L2 attack of the radius named.")
ROBUST_SOURCE_CLAIM = "robust-source-sets-teach-less"
TRANSFER_CLAIM = "d-det-learning-follows-transfer"
CLAIM_IDS = {"d_det": "d-det-generalizes", "d_rand": "d-rand-generalizes", "d_r": "d-r-gives-robustness",
             "d_nr": "d-nr-gives-no-robustness"}


def _with_interval(row: dict, key: str) -> str:
    value, interval = row.get(key), row.get(f"{key}_ci95")
    if value is None:
        return "—"
    if interval:  # a 0% stored as [0, 0] reads as certainty; its interval over the images scored
        interval = rate_interval(value, row.get("robust_n" if key.startswith("robust_") else "test_n") or 0, interval)
    # the interval's ends without their % signs: the column's name says they are percentages, and the table is narrower
    return f"{value:.1%}" + (f" [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]" if interval else "")


def beside_paper(ours: str, paper: Optional[float]) -> str:
    """Our number (as text) and, in the same cell, the paper's where it has one: beside it, without more columns
    (which ran the features tables off a laptop's page)."""
    return ours if paper is None else f"{ours} · paper {paper:.1%}"


def _with_paper(row: dict, key: str) -> str:
    return beside_paper(_with_interval(row, key), (row.get("paper") or {}).get(key))


def how_built(metric: dict) -> str:
    """A constructed set's build in words, from its metric: how often the targeted attack reached its target (and
    whether the set kept only those), or how far the representation matching brought the error down."""
    if "targeted_success_rate" in metric:
        return (f"target reached {metric['targeted_success_rate']:.1%}"
                + (" (kept those)" if "kept" in metric else ""))
    if "relative_representation_error" in metric:
        return (f"error {metric.get('relative_representation_error_at_start', float('nan')):.2f} → "
                f"{metric['relative_representation_error']:.2f}")
    return ""


def at_scale_block(dataset_key: str) -> Optional[dict]:
    """The `features` block of the world's study file, when the study at scale wrote it."""
    world = world_of(dataset_key, SCORECARD_WORLDS)
    study = cache.shipped_study(f"{world}-study") if world is not None else None
    block = (study or {}).get("features")
    return block if isinstance(block, dict) and "tier" in block and block.get("rows") else None


def render_at_scale(dataset_key: str, num_classes: int) -> bool:
    """The section, when the dataset's world ships a study at scale; True when it was drawn."""
    block = at_scale_block(dataset_key)
    if block is None:
        return False
    rows = block["rows"]
    radii = sorted({key.removeprefix("robust_accuracy_l2_") for row in rows for key in row
                    if key.startswith("robust_accuracy_l2_") and not key.endswith("_ci95")}, key=float)
    st.subheader("The study at scale")
    # two tables, so that neither is wider than a laptop's page: the scores beside the paper's, then how each set
    # was built
    table, built_table = [], []
    for row in rows:
        built = how_built(row.get("metric") or {}) if row.get("source") else "—"
        built_table.append({"set": SET_LABELS.get(row["set"], row["set"]), "N": f"{row['n_train']:,}",
                            "source model": row.get("source") or "— (original images)", "how it was built": built})
        table.append({"trained on": SET_LABELS.get(row["set"], row["set"]),  # N: in the table below
                      "test accuracy [95% CI]": _with_paper(row, "test_accuracy"),
                      **{f"robust, L2 {radius} [95% CI]": _with_paper(row, f"robust_accuracy_l2_{radius}")
                         for radius in radii},
                      "on (y + 1) mod C labels": _with_paper(row, "relabelled_test_accuracy")})
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"trained on": st.column_config.TextColumn(pinned=True)})
    st.dataframe(built_table, hide_index=True, column_config={"set": st.column_config.TextColumn(pinned=True)})
    first = rows[0]
    # each row names its source: a set rebuilt from a new source stands beside ones built from the old until rebuilt
    sources: dict[str, list[str]] = {}
    for row in rows:
        if row.get("source"):
            label = SET_LABELS.get(row["set"], row["set"]).replace(", robust source", " (robust source)")
            sources.setdefault(row["source"], []).append(label)
    st.caption(f"{block['tier'].upper()} tier (ran on {first.get('device', 'cpu')}): {block['architecture']} "
               f"(the paper: {block['paper_architecture']}); source models: "
               + "; ".join(f"{source} for {_and_list(sets)}" for source, sets in sources.items())
               + f". Each model scored on {first['test_n']:,} original test images "
               f"(robust accuracy on the first {first['robust_n']:,}, L2 PGD-20); intervals: 95%, over the test "
               "images (at 0%, the Wilson score interval: redraws at a rate of 0 cannot vary). "
               + ("After “paper” in a cell: the paper's number (CIFAR-10, ResNet-50, 50,000 images). "
                  if any(row.get("paper") for row in rows) else
                  "The paper's numbers are CIFAR-10's, so none stands beside this world's. ")
               + f"Computed by `{block['command']}` on {block['created']}.")
    _render_earlier_sources(block)
    planned = block.get("planned") or [kind for kind in SET_LABELS if kind not in ("d_det_robust", "d_rand_robust")]
    missing = [SET_LABELS.get(kind, kind) for kind in planned if kind not in {row["set"] for row in rows}]
    if missing:
        st.caption(f"Not in this table yet: {', '.join(missing)} (each stage's run resumes where it stopped; the "
                   "table grows as each one ends).")
    curve_rows = {row["set"]: row["error_curve"] for row in rows if row.get("error_curve")}
    if curve_rows:
        st.plotly_chart(curves({kind: list(zip(curve["steps"], curve["relative_error"]))
                                for kind, curve in curve_rows.items()}, SET_LABELS,
                               title="Representation error against steps (D̂_R / D̂_NR)", x_label="steps",
                               y_label="relative error ‖g(x_r) − g(x)‖ / ‖g(x)‖"),
                        width="stretch", key="features_scale_curve")
        st.caption("; ".join(f"{SET_LABELS[kind]}: {curve['steps_used']} steps used ({curve['n']} images measured)"
                             for kind, curve in curve_rows.items())
                   + f". Rule: {next(iter(curve_rows.values()))['rule']} (the paper: 1,000 steps). g is the source "
                     "model's penultimate-layer representation, x the image whose features are matched and x_r the "
                     "image being built.")
    accuracy = {row["set"]: row["test_accuracy"] for row in rows if row["set"] in KINDS.names()}
    claims = {claim.id: claim for claim in world_claims(dataset_key, CLAIM_IDS.values())}
    verdicts = {kind: claims[claim_id].verdict for kind, claim_id in CLAIM_IDS.items() if claim_id in claims}
    relabelled_accuracy = {row["set"]: row.get("relabelled_test_accuracy") for row in rows}
    takeaway = features_takeaway(accuracy, KINDS.labels(), num_classes, first["test_n"], verdicts=verdicts,
                                 relabelled_accuracy=relabelled_accuracy) if accuracy else ""
    listed = verdict_list(dataset_key, {SET_LABELS[kind]: CLAIM_IDS[kind] for kind in accuracy if kind in CLAIM_IDS})
    takeaway = "\n\n".join(part for part in (takeaway, listed) if part)
    relabelled = next((row["construction"] for row in rows if row["set"] in ("d_det", "d_rand")
                       and row.get("construction")), None)
    how = ("" if relabelled is None else
           f" (targeted L2 PGD at ε {relabelled['eps_l2']:g}, {relabelled['steps']} steps of "
           f"{relabelled['step_size']:g}; D̂_rand's targets never the true label)")
    explain(takeaway, f"The same experiment as below, run in the background at thousands of images{how}. Each row "
                      "is a fresh network trained only on that set and tested on the untouched original test images.")
    _render_construction_success(rows, ("d_det", "d_rand"), "standard", "features_scale_class_success")
    if relabelled is not None:
        _render_jpeg_control(block.get("jpeg_control"), relabelled["eps_l2"], rows)
        _render_source_transfer(block)
    robust_rows = [row for row in rows if row["set"] in ("d_det_robust", "d_rand_robust")]
    if robust_rows:
        metrics = [row.get("metric") or {} for row in robust_rows]
        kept_all = ""
        if all("kept" not in metric for metric in metrics):
            rates = [metric.get("targeted_success_rate") for metric in metrics]
            kept_all = (" As in the paper, these sets keep every attempt, relabelled with its target whether or not "
                        "the robust model reached it")
            kept_all += (f" (it did on {max(rates):.0%} at most, so for most images the robust model still names a "
                         "class other than the new label)." if all(rate is not None and rate < 0.5 for rate in rates)
                         else ".")
        explain(verdict_notes(dataset_key, [ROBUST_SOURCE_CLAIM]),
                "The control: the same relabelled sets built from the robust model. If the standard model's "
                "non-robust features are what D̂_det and D̂_rand carry, sets built from a model without them should "
                "teach much less of the true label (the paper, on CIFAR-10: D̂_rand "
                f"{PAPER_ROBUST_SOURCE['d_rand']['test_accuracy']:.1%} and D̂_det "
                f"{PAPER_ROBUST_SOURCE['d_det']['test_accuracy']:.1%} from the robust model, against "
                f"{PAPER_CIFAR10['d_rand']['test_accuracy']:.1%} and {PAPER_CIFAR10['d_det']['test_accuracy']:.1%} "
                "from the standard one)."
                + kept_all)
        _render_construction_success(rows, ("d_det_robust", "d_rand_robust"), "robust",
                                     "features_scale_class_success_robust")
    _render_transfer(block.get("transfer"), dataset_key, next((row for row in rows if row["set"] == "d_det"), None),
                     num_classes)
    return True


def _and_list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _render_earlier_sources(block: dict) -> None:
    """The sets a rebuild from another source model replaced, each beside its current row: the same construction
    from two sources (how often each source's attack reached its target, and what its set taught)."""
    current = {row["set"]: row for row in block["rows"]}
    pairs = [(old, current[old["set"]]) for old in block.get("earlier_source_rows") or () if old["set"] in current]
    if not pairs:
        return
    table = []
    for old, new in pairs:
        for row, when in ((new, "now"), (old, "earlier")):
            reached = (row.get("metric") or {}).get("targeted_success_rate")
            table.append({"set": SET_LABELS.get(row["set"], row["set"]), "source model": f"{row['source']} ({when})",
                          "target reached": "—" if reached is None else f"{reached:.1%}",
                          "N": f"{row['n_train']:,}", "test accuracy [95% CI]": _with_paper(row, "test_accuracy"),
                          "on (y + 1) mod C": ("—" if row.get("relabelled_test_accuracy") is None else
                                               f"{row['relabelled_test_accuracy']:.1%}")})
    st.markdown("**The same sets from an earlier source model**")
    st.dataframe(table, hide_index=True, width="stretch")
    replaced = dict.fromkeys(old["set"] for old, _ in pairs)
    st.caption(" ".join(f"{SET_LABELS.get(kind, kind)}: {said}" for kind in replaced
                        if (said := earlier_source_sentence(block, kind)))
               + " Each set is built by the same construction from the training images; only the source differs.")


def _render_construction_success(rows: list[dict], kinds: tuple[str, str], source_role: str, key: str) -> None:
    """Per true class, how often the `source_role` source's targeted attack reached its target while building the
    relabelled sets `kinds`: where the construction falls short, and so which images the sets lack."""
    series = {row["set"]: row for row in rows if row["set"] in kinds and row.get("targeted_success_by_class")}
    if not series:
        return
    construction = next(iter(series.values())).get("construction") or {}
    st.plotly_chart(class_success_bars({SET_LABELS[kind]: row["targeted_success_by_class"]
                                        for kind, row in series.items()}, goal=CONSTRUCTION_SUCCESS,
                                       title=f"Building the relabelled sets from the {source_role} model: where the "
                                             "targeted attack reached its target"), width="stretch", key=key)
    # only a set that kept the successes lacks the images that missed (the GPU tier keeps every attempt)
    kept_only = all("kept" in (row.get("metric") or {}) for row in series.values())
    parts = []
    for kind, row in series.items():
        classes = [entry for entry in row["targeted_success_by_class"] if entry["attempts"]]
        attempts, reached = sum(e["attempts"] for e in classes), sum(e["reached"] for e in classes)
        # the rate the scorecard reads, where the build recorded it (one number for one thing on the page)
        rate = (row.get("metric") or {}).get("targeted_success_rate", reached / attempts)
        lowest, highest = class_extremes(classes)
        at_goal = sum(e["rate"] >= CONSTRUCTION_SUCCESS for e in classes)
        largest = max(classes, key=lambda e: e["reached"])
        share = (f"; its largest class, {largest['source_class']}, is {largest['reached'] / reached:.0%} of the set "
                 f"(even: {1 / len(classes):.0%})" if kept_only and reached else "")
        parts.append(f"{SET_LABELS[kind]}: {reached:,} of {attempts:,} attempts ({rate:.1%}); "
                     f"{at_goal} of {len(classes)} classes at {CONSTRUCTION_SUCCESS:.0%} or more; lowest "
                     f"{lowest['rate']:.1%} ({class_pair(lowest)}), highest {highest['rate']:.1%} "
                     f"({class_pair(highest)}){share}")
    how = (f"targeted L2 PGD at ε {construction['eps_l2']:g}, {construction['steps']} steps"
           if construction else "the targeted attack")
    st.caption(f"Each bar: the share of the training images of that class that {how} moved to their target class "
               f"on the {source_role} source (whiskers: 95% intervals over the attempts). "
               + (f"The line marks the {CONSTRUCTION_SUCCESS:.0%} we set for the construction (our goal; the paper "
                  "keeps every attempt)" if source_role == "standard" else
                  f"The line marks the {CONSTRUCTION_SUCCESS:.0%} we set for the construction on the standard "
                  "source; on the robust one, falling short is the point of the control")
               + ("; the sets keep only the images that got there, so classes below the line have fewer images in "
                  "them. " if kept_only else "; the sets keep every attempt, reached or not. ")
               + "; ".join(parts) + ".")


def _render_jpeg_control(control: Optional[dict], eps: float, rows: list[dict]) -> None:
    """The JPEG control, when it ran: the source's network trained on the exact pixels of the same images and on their
    JPEG re-encoding, each attacked as D̂_det's construction attacks (is the shortfall the data's?); then each
    trained set's model scored on the exact pixels of test images against their copy. Either part alone, where only
    it ran (the D̂_det verdict's evidence is these, shown here only)."""
    if not control:
        return
    if sentence := jpeg_control_sentence(control, eps):
        det = next((row for row in rows if row["set"] == "d_det"), {})
        success = (det.get("metric") or {}).get("targeted_success_rate")
        _render_jpeg_arms(control, eps, sentence, short=success is not None and success < CONSTRUCTION_SUCCESS)
    scored, stale = current_test_pixels(control, rows)
    if scored:
        st.dataframe([{"model trained on": SET_LABELS.get(kind, kind),
                       "exact pixels [95% CI]": f"{row['exact']:.1%} [{row['exact_ci95'][0]:.1%}, "
                                                f"{row['exact_ci95'][1]:.1%}]",
                       "JPEG copy [95% CI]": f"{row['copy']:.1%} [{row['copy_ci95'][0]:.1%}, "
                                             f"{row['copy_ci95'][1]:.1%}]",
                       "exact − copy [95% CI]": f"{row['exact_minus_copy'] * 100:+.1f} "
                                                f"[{row['exact_minus_copy_ci95'][0] * 100:+.1f}, "
                                                f"{row['exact_minus_copy_ci95'][1] * 100:+.1f}] points",
                       "all test images (its row)": f"{row['whole_test_accuracy']:.1%} "
                                                    f"({_row_accuracy(rows, kind)})"}
                      for kind, row in scored.items()], hide_index=True, width="stretch")
        d_det = exact_pixels_sentence(control, "d_det", rows)
        skipped = [SET_LABELS.get(kind, kind) for kind in control.get("test_pixels_not_scored") or ()]
        rebuilt = [SET_LABELS.get(kind, kind) for kind in stale]
        st.caption(f"The test images are the JPEG copy too. The same {next(iter(scored.values()))['n']:,} test images, "
                   "each model scored on their exact pixels and on the copy, paired by image (the last column: the "
                   "reloaded model on the whole test split, beside its row's score)"
                   + (f"; D̂_det's model: {d_det}" if d_det else "")
                   + (f". Not scored (their weights are not on this machine): {', '.join(skipped)}" if skipped
                      else "")
                   + (f". Left out: {'; '.join(rebuilt)}, scored before "
                      + ("its set was" if len(rebuilt) == 1 else "their sets were")
                      + " rebuilt (each reloaded model's accuracy on all test images lies outside its row's "
                        "interval, so it is not that row's model)." if rebuilt else "."))


def _render_source_transfer(block: dict) -> None:
    """Each measured source's targeted examples (D̂_det's construction, on held-out test images) shown to one second
    network: how often the source moves itself to the target, how often the same images move the other network
    there, and what the source's D̂_det taught where it built one (the D̂_det verdict's evidence, shown here only)."""
    compared = source_transfer_compared(block)  # one second network, as the sentence compares
    if not compared:
        return
    measured = sorted(compared, key=lambda entry: entry["targeted_success"])
    taught = {row["source"]: f"{row['test_accuracy']:.1%} (N {row['n_train']:,})"
              for row in (*block.get("earlier_source_rows", ()), *block["rows"])
              if row["set"] == "d_det" and row.get("source")}

    def rate(value: float, ci95) -> str:
        return f"{value:.1%} [{ci95[0]:.1%}, {ci95[1]:.1%}]"

    st.markdown("**Do the source's examples move another network?**")
    st.dataframe([{"source model": entry["source"],
                   "target reached on itself [95% CI]": rate(entry["targeted_success"], entry["targeted_success_ci95"]),
                   "on the second network [95% CI]": rate(entry["transfer"]["targeted"],
                                                          entry["transfer"]["targeted_ci95"]),
                   "misleads it [95% CI]": rate(entry["transfer"]["fooled"], entry["transfer"]["fooled_ci95"]),
                   "images counted": f"{entry['transfer']['counted']:,}",
                   "its D̂_det taught": taught.get(entry["source"], "—")}
                  for entry in measured], hide_index=True, width="stretch")
    st.caption(f"{source_transfer_sentence(block)} Why it is measured: D̂_det can teach the true labels only through "
               "features that other networks read too.")


def _render_jpeg_arms(control: dict, eps: float, sentence: str, short: bool) -> None:
    """The control's two arms, exact pixels against their JPEG re-encoding, at the construction's radius (`short`:
    D̂_det's source fell short of the construction's goal, which the control then helps explain)."""
    radius = f"{eps:g}"
    labels = {"exact": "exact pixels", "jpeg": f"JPEG, quality {control['config']['quality']}"}
    table = []
    for pixels, arm in control["summary"]["arms"].items():
        success = arm["targeted_success"][radius]
        table.append({"trained on": f"{arm['n_train']:,} training images, {labels[pixels]}",
                      "networks (seeds)": len(arm["seeds"]),
                      "clean accuracy, same test images": f"{arm['test_accuracy']:.1%} of {arm['test_n']:,}",
                      f"target reached at ε {radius} [95% CI]": f"{success['rate']:.1%} [{success['ci95'][0]:.1%}, "
                                                                 f"{success['ci95'][1]:.1%}]",
                      "each network": ", ".join(f"{rate:.1%}" for rate in
                                                (arm.get("targeted_success_by_seed") or {}).get(radius, ()))})
    st.markdown("**Why the construction falls short: the source's training data**" if short else
                f"**The source's training data: exact pixels against their JPEG copy** ({control['config']['epochs']} "
                f"epochs of {control['config']['architecture']}, {control['config']['augment']})")
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption(f"The only full CIFAR-10 training split here is a JPEG copy (quality about 75), and JPEG drops fine "
               f"detail, where a standard network may find non-robust features. A control: {sentence}. Each network "
               f"is attacked on the same training images, in its own pixels, by the construction's targeted L2 PGD "
               f"({control['config']['steps']} steps of {control['config']['step_size']:g}, target (y + 1) mod C); "
               f"intervals: bootstrap over the attacked images. PIL's re-encoding is "
               f"{control['reencoding_error_to_copy']:.2f}/255 per pixel from the copy (the exact pixels: "
               f"{control['reencoding_error_to_exact']:.2f}/255). Computed by `{control['command']}`.")


def _row_accuracy(rows: list[dict], kind: str) -> str:
    row = next((row for row in rows if row["set"] == kind), None)
    return "—" if row is None else f"{row['test_accuracy']:.1%}"


def _apart_from_the_table(transfer: dict, means: list[dict], det_row: Optional[dict]) -> str:
    """Why the study's own architecture scores differently on D̂_det in the scatter than in the table above: its
    copies here train apart, each difference in how read from the two saved runs (else nothing)."""
    training = (det_row or {}).get("training") or {}
    point = next((p for p in means if p["architecture"] == training.get("architecture")), None)
    if point is None:
        return ""
    if transfer_built_from_another_source(transfer, det_row):
        # the set was rebuilt from another source after this study ran: not the same images, let alone the recipe
        return (f" These copies trained on the D̂_det set built from {transfer['source']}, which the table's D̂_det "
                f"row, built from {det_row['source']}, has since replaced; so {point['architecture']}'s point here, "
                f"{point['accuracy_from_det']:.1%}, is not comparable with the table's D̂_det score, "
                f"{det_row['test_accuracy']:.1%}.")
    settings = transfer_settings(transfer)  # the transfer copies train without augmentation
    decay, epochs = training.get("weight_decay") or 0.0, training.get("epochs")
    differs = [f"on the first {transfer['n_train']:,} of its {det_row['n_train']:,} images"
               if det_row["n_train"] != transfer["n_train"] else f"on {transfer['n_train']:,} of its images",
               *([("without weight decay" if not settings["weight_decay"] else
                   f"with weight decay {settings['weight_decay']:g}") + f" (the table's: {decay:g})"]
                 if decay != settings["weight_decay"] else []),
               *([f"for {settings['epochs']} epochs (the table's: {epochs})"]
                 if epochs is not None and epochs != settings["epochs"] else []),
               *(["without augmentation (the table's: " + training["augment"] + ")"]
                 if training.get("augment", "none") != "none" else [])]
    return (f" These copies train apart from the table above: {', '.join(differs)}; so "
            f"{point['architecture']}'s point here, {point['accuracy_from_det']:.1%}, is not the table's D̂_det "
            f"score, {det_row['test_accuracy']:.1%}.")


def _render_transfer(transfer: Optional[dict], dataset_key: str, det_row: Optional[dict], num_classes: int) -> None:
    """The transfer study at scale (the paper's Figure 3), when it ran; `det_row` is the table's D̂_det row."""
    if not transfer or not transfer.get("points"):
        return
    runs = transfer_runs(transfer)
    means = seed_mean_points(runs)
    each = {run["seed"]: run["points"] for run in runs} if len(runs) > 1 else {}
    st.plotly_chart(transfer_scatter(means, title=f"Transfer from {transfer['source']}, at scale",
                                     seeds=each, chance=1 / num_classes), width="stretch",
                    key="features_scale_transfer")
    seeds = (f" Filled and labelled: the mean of training seeds {', '.join(str(seed) for seed in each)}; hollow: "
             "each seed's own point (the verdict reads the mean, and each seed alone for a full reproduction)."
             if each else "")
    attack = transfer_attack_label(transfer)
    st.caption(f"Each architecture trained for {transfer['config']['epochs']} epochs on the first "
               f"{transfer['n_train']:,} images of D̂_det (x: accuracy on {transfer['test_n']:,} original test images) "
               f"and, apart, on the same source images with their true labels (y: how often {attack} "
               f"examples of the source fool it, on the first {transfer['config']['attack_n']:,} test images both "
               f"classify correctly).{seeds}{_apart_from_the_table(transfer, means, det_row)} The paper (Figure 3): "
               "VGG-16, Inception-v3, ResNet-18, DenseNet and ResNet-50 trained on D̂_det from a standard ResNet-50, "
               "a rising trend.")
    by_radius = transfer_by_radius(runs)
    if any(len(curve) > 1 for curve in by_radius.values()):
        figure = curves(by_radius, {}, title="Transfer success against the attack's radius",
                        x_label="L2 radius of the source's attack", y_label="transfer success")
        st.plotly_chart(figure.update_layout(yaxis_tickformat=".0%"), width="stretch",
                        key="features_scale_transfer_radius")
        st.caption(f"The same untargeted attack of the source at more radii, scored on each architecture's standard "
                   f"model (mean of {len(runs)} training seed{'s' if len(runs) > 1 else ''}). The study's point uses "
                   f"ε {transfer['config']['attack_eps_l2']:g}, where the transfer axis of the paper's Figure 3 spans "
                   f"roughly 60–100% (paper); this shows how our rates grow with the attack's size. Larger radii "
                   f"change the images more "
                   f"visibly, and the paper's source and architectures differ from ours too.")
    # the trend's verdict, or why none is drawn (too few architectures), from the scorecard
    verdict, evidence = verdict_and_evidence(dataset_key, TRANSFER_CLAIM)
    explain(verdict, "Each dot is one network architecture. Across: how much it learned from D̂_det, whose labels "
            "look wrong to a person (its accuracy on the true test labels). Up: how often the source model's "
            "adversarial examples also fool a copy of it trained normally. The paper's finding is a rising trend: "
            "an architecture that picks up the source's non-robust features is both fooled by its attacks and able "
            "to learn from D̂_det. Kendall τ says how well the two orderings of the dots agree (+1 the same order, "
            "0 unrelated, −1 reversed); p is the share of all orderings of the dots that agree at least as well by "
            "chance, and our rule asks for p below 0.05."
            + (f"\n\n**The numbers behind the verdict.** {evidence}" if evidence else ""))
