"""The takeaway sentences say what the numbers say: the right leader, the right direction, the right strength."""

from __future__ import annotations

from sia_core.regions.neutralization import NeutralizationRow
from sia_core.takeaways import (attack_takeaway, diagnosis_takeaway, features_takeaway, margins_takeaway,
                                neutralization_takeaway, overlap_takeaway, perceptual_takeaway, strength)


def test_diagnosis_names_the_dominant_attribute_and_compares_with_pixels():
    text = diagnosis_takeaway({"hue": 0.61, "brightness": 0.3, "rotation": 0.09}, {"sia": 0.9, "pgd": 0.4},
                              {"hue": "Hue shift"})
    assert text.startswith("Hue shift leads the joint attack: it is the attribute that moved furthest in 61%")
    assert "succeeds on 90%" in text and "40% for pixels alone" in text
    assert "No joint attack succeeded" in diagnosis_takeaway({"hue": 0.0}, {}, {})


def test_diagnosis_names_every_attribute_that_ties_for_the_lead_and_counts_few_successes():
    tied = diagnosis_takeaway({"shift_y": 2 / 6, "contrast": 2 / 6, "zoom": 1 / 6, "hue": 1 / 6}, {},
                              {"shift_y": "Shift down", "contrast": "Contrast"}, successes=6)
    assert tied.startswith("Shift down and Contrast share the lead of the joint attack: each is the attribute that "
                           "moved furthest in 33% (2 of 6) of the successful attacks")
    assert "With 6 successful attacks, this ranking is a glimpse, not a finding" in tied
    many = diagnosis_takeaway({"hue": 0.61, "brightness": 0.39}, {}, {}, successes=200)
    assert "61% (122 of 200)" in many and "glimpse" not in many


def test_perceptual_reports_success_above_the_ssim_floor():
    text = perceptual_takeaway({"sia": 0.02, "pgd": 0.11}, {"sia": 0.3257, "pgd": 0.99}, {"pgd": "pixel-only PGD"}, 0.9)
    assert text == ("Counting only images with SSIM ≥ 0.90 to their original, the joint attack still fools 2% of the "
                    "images (pixel-only PGD: 11%). Its successful images keep a mean SSIM of 0.33.")
    assert perceptual_takeaway({"sia": 0.0}, {"sia": None}, {}, 0.9).endswith("fools 0% of the images.")
    assert perceptual_takeaway({}, {}, {}, 0.9) == ""
    # with the geometry undone, every SSIM in the sentence is that SSIM, and it says so
    undone = perceptual_takeaway({"sia": 0.9}, {"sia": 0.81}, {}, 0.5, aligned=True)
    assert "SSIM ≥ 0.50 to their original (each attack's geometry undone)" in undone and "mean SSIM of 0.81" in undone
    loses = perceptual_takeaway({"sia": 0.02, "pgd": 0.11}, {"sia": 0.33}, {}, 0.9, (-0.09, (-0.13, -0.05)))
    assert "does not beat pixels alone" in loses and "does not reproduce here" in loses
    wins = perceptual_takeaway({"sia": 0.3, "pgd": 0.1}, {"sia": 0.95}, {}, 0.9, (0.2, (0.15, 0.25)))
    assert "SIA beats pixels alone (+20.0 points" in wins and "does not reproduce" not in wins


def _row(mask: str, after: float, clean_after: float = 0.85, adaptive: float = 0.05) -> NeutralizationRow:
    return NeutralizationRow(mask=mask, mean_area=0.2, adversarial_accuracy_before=0.1,
                             adversarial_accuracy_after=after, clean_accuracy_before=0.9,
                             clean_accuracy_after=clean_after, adaptive_accuracy=adaptive)


def test_neutralization_picks_the_best_deployable_mask_never_the_oracle_or_the_control():
    rows = [_row("oracle", 0.99), _row("dataset", 0.3), _row("class", 0.6, clean_after=0.8, adaptive=0.02),
            _row("random", 0.95)]
    text = neutralization_takeaway(rows, {"class": "Class mask"}, n=256)
    assert text.startswith("Blanking the class mask (20% of the pixels) lifts accuracy on attacked images from 10% "
                           "to 60%") and "cost of 10.0 points of clean accuracy" in text and "back to 2%" in text
    # the random control did better: the sentence says neutralization does not reproduce
    assert "a random mask of 20% of the pixels does better (95%" in text and "does not reproduce" in text
    assert "reaches zero" not in text  # its interval is below zero: the control is better, not as good
    level = neutralization_takeaway([_row("dataset", 0.6), _row("random", 0.62)], {}, n=256)
    assert "a random mask of 20% of the pixels does as well (62%" in level and "reaches zero" in level
    # a control a little below, within the noise: not "does as well", but no reliable difference
    close = neutralization_takeaway([_row("dataset", 0.18), _row("random", 0.13)], {}, n=256)
    assert "a random mask of 20% of the pixels scores 13%, lower but with no reliable difference" in close
    assert "does as well" not in close and "does not reproduce" in close


def test_neutralization_says_when_the_mask_beats_the_random_control():
    beats = neutralization_takeaway([_row("dataset", 0.6), _row("random", 0.3)], {}, n=256)
    assert "better than a random mask of 20% of the pixels (30%)" in beats
    # the deployable masks' own control (q of the pixels) is the one read where the study has it
    both = neutralization_takeaway([_row("dataset", 0.6), _row("random", 0.3), _row("random_q", 0.58)], {}, n=256)
    assert "scores 58%, lower but with no reliable difference" in both
    # the same gap on 8 images: its interval reaches zero, so the same numbers no longer count as a defense
    assert "does not reproduce" in neutralization_takeaway([_row("dataset", 0.6), _row("random", 0.3)], {}, n=8)


def test_margins_words_follow_tau():
    assert strength(0.8) == "closely" and strength(0.5) == "moderately" and strength(0.2) == "weakly"
    assert strength(0.05) == "hardly"
    text = margins_takeaway("fmnist-robust", 0.49, 0.985, 0.3)
    assert "moderately" in text and "τ = 0.49" in text and "AUROC 0.98" in text and "30%" in text
    named = margins_takeaway("fmnist-robust", 0.51, 0.99, 0.02, n=300, eps=0.1)
    assert "For fmnist-robust on 300 images" in named and "an attack within ε = 0.1 breaks" in named
    # 2% of 300 is 6 brittle inputs: their count is named, and an AUROC from so few is called rough
    assert "the 2% of inputs (6 of 300)" in named and "with only 6 brittle inputs that AUROC is a rough figure" in named
    assert "rough" not in margins_takeaway("fmnist-standard", 0.8, 0.98, 0.5, n=300, eps=0.1)
    # an L∞ radius in 255ths, as the slider sets it
    assert "within L∞ ε = 2/255 breaks" in margins_takeaway("m", 0.8, 0.98, 0.5, n=300, eps=2 / 255, norm="linf")
    assert "within L2 ε = 0.25 breaks" in margins_takeaway("m", 0.8, 0.98, 0.5, n=300, eps=0.25, norm="l2")


def test_margins_claim_no_strength_for_a_tau_whose_interval_reaches_zero():
    few = margins_takeaway("efficientnet-lite0", 0.571, float("nan"), 1.0, n=8, tau_interval=(-0.04, 1.0))
    assert "moderately" not in few and "[-0.04, 1.00] reaches zero" in few
    assert "cannot tell the two rankings' agreement from none" in few
    sure = margins_takeaway("m", 0.571, 0.9, 0.5, n=300, tau_interval=(0.5, 0.64))
    assert "ranks inputs moderately like" in sure
    reversed_ = margins_takeaway("m", -0.5, 0.2, 0.5, n=300, tau_interval=(-0.7, -0.3))
    assert "reaches zero" not in reversed_ and "against their distance" in reversed_
    assert "wholly below zero" in reversed_


def test_overlap_attack_and_features_sentences():
    assert "mostly outside" in overlap_takeaway(0.1, 0.3) and "mostly where" in overlap_takeaway(0.5, 0.7)
    # beside chance: 36% of the effect in a region of 20% of the image is more than a blind attack puts there
    against = overlap_takeaway(0.25, 0.36, fraction=0.2)
    assert "covers 20% of the image, so more than an attack blind to it" in against
    assert against.startswith("Most of the attack's effect (64%) lies outside where the model looks, yet it leans")
    assert "IoU 0.25, more than two random regions of that size (0.11)" in against
    # the three cases: mostly inside; outside and no more than chance; and the IoU below chance
    assert overlap_takeaway(0.4, 0.6, fraction=0.2).startswith("The attack changes pixels mostly where the model")
    blind = overlap_takeaway(0.05, 0.15, fraction=0.2)
    assert "no more than an attack blind to it would" in blind and "less than two random regions" in blind
    # compared as printed: 0.111 and chance 0.111... both read 0.11, so "as much as"; a high IoU is not "far from 1"
    assert "IoU 0.11, as much as two random regions of that size (0.11)" in overlap_takeaway(0.1105, 0.2, fraction=0.2)
    close = overlap_takeaway(0.85, 0.9, fraction=0.5)
    assert close.endswith("(0.33).") and "far from" not in close
    close = attack_takeaway("succeeded", "Shirt", "Coat", "hue shift", True, ssim=0.95)
    assert "still works once saved" in close and close.startswith("An edit that stays close to the original")
    visible = attack_takeaway("succeeded", "Shirt", "Coat", "hue shift", True, ssim=0.22)
    assert visible.startswith("A visible edit (SSIM 0.22") and "natural" not in visible
    held = attack_takeaway("failed", "Shirt", "Shirt", None, False, ssim=1.0, steps=5)
    assert held.startswith("The model held on to Shirt: this 5-step search found no mix") and "More steps" in held
    # fooled on the way, back at the end: the sentence says so, never that nothing fooled it
    passed = attack_takeaway("failed", "cat", "cat", None, False, ssim=0.9, steps=5, first_flip_step=4)
    assert "fooled the model at step 4" in passed and "Stop at the first flip" in passed and "held on" not in passed
    # targeted: reaching the target is the win, and the path may end on a third class, which is named
    aimed = attack_takeaway("failed", "cat", "dog", None, False, ssim=0.9, steps=5, first_flip_step=2,
                            target_class="ship")
    assert aimed.startswith("The attack reached its target, ship, at step 2, but the image where its path ends is dog")
    missed = attack_takeaway("failed", "cat", "dog", None, False, ssim=0.9, steps=5, target_class="ship")
    assert missed.startswith("The attack did not reach ship: this 5-step search") and "ends is dog" in missed
    already = attack_takeaway("already-fooled", "ship", "ship", None, True, ssim=1.0)
    assert "nothing for an attack to do" in already and "succeed" not in already
    text = features_takeaway({"d_det": 0.45, "d_rand": 0.6, "d_r": 0.8}, {"d_rand": "D̂_rand"}, 10, test_n=1000)
    assert "Trained only on D̂_rand" in text and "chance: 10%" in text
    assert "60.0% on the original test images (95% interval [" in text  # one decimal, as the tables
    assert text.endswith("the features the attack added carry the label.")
    # one sentence per relabelled set, D̂_det first: the best set does not speak for a worse one
    both = features_takeaway({"d_det": 0.064, "d_rand": 0.22}, {"d_det": "D̂_det", "d_rand": "D̂_rand"}, 10,
                             test_n=972, relabelled_accuracy={"d_det": 0.53, "d_rand": None})
    assert both.index("D̂_det") < both.index("D̂_rand") and both.count("Trained only on") == 2
    assert "53% on the (y + 1) mod C labels: it learned the relabelling" in both
    # below chance (the shipped CIFAR-10 D̂_det): the sentence says it does not reproduce, never that it carries
    below = features_takeaway({"d_det": 0.064}, {"d_det": "D̂_det"}, 10, test_n=972)
    assert "does not reproduce" in below and "carry the label" not in below and "relabelling" not in below
    # where the study at scale holds the verdict, the live run's sentence draws none
    live = features_takeaway({"d_det": 0.064}, {"d_det": "D̂_det"}, 10, test_n=972, decided_elsewhere={"d_det"})
    # its whole interval below chance: said as below, not as "not above"
    assert "below chance in this run" in live and "not above" not in live and "reproduce" not in live
    assert "study at scale" in live
    reaching = features_takeaway({"d_det": 0.09}, {"d_det": "D̂_det"}, 10, test_n=972, decided_elsewhere={"d_det"})
    assert "not above chance in this run" in reaching  # its interval holds chance
    # just above chance on few images: the interval reaches chance, so it does not count either
    assert "does not reproduce" in features_takeaway({"d_det": 0.14}, {}, 10, test_n=50)
    # the scorecard's verdict on the shipped study weighs more than the interval alone (e.g. t drawn from all classes)
    partly = features_takeaway({"d_rand": 0.22}, {"d_rand": "D̂_rand"}, 10, test_n=1000, verdicts={"d_rand": "partly"})
    assert "only partly reproduces" in partly and "carry the label" not in partly
    refuted = features_takeaway({"d_rand": 0.6}, {}, 10, test_n=1000, verdicts={"d_rand": "does-not-reproduce"})
    assert "does not reproduce" in refuted and "carry the label" not in refuted


def test_the_transfer_takeaway_compares_sia_training_with_any_pixel_adversarial_training():
    from sia_core.robustify import TransferCell, TransferRow
    from sia_core.takeaways import transfer_takeaway

    def row(model: str, recipe: str, accuracy: float) -> TransferRow:
        return TransferRow(model=model, recipe=recipe, clean_accuracy=0.8,
                           cells={c: TransferCell(accuracy, 0.9) for c in ("fgsm", "pgd-linf")})

    rows = [row("std", "standard", 0.0), row("sia-at", "sia", 0.2), row("fgsm-rs", "fgsm-rs", 0.4)]
    text = transfer_takeaway(rows, ["fgsm", "pgd-linf"], {})
    assert "beats standard training on 2 of the 2" in text
    assert "pixel adversarial training (fgsm-rs, fgsm-rs) is stronger than SIA training on 2 of those 2" in text
    # against its random-attribute control on SIA itself: the difference with its interval, on n images

    def with_sia(model: str, recipe: str, accuracy: float) -> TransferRow:
        return TransferRow(model=model, recipe=recipe, clean_accuracy=0.8,
                           cells={c: TransferCell(accuracy, 0.9) for c in ("fgsm", "pgd-linf", "sia")})

    rows = [with_sia("std", "standard", 0.0), with_sia("sia-at", "sia", 0.30), with_sia("rand", "random-attributes",
                                                                                       0.22)]
    wide = transfer_takeaway(rows, ["fgsm", "pgd-linf"], {}, n=50)
    assert "+8.0 points against SIA itself" in wide and "which reaches zero: no difference shown" in wide
    narrow = transfer_takeaway(rows, ["fgsm", "pgd-linf"], {}, n=5000)
    assert "+8.0 points against SIA itself" in narrow and "(95% interval [+" in narrow and "reaches zero" not in narrow


def test_the_imbalance_takeaway_leaves_sias_gap_to_a_verdict_that_follows():
    from sia_core.robustify.imbalance import MethodSummary
    from sia_core.takeaways import imbalance_takeaway

    def row(method: str, balanced: float) -> MethodSummary:
        return MethodSummary(method, method, 3, balanced, 0.01, balanced - 0.1, 0.01, (balanced,))

    summary = [row("plain", 0.70), row("random-attributes", 0.80), row("sia", 0.64)]
    labels = {"random-attributes": "Random-attribute augmentation"}
    alone = imbalance_takeaway(summary, labels)
    assert alone.startswith("Random-attribute augmentation balances best: 80.0% ± 1.0%")
    assert alone.endswith("; SIA augmentation is 16.0 points behind it.")
    before_a_verdict = imbalance_takeaway(summary, labels, with_gap=False)
    assert before_a_verdict == alone.removesuffix("; SIA augmentation is 16.0 points behind it.") + "."
    # one seed measures no spread: no "± 0.0%", and no ranking ("best", "behind") drawn from it
    one = [MethodSummary(r.method, r.label, 1, r.balanced_accuracy_mean, 0.0, r.minority_accuracy_mean, 0.0,
                         r.per_class_accuracy_mean) for r in summary]
    glimpse = imbalance_takeaway(one, labels)
    assert glimpse.startswith("On one seed, Random-attribute augmentation scores highest: 80.0% balanced accuracy")
    assert "±" not in glimpse and "behind" not in glimpse and "a glimpse, not a ranking" in glimpse


def test_a_confidence_never_rounds_to_certainty():
    from sia_core.takeaways import confidence_percent

    assert confidence_percent(0.9996) == ">99%" and confidence_percent(0.994) == "99%"
    # a saturated float32 softmax is exactly 1.0 or 0.0: still not a certainty
    assert confidence_percent(1.0) == ">99%" and confidence_percent(0.003) == "<1%" and confidence_percent(0.0) == "<1%"
    assert confidence_percent(0.5) == "50%"
