"""Issue 3's "must show", on the shipped models with fixed seeds: the diagnosis finds the planted hue
shortcut, and the joint attack is at least as strong as pixel-only PGD at the same pixel budget."""

from __future__ import annotations

import pytest
import torch

from sia_core.attacks import PGD
from sia_core.attacks.semantic import SemanticAttack
from sia_core.data.catalog import load_dataset
from sia_core.diagnosis import DiagnosisConfig, diagnose, select_correct
from sia_core.models.registry import load_model


@pytest.fixture(scope="module")
def shapes_test():
    return load_dataset("shapes", "test", n=1000)


def test_hue_ranks_first_only_for_the_hue_biased_model(shapes_test):
    config = DiagnosisConfig(n=64, seed=0)
    spurious = diagnose(load_model("shapes-spurious-hue"), shapes_test, config)
    standard = diagnose(load_model("shapes-standard"), shapes_test, config)
    assert spurious.ranking()[0] == "hue", spurious.to_dict()["sensitivity"]
    assert standard.ranking()[0] != "hue", standard.to_dict()["sensitivity"]
    hue = spurious.attribute_names.index("hue")
    assert float(spurious.sensitivity[hue]) > 3 * float(standard.sensitivity[hue])


@pytest.mark.parametrize("model_id", ["fmnist-standard", "fmnist-robust"])
def test_sia_is_at_least_as_strong_as_pgd_at_the_same_pixel_budget(model_id):
    model = load_model(model_id)
    data = load_dataset("fashion-mnist-subset")
    index = select_correct(model, data, n=64, seed=0)
    x, y = data.images[index], data.labels[index]
    eps = 2 / 255
    pgd = PGD(eps=eps, steps=30, seed=0)(model, x, y)
    sia = SemanticAttack(eps_linf=eps, steps=30, seed=0)(model, x, y)
    assert sia.success_rate >= pgd.success_rate
    assert sia.success_rate > 0.3
    assert torch.all(sia.pixel_perturbation.abs() <= eps + 1e-6)
