"""Robust vs non-robust features (Ilyas et al. 2019): build the constructed datasets, save and
reload them, train fresh models on them and test those on the *original* test set.

constructed: the kinds (KINDS), ConstructionConfig and ConstructedSet. build: relabelling, representation
matching and build_constructed_set. training: train_on_constructed. transfer: the transfer study.
jpeg_control: does the source's JPEG training data decide its targeted attack's reach? paper: the paper's numbers.
"""

from sia_core.features.build import build_constructed_set, match_representation, representation_error
from sia_core.features.constructed import KINDS, ConstructedSet, ConstructionConfig, relabel_targets
from sia_core.features.paper import PAPER_CIFAR10, PAPER_ROBUST_SOURCE
from sia_core.features.training import FeatureTrainingConfig, FeatureTrainingResult, fresh_model, train_on_constructed
from sia_core.features.study import (FeatureSetPlan, FeaturesBaseline, FeaturesStudyConfig, FeaturesStudyReport,
                                     features_study)
from sia_core.features.transfer import (FeatureTransferConfig, FeatureTransferReport, TransferPoint, made_alike,
                                        seed_mean_points, transfer_attack_label, transfer_by_radius, transfer_runs,
                                        transfer_settings, transfer_study)

__all__ = ["FeatureSetPlan", "FeaturesBaseline", "FeaturesStudyConfig", "FeaturesStudyReport", "features_study", "KINDS", "PAPER_CIFAR10", "PAPER_ROBUST_SOURCE", "ConstructedSet", "ConstructionConfig", "FeatureTrainingConfig", "FeatureTrainingResult",
           "FeatureTransferConfig", "FeatureTransferReport", "TransferPoint",
           "build_constructed_set", "fresh_model", "match_representation", "relabel_targets", "representation_error",
           "made_alike", "seed_mean_points", "train_on_constructed", "transfer_attack_label", "transfer_by_radius",
           "transfer_runs", "transfer_settings", "transfer_study"]
