"""Margin consistency (Ngnawé et al. 2024): free scores from one forward pass, the input-space margin they stand in
for, how well one ranks and detects like the other, the pseudo-margin and the sample-efficient robust accuracy.

scores: the free scores. input_margins: the input-space margin estimator. metrics: consistency and detection.
pseudo_margin: the learned pseudo-margin. robust_accuracy: robust accuracy from margins. study: the whole study.
zoo: the study over many models, with the sample-efficient sweep.
"""

from sia_core.margins.input_margins import (FULL_SEARCH, LARGE_IMAGE_SEARCH, InputMarginEstimator, InputMargins,
                                            MarginSearch)
from sia_core.margins.metrics import DetectionMetrics, binned_median_curve, consistency, detection_metrics
from sia_core.margins.pseudo_margin import (PSEUDO_INPUTS, PseudoInput, PseudoMarginResult, fit_pseudo_margin,
                                            model_inputs_for_pseudo_margin, pseudo_margin_fit_images,
                                            pseudo_margin_network)
from sia_core.margins.robust_accuracy import (robust_accuracy_from_margins, sample_efficient_robust_accuracy,
                                             sample_efficient_sweep)
from sia_core.margins.scores import MarginScores, margin_scores
from sia_core.margins.study import (MarginsConfig, MarginsReport, MarginStudy, MarginSummary, PseudoMarginStudy,
                                    adversarial_at_margin, margin_study, margins_study, pseudo_margin_study)
from sia_core.margins.zoo import PAPER_ZOO, ZOO_MODELS, ZooConfig, ZooEntry, ZooReport, zoo_entry, zoo_study

__all__ = ["adversarial_at_margin", "DetectionMetrics", "FULL_SEARCH", "InputMarginEstimator", "InputMargins", "LARGE_IMAGE_SEARCH",
           "MarginScores", "MarginSearch", "MarginsConfig", "MarginsReport", "MarginStudy", "MarginSummary", "margins_study",
           "PSEUDO_INPUTS", "PseudoInput", "PseudoMarginResult", "PseudoMarginStudy", "binned_median_curve",
           "consistency", "detection_metrics", "fit_pseudo_margin", "margin_scores", "margin_study",
           "model_inputs_for_pseudo_margin", "pseudo_margin_fit_images", "pseudo_margin_network",
           "pseudo_margin_study", "robust_accuracy_from_margins", "sample_efficient_robust_accuracy",
           "sample_efficient_sweep", "PAPER_ZOO", "ZOO_MODELS", "ZooConfig", "ZooEntry", "ZooReport", "zoo_entry",
           "zoo_study"]
