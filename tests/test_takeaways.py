"""The takeaway sentences say what the numbers say: the right leader, the right direction, the right strength."""

from __future__ import annotations

from sia_core.takeaways import (attack_takeaway, diagnosis_takeaway, features_takeaway, margins_takeaway,
                                neutralization_takeaway, overlap_takeaway, perceptual_takeaway, strength)


def test_diagnosis_names_the_dominant_attribute_and_compares_with_pixels():
    text = diagnosis_takeaway({"hue": 0.61, "brightness": 0.3, "rotation": 0.09}, {"sia": 0.9, "pgd": 0.4},
                              {"hue": "Hue shift"})
    assert text.startswith("Hue shift is the attribute that breaks this model most: it dominates 61%")
    assert "succeeds on 90%" in text and "40% for pixels alone" in text
    assert "No joint attack succeeded" in diagnosis_takeaway({"hue": 0.0}, {}, {})


def test_perceptual_reports_success_above_the_ssim_floor():
    text = perceptual_takeaway({"sia": 0.02, "pgd": 0.11}, {"sia": 0.3257, "pgd": 0.99}, {"pgd": "pixel-only PGD"}, 0.9)
    assert text == ("Counting only images with SSIM ≥ 0.90 to their original, the joint attack still fools 2% of the "
                    "images (pixel-only PGD: 11%). Its successful images keep a mean SSIM of 0.33.")
    assert perceptual_takeaway({"sia": 0.0}, {"sia": None}, {}, 0.9).endswith("fools 0% of the images.")
    assert perceptual_takeaway({}, {}, {}, 0.9) == ""


def test_neutralization_picks_the_best_deployable_mask_not_the_oracle():
    rows = [dict(mask="oracle", mean_area=0.1, adversarial_accuracy_before=0.1, adversarial_accuracy_after=0.99,
                 clean_accuracy_before=0.9, clean_accuracy_after=0.9, adaptive_accuracy=0.5),
            dict(mask="dataset", mean_area=0.2, adversarial_accuracy_before=0.1, adversarial_accuracy_after=0.3,
                 clean_accuracy_before=0.9, clean_accuracy_after=0.85, adaptive_accuracy=0.05),
            dict(mask="class", mean_area=0.2, adversarial_accuracy_before=0.1, adversarial_accuracy_after=0.6,
                 clean_accuracy_before=0.9, clean_accuracy_after=0.8, adaptive_accuracy=0.02)]
    text = neutralization_takeaway(rows, {"class": "Class mask"})
    assert text.startswith("Blanking the class mask (20% of the pixels) lifts accuracy on attacked images from 10% "
                           "to 60%") and "cost of 10%" in text and "back to 2%" in text


def test_margins_words_follow_tau():
    assert strength(0.8) == "closely" and strength(0.5) == "moderately" and strength(0.2) == "weakly"
    assert strength(0.05) == "hardly"
    text = margins_takeaway("fmnist-robust", 0.49, 0.985, 0.3)
    assert "moderately" in text and "τ = 0.49" in text and "AUROC 0.98" in text and "30%" in text


def test_overlap_attack_and_features_sentences():
    assert "mostly outside" in overlap_takeaway(0.1, 0.3) and "mostly where" in overlap_takeaway(0.5, 0.7)
    assert "still works once saved" in attack_takeaway(True, "Shirt", "Coat", "hue shift", True)
    assert "held on to Shirt" in attack_takeaway(False, "Shirt", "Shirt", None, False)
    text = features_takeaway({"d_det": 0.45, "d_rand": 0.6, "d_r": 0.8}, {"d_rand": "D̂_rand"}, 10)
    assert "Trained only on D̂_rand" in text and "60%" in text and "chance: 10%" in text
