"""One sentence of takeaway per result, computed from the numbers on screen, in plain words for a demo or a lesson.

Pure functions of numbers and report rows (no Streamlit), so a page, a report and a test can all call them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Collection, Mapping, Optional, Sequence

from sia_core.attacks import radius_label

if TYPE_CHECKING:
    from sia_core.regions.neutralization import NeutralizationRow
    from sia_core.robustify import MethodSummary, TransferRow

SSIM_FLOOR = 0.9  # "looks like the original": the bar the claims scorecard holds the semantic attack to
SMALL_SAMPLE = 20  # fewer successful attacks than this: a ranking of attributes is said to be a glimpse
ROBUST_MODEL_LINE = 0.20  # a zoo model counts as robust when it keeps this share of images under the zoo's attack
PIXEL_ADVERSARIAL_RECIPES = ("pgd", "fgsm-rs", "pgd-l2", "trades")  # adversarial training on pixel attacks


def _percent(value: float) -> str:
    return f"{value:.0%}"


def confidence_percent(probability: float) -> str:
    """A model's confidence in whole percents, never a certainty: 0.9996 (or a saturated 1.0) reads ">99%", not
    "100%" (a wrong answer at "100%" reads as if the model could not be wrong)."""
    if probability >= 0.995:  # a float32 softmax saturates to exactly 1.0: still not a certainty
        return ">99%"
    if probability < 0.005:
        return "<1%"
    return f"{probability:.0%}"


def strength(tau: float) -> str:
    """How closely a Kendall τ ties two rankings, in words."""
    return "closely" if tau >= 0.7 else "moderately" if tau >= 0.4 else "weakly" if tau >= 0.15 else "hardly"


def listed(items: Sequence[str]) -> str:
    """Items as a sentence lists them: "A", "A and B", "A, B and C"."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def leading_attributes(dominance: Mapping[str, float]) -> list[str]:
    """The attributes that moved furthest in the most successful attacks: more than one where they tie, none where
    no attack succeeded."""
    top = max(dominance.values(), default=0.0)
    return [name for name, share in dominance.items() if share > 0 and abs(share - top) < 1e-6]


def diagnosis_takeaway(dominance: Mapping[str, float], success_rate: Mapping[str, float],
                       labels: Mapping[str, str], successes: Optional[int] = None) -> str:
    """Which attribute leads the successful joint attacks (attributes that tie share the lead), out of how many
    successes where `successes` is given, and how the attack compares with pixels alone."""
    if not dominance or max(dominance.values()) <= 0:
        return "No joint attack succeeded at this budget: no attribute breaks this model here."
    leaders = leading_attributes(dominance)
    share = dominance[leaders[0]]
    count = ("" if successes is None else
             f" ({round(share * successes)} of {successes})")
    named = listed([labels.get(name, name) for name in leaders])
    sentence = ((f"{named} leads the joint attack: it is the attribute that moved furthest in " if len(leaders) == 1
                 else f"{named} share the lead of the joint attack: each is the attribute that moved furthest in ")
                + f"{_percent(share)}{count} of the successful attacks (one attribute at a time, the ranking can "
                "differ: that is the sensitivity histogram).")
    if successes is not None and successes < SMALL_SAMPLE:
        sentence += (f" With {successes} successful attack{'s' if successes != 1 else ''}, this ranking is a glimpse, "
                     "not a finding: more images give it weight.")
    if "sia" in success_rate and "pgd" in success_rate:
        sentence += (f" With the attributes the attack succeeds on {_percent(success_rate['sia'])} of the images, "
                     f"against {_percent(success_rate['pgd'])} for pixels alone at the same pixel budget (the "
                     "attribute edits come on top of it: the comparison at a matched perceptual budget is below).")
    return sentence


def attack_takeaway(outcome: str, clean_class: str, adversarial_class: str, top_attribute: Optional[str],
                    survives_rounding: bool, ssim: float, *, steps: Optional[int] = None,
                    first_flip_step: int = -1, target_class: Optional[str] = None) -> str:
    """What one attack did (`outcome`: "succeeded", "failed" or "already-fooled", `AttackResult.outcome`); the edit
    is called close to the original only at SSIM >= SSIM_FLOOR (the bar the claims scorecard holds SIA to), and a
    visible change otherwise. A failed attack that won on the way (`first_flip_step` >= 0: the label left, or
    `target_class` reached) says so: the search keeps where its path ends, not where it first won; one that never
    did says what was searched, since `steps` steps finding nothing does not show that nothing exists."""
    if outcome == "already-fooled":
        return (f"The model already calls this image {clean_class}, which is not its label: there is nothing for an "
                "attack to do. Pick an image it gets right.")
    if outcome != "succeeded":
        won = f"reached its target, {target_class}," if target_class else "fooled the model"
        if first_flip_step >= 0:
            return (f"The attack {won} at step {first_flip_step}, but the image where its path ends is "
                    f"{adversarial_class}. Tick *Stop at the first flip* to keep the image that "
                    + ("reached it." if target_class else "fooled it."))
        searched = f"this {steps}-step search" if steps else "this search"
        if target_class:  # a targeted search that missed may still have left the label: say where it ended
            return (f"The attack did not reach {target_class}: {searched} found no mix of these attributes within "
                    f"their ranges that does, and the image where its path ends is {adversarial_class}. More steps "
                    "or a larger pixel budget may still find one.")
        return (f"The model held on to {clean_class}: {searched} found no mix of these attributes within their "
                "ranges that fools it. More steps or a larger pixel budget may still find one.")
    how = f", mostly through {top_attribute} (the attribute that went furthest across its range)" if top_attribute \
        else ""
    saved = "and it still works once saved as a PNG" if survives_rounding else "but 8-bit rounding (a PNG) undoes it"
    kind = (f"An edit that stays close to the original (SSIM {ssim:.2f})" if ssim >= SSIM_FLOOR else
            f"A visible edit (SSIM {ssim:.2f} to the original, below the {SSIM_FLOOR} a look-alike keeps)")
    return f"{kind}{how} turns {clean_class} into {adversarial_class}, {saved}."


def overlap_takeaway(iou: float, energy_in_roi: float, fraction: Optional[float] = None) -> str:
    """Where one attack acts against where the model looks; with `fraction` (q, the regions' share of the image)
    beside what chance gives: an attack blind to the region puts q of its effect there, and two random regions of
    that size overlap with IoU q / (2 - q). An attack can put most of its effect outside the region and still lean
    toward it (more than q inside): the sentence says both, so the two numbers never seem to point opposite ways."""
    if fraction is None:
        where = "mostly where the model looks" if energy_in_roi >= 0.5 else "mostly outside where the model looks"
        return (f"The attack changes pixels {where}: {_percent(energy_in_roi)} of its effect lies in the region of "
                f"importance, and the two regions overlap with IoU {iou:.2f}.")
    inside, covers = _percent(energy_in_roi), _percent(fraction)
    if energy_in_roi >= 0.5:
        lead = (f"The attack changes pixels mostly where the model looks: {inside} of its effect lies in the region "
                f"of importance, which covers {covers} of the image (an attack blind to it would put {covers} there)")
    elif energy_in_roi > fraction:
        lead = (f"Most of the attack's effect ({_percent(1 - energy_in_roi)}) lies outside where the model looks, yet "
                f"it leans toward that region: {inside} lies in the region of importance, which covers {covers} of "
                f"the image, so more than an attack blind to it would put there")
    else:
        lead = (f"The attack changes pixels mostly outside where the model looks, no more than an attack blind to "
                f"it would: {inside} of its effect lies in the region of importance, which covers {covers} of the "
                "image")
    from sia_core.regions.overlap import random_regions_iou

    # compared as printed (two decimals), so the words never contradict the numbers beside them
    shown, chance = round(iou, 2), round(random_regions_iou(fraction), 2)
    relation = "more than" if shown > chance else "less than" if shown < chance else "as much as"
    return (f"{lead}; the two regions overlap with IoU {shown:.2f}, {relation} two random regions of that size "
            f"({chance:.2f})" + (", and far from the 1.00 of one region." if shown < 0.5 else "."))


# the oracle needs each image's own attack; the random masks are controls (neutralization.RANDOM_CONTROLS)
NOT_DEPLOYABLE = ("oracle", "random", "random_q")


def neutralization_takeaway(rows: Sequence[NeutralizationRow], labels: Mapping[str, str], n: int) -> str:
    """The deployable mask that recovers most adversarial accuracy, judged against the random mask of its area
    by the claims scorecard's rule (the gain's 95% interval must clear zero), and what an attacker who knows it
    does."""
    from sia_core.claims import gain_verdict, mask_gain_ci

    deployable = [row for row in rows if row.mask not in NOT_DEPLOYABLE]
    if not deployable:
        return ""
    best = max(deployable, key=lambda row: row.adversarial_accuracy_after)
    name = labels.get(best.mask, best.mask)
    sentence = (f"Blanking the {name.lower()} ({_percent(best.mean_area)} of the pixels) lifts accuracy on attacked "
                f"images from {_percent(best.adversarial_accuracy_before)} to {_percent(best.adversarial_accuracy_after)}"
                f", at a cost of {100 * (best.clean_accuracy_before - best.clean_accuracy_after):.1f} points of "
                "clean accuracy")
    from sia_core.regions.neutralization import random_control

    control = random_control(rows, best.mask)
    if control is not None:
        ci95 = mask_gain_ci(best, control, n)
        random_mask = f"a random mask of {_percent(control.mean_area)} of the pixels"
        if gain_verdict(ci95) == "reproduces":
            sentence += f", better than {random_mask} ({_percent(control.adversarial_accuracy_after)})"
        else:
            # the control's side in the interval's words: better where the whole interval is below zero; "as well"
            # where it reaches zero with the control ahead; "no reliable difference" where it reaches zero below it
            interval = f"95% interval [{ci95[0] * 100:+.0f}, {ci95[1] * 100:+.0f}] points"
            if ci95[1] < 0:
                sentence += (f"; {random_mask} does better ({_percent(control.adversarial_accuracy_after)}, the "
                             f"difference's {interval})")
            elif control.adversarial_accuracy_after >= best.adversarial_accuracy_after:
                sentence += (f"; {random_mask} does as well ({_percent(control.adversarial_accuracy_after)}, the "
                             f"difference's {interval} reaches zero)")
            else:
                sentence += (f"; {random_mask} scores {_percent(control.adversarial_accuracy_after)}, lower but with "
                             f"no reliable difference (the difference's {interval} reaches zero)")
            sentence += ", so neutralization does not reproduce here as a defense"
    return sentence + f"; an attacker who knows the mask brings it back to {_percent(best.adaptive_accuracy)}."


FEW_BRITTLE_INPUTS = 30  # our line: below it, one misranked input moves the AUROC by more than 0.03


def margins_takeaway(model: str, kendall_tau: float, auroc: float, non_robust_share: float,
                     n: Optional[int] = None, eps: Optional[float] = None, norm: Optional[str] = None,
                     tau_interval: Optional[tuple[float, float]] = None) -> str:
    """How the free logit margin ranks and flags inputs; `n` and `eps` name the sample and radius, so two numbers of
    one model from different studies (the zoo's 1,000 images, the page's N) can be told apart. An L∞ radius (`norm`
    "linf") is written in 255ths, as the page's slider sets it. Where τ's 95% interval (`tau_interval`) reaches
    zero, no strength of the tie is claimed: the sample cannot tell it from no relation."""
    on = f" on {n:,} images" if n else ""
    radius = "ε" if eps is None else radius_label(eps, norm) if norm in ("linf", "l2") else f"ε = {eps:.3g}"
    low, high = tau_interval if tau_interval is not None else (math.nan, math.nan)
    if math.isfinite(low) and math.isfinite(high) and low <= 0 <= high:
        ranks = (f"For {model}{on}, Kendall τ between the free logit margin and the distance to the decision "
                 f"boundary is {kendall_tau:.2f}, but its 95% interval [{low:.2f}, {high:.2f}] reaches zero: this "
                 "sample cannot tell the two rankings' agreement from none (more images would)")
    elif math.isfinite(high) and high < 0:
        ranks = (f"For {model}{on}, the free logit margin ranks inputs against their distance to the decision "
                 f"boundary (Kendall τ = {kendall_tau:.2f}, 95% interval [{low:.2f}, {high:.2f}], wholly below zero)")
    else:
        ranks = (f"For {model}{on}, the free logit margin ranks inputs {strength(kendall_tau)} like their distance to "
                 f"the decision boundary (Kendall τ = {kendall_tau:.2f})")
    if not math.isfinite(auroc):  # every input breaks within ε, or none does: nothing to detect
        return ranks + (f"; at this ε {_percent(non_robust_share)} of the inputs break, so there is no brittle-input "
                        "detection to score (choose another ε).")
    # the count of brittle inputs beside their share: an AUROC read off a handful of them is a rough figure
    brittle = round(non_robust_share * n) if n else None
    count = f" ({brittle:,} of {n:,})" if brittle is not None else ""
    few = (f"; with only {brittle} brittle inputs that AUROC is a rough figure" if brittle is not None
           and brittle < FEW_BRITTLE_INPUTS else "")
    return (ranks + f", and flags the {_percent(non_robust_share)} of inputs{count} that an attack within {radius} "
            f"breaks with AUROC {auroc:.2f}, without running any attack{few}.")


def features_takeaway(test_accuracy: Mapping[str, float], labels: Mapping[str, str], num_classes: int,
                      test_n: int, verdicts: Optional[Mapping[str, str]] = None,
                      relabelled_accuracy: Optional[Mapping[str, Optional[float]]] = None,
                      decided_elsewhere: Collection[str] = ()) -> str:
    """One sentence per set whose labels look wrong to a person (D̂_det, then D̂_rand), judged by the claims
    scorecard's rule: its accuracy's 95% interval (over the `test_n` test images) must lie above chance. `verdicts`
    (kind -> the scorecard's verdict on the shipped study, which may weigh more than this rule) overrides the rule's;
    for the kinds in `decided_elsewhere` (the study at scale holds their verdict) the sentence describes this run and
    draws no verdict on the paper. `relabelled_accuracy` (kind -> accuracy on the (y + 1) mod C labels) says what a
    model below chance learned instead."""
    from sia_core.claims import gain_verdict, proportion_ci

    mislabelled = [kind for kind in ("d_det", "d_rand") if kind in test_accuracy]
    if not mislabelled:
        best = max(test_accuracy, key=test_accuracy.__getitem__)
        return (f"A fresh model trained on {labels.get(best, best)} reaches {_percent(test_accuracy[best])} on the "
                "original test images.")
    chance = 1 / num_classes
    sentences = []
    for kind in mislabelled:
        accuracy = test_accuracy[kind]
        ci95 = proportion_ci(accuracy, test_n)
        sentence = (f"Trained only on {labels.get(kind, kind)}, whose labels look wrong to a person, a fresh model "
                    f"scores {accuracy:.1%} on the original test images (95% interval [{ci95[0]:.1%}, "
                    f"{ci95[1]:.1%}]; chance: {_percent(chance)})")  # one decimal, as the tables
        above = ci95[0] > chance
        # wholly below chance is a finding of its own: the model learned something that points away from the truth
        side = "below chance" if ci95[1] < chance else "not above chance"
        relabelled = (relabelled_accuracy or {}).get(kind)
        learned_instead = ("" if relabelled is None or relabelled <= accuracy else
                           f", and {_percent(relabelled)} on the (y + 1) mod C labels: it learned the relabelling, "
                           "which the images' robust features teach")
        if kind in decided_elsewhere:
            sentences.append(sentence + (": above chance in this run" if above else
                                         f": {side} in this run{learned_instead}")
                             + "; the study at scale above holds the verdict.")
            continue
        verdict = (verdicts or {}).get(kind) or gain_verdict(ci95, above=chance)
        if verdict == "reproduces":
            sentences.append(sentence + ": the features the attack added carry the label.")
        elif above:  # above chance by the interval, yet the scorecard weighs more (its why follows)
            sentences.append(sentence + (": above chance, but the paper's result only partly reproduces here."
                                         if verdict == "partly" else
                                         ": above chance, but the paper's result does not reproduce here."))
        else:
            sentences.append(sentence + f": {side}{learned_instead}, so the paper's result does not "
                                        "reproduce in this run.")
    return " ".join(sentences)


def perceptual_takeaway(success_at_floor: Mapping[str, float], mean_ssim: Mapping[str, Optional[float]],
                        labels: Mapping[str, str], floor: float,
                        difference: Optional[tuple[float, tuple[float, float]]] = None, *,
                        aligned: bool = False) -> str:
    """How much of the joint attack's success survives an SSIM floor, against pixels alone; with `difference` (the
    joint attack's share minus PGD's and its 95% interval) the verdict of the claims scorecard's rule. `aligned`:
    every SSIM here was measured after undoing the attack's turns, shifts and zoom, and the sentence says so."""
    if "sia" not in success_at_floor:
        return ""
    undone = " (each attack's geometry undone)" if aligned else ""
    sentence = (f"Counting only images with SSIM ≥ {floor:.2f} to their original{undone}, the joint attack still "
                f"fools {_percent(success_at_floor['sia'])} of the images")
    if "pgd" in success_at_floor:
        sentence += f" ({labels.get('pgd', 'pgd')}: {_percent(success_at_floor['pgd'])})"
    sentence += "."
    if mean_ssim.get("sia") is not None:
        sentence += f" Its successful images keep a mean SSIM of {mean_ssim['sia']:.2f}."
    if difference is not None:
        gain, (low, high) = difference
        sentence += (f" At this perceptual budget SIA {'beats' if low > 0 else 'does not beat'} pixels alone "
                     f"({gain * 100:+.1f} points, 95% interval [{low * 100:+.1f}, {high * 100:+.1f}])"
                     + ("." if low > 0 else ": the claim that SIA is the stronger attack does not reproduce here."))
    return sentence


def transfer_takeaway(rows: Sequence[TransferRow], unseen: Sequence[str], labels: Mapping[str, str],
                      n: Optional[int] = None) -> str:
    """Rows of a transfer table: does SIA training beat standard training on the attacks it never trained on
    (`unseen`), and does the attack beat its random-attribute control? With `n` (the images each rate is over) the
    control's difference gets its 95% interval and a word only where that interval clears zero."""
    by_recipe = {row.recipe: row for row in rows}
    sia, standard = by_recipe.get("sia"), by_recipe.get("standard")
    if sia is None or standard is None or not unseen:
        return ""

    def accuracy(row: TransferRow, column: str) -> float:
        return row.cells[column].robust_accuracy

    gains = {column: accuracy(sia, column) - accuracy(standard, column) for column in unseen}
    better = [labels.get(column, column) for column, gain in gains.items() if gain > 0.01]
    mean_gain = sum(gains.values()) / len(gains)
    sentence = (f"SIA training beats standard training on {len(better)} of the {len(gains)} pixel attacks it never "
                f"trained on ({', '.join(better) or 'none'}; {mean_gain * 100:+.1f} points on average)")
    control = by_recipe.get("random-attributes")
    if control is not None and "sia" in sia.cells and "sia" in control.cells:
        difference = accuracy(sia, "sia") - accuracy(control, "sia")
        sentence += (f", and it holds {difference * 100:+.1f} points against SIA itself compared with the same "
                     "attributes drawn at random")
        if n:
            from sia_core.claims import proportion_difference_ci

            low, high = proportion_difference_ci(accuracy(sia, "sia"), n, accuracy(control, "sia"), n)
            sentence += (f" (95% interval [{low * 100:+.1f}, {high * 100:+.1f}]"
                         + ("" if low > 0 or high < 0 else ", which reaches zero: no difference shown") + ")")
    pixel = next((by_recipe[recipe] for recipe in PIXEL_ADVERSARIAL_RECIPES if recipe in by_recipe), None)
    if pixel is not None:
        pixel_wins = sum(accuracy(pixel, column) > accuracy(sia, column) for column in unseen)
        sentence += (f"; pixel adversarial training ({pixel.model}, {pixel.recipe}) is stronger than SIA training on "
                     f"{pixel_wins} of those {len(gains)}")
    return sentence + "."


def imbalance_takeaway(summary: Sequence[MethodSummary], labels: Mapping[str, str], *, with_gap: bool = True) -> str:
    """Rows of the imbalance study's summary: the best method on balanced accuracy, and where SIA augmentation
    stands against the best other method (means ± std over seeds); `with_gap` False leaves SIA's gap to a verdict
    that follows and states it with its interval."""
    if not summary:
        return ""
    best = max(summary, key=lambda row: row.balanced_accuracy_mean)
    if best.seeds < 2:  # no spread measured: the numbers, and no ranking drawn from them
        return (f"On one seed, {labels.get(best.method, best.method)} scores highest: "
                f"{best.balanced_accuracy_mean:.1%} balanced accuracy, {best.minority_accuracy_mean:.1%} on the "
                "minority classes. One seed measures no spread, so this is a glimpse, not a ranking: run 3 seeds to "
                "see whether the order holds.")
    sentence = (f"{labels.get(best.method, best.method)} balances best: {best.balanced_accuracy_mean:.1%} ± "
                f"{best.balanced_accuracy_std:.1%} balanced accuracy, {best.minority_accuracy_mean:.1%} on the minority "
                "classes")
    sia = next((row for row in summary if row.method == "sia"), None)
    others = [row for row in summary if row.method != "sia"]
    if sia is None or not others or not with_gap:
        return sentence + "."
    if best is not sia:
        sentence += f"; SIA augmentation is {(best.balanced_accuracy_mean - sia.balanced_accuracy_mean) * 100:.1f} points behind it"
    else:
        runner = max(others, key=lambda row: row.balanced_accuracy_mean)
        gap = sia.balanced_accuracy_mean - runner.balanced_accuracy_mean
        sentence += (f", {gap * 100:.1f} points ahead of {labels.get(runner.method, runner.method)} "
                     f"(the spread over seeds is ±{sia.balanced_accuracy_std * 100:.1f})")
    return sentence + "."


def zoo_takeaway(models: int, least_consistent: str, tau_before: float, tau_after: float, tau_range: tuple[float, float],
                 estimate_error_at: tuple[int, float], robust_models: Optional[int] = None) -> str:
    """What the zoo says: how consistent the models are, the weakest one and what the pseudo-margin does for it,
    and how few attacked images the estimate needs (its error averaged over the `robust_models` robust ones where
    given, as the claim judges it: on a model no attack leaves robust an estimate near zero is right for free)."""
    size, error = estimate_error_at
    over = ("" if robust_models is None else
            f" over the {robust_models} robust model{'s' if robust_models != 1 else ''} (at least "
            f"{ROBUST_MODEL_LINE:.0%} robust accuracy)")
    # one fit either way, without an interval: the sentence reports the number and draws no verdict from it
    change = ("" if tau_after > tau_before + 0.02 else ", about the same" if tau_after > tau_before - 0.02 else
              ", lower")
    rescue = (f"the learned pseudo-margin gives τ = {tau_after:.2f} on it{change} (one fit, without an interval, so "
              "not a verdict)")
    return (f"Across {models} models, Kendall τ runs from {tau_range[0]:.2f} to {tau_range[1]:.2f}. The least "
            f"consistent is {least_consistent} (τ = {tau_before:.2f}); {rescue}. Attacking only {size} images and "
            f"reading the rest off the logit margin estimates robust accuracy within {error * 100:.1f} points on "
            f"average{over}.")
