"""AutoAttack from the torchattacks library as an attack of the registry: inside its ball, at least as strong as
PGD-20 on the same images, leaves the process's global generator as it found it, and refuses what it cannot do."""

from __future__ import annotations

import pytest
import torch

from sia_core.attacks import ATTACKS, PGD, AutoAttack
from sia_core.data.base import ImageDataset
from sia_core.errors import ConfigError
from sia_core.training import TrainConfig, train
from tests.conftest import make_wrapper

pytest.importorskip("torchattacks", reason="pip install --no-deps torchattacks==3.5.1 (bash scripts/setup.sh dev)")


@pytest.fixture(scope="module")
def levels():
    """A small MLP trained on four intensity levels (separable, so PGD and AutoAttack have work to do)."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(200) % 4
    images = (labels.float().view(-1, 1, 1, 1) / 4 + 0.1 * torch.rand(200, 1, 8, 8, generator=generator)).clamp(0, 1)
    model = make_wrapper(channels=1, size=8, classes=4, seed=5, architecture="mlp")
    train(model, ImageDataset("levels", images, labels, ("a", "b", "c", "d")), TrainConfig(epochs=20))
    return model, images[:48], labels[:48]


@pytest.mark.parametrize("norm, eps", [("linf", 0.08), ("l2", 0.5)])
def test_autoattack_stays_in_its_ball_and_is_at_least_as_strong_as_pgd(levels, norm, eps):
    model, x, y = levels
    result = ATTACKS.build(f"autoattack-{norm}", eps=eps)(model, x, y)
    assert result.images.min() >= 0 and result.images.max() <= 1
    size = result.perturbation_linf if norm == "linf" else result.perturbation_l2
    assert float(size.max()) <= eps + 1e-5
    pgd = PGD(eps=eps, norm=norm, steps=20, seed=0)(model, x, y)
    assert 0 < pgd.success_rate < 1  # the case worth comparing
    assert result.success_rate >= pgd.success_rate  # never a higher robust accuracy than PGD-20's


def test_the_global_generator_is_as_it_was(levels):
    model, x, y = levels
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    AutoAttack(eps=0.08)(model, x[:8], y[:8])
    assert torch.equal(torch.rand(3), expected)


def test_zero_radius_changes_nothing_and_bad_settings_are_refused(levels):
    model, x, y = levels
    assert torch.equal(AutoAttack(eps=0.0)(model, x[:4], y[:4]).images, x[:4])
    for options in (dict(eps=-0.1), dict(eps=0.1, norm="l1"), dict(eps=0.1, version="plus"), dict(eps=0.1, seed=1.5)):
        with pytest.raises(ConfigError):
            AutoAttack(**options)
    with pytest.raises(ConfigError, match="untargeted"):
        AutoAttack(eps=0.1)(model, x[:4], y[:4], target=(y[:4] + 1) % 4)


@pytest.mark.parametrize("norm, eps", [("linf", 0.08), ("l2", 0.5)])
def test_an_autoattack_evaluation_keeps_pgd20_on_the_same_images_beside_it(levels, norm, eps):
    from sia_core.evaluation import EvaluationConfig, evaluation_study

    model, x, y = levels
    study = evaluation_study(model, ImageDataset("levels", x, y, ("a", "b", "c", "d")),
                             EvaluationConfig(attack=f"autoattack-{norm}", eps=eps))
    entry = study.card_entry()
    assert entry["attack"] == f"autoattack-{norm}" and entry["steps"] is None
    assert entry["robust_accuracy"] <= entry["pgd20_robust_accuracy"]  # never the weaker of the two
    assert entry["gap_vs_pgd20_points"] == pytest.approx(
        100 * (entry["pgd20_robust_accuracy"] - entry["robust_accuracy"]), abs=0.02)
    pgd = evaluation_study(model, ImageDataset("levels", x, y, ("a", "b", "c", "d")),
                           EvaluationConfig(attack=f"pgd-{norm}", eps=eps)).card_entry()
    assert pgd["robust_accuracy"] == entry["pgd20_robust_accuracy"] and "pgd20_robust_accuracy" not in pgd


def test_the_command_lines_autoattack_takes_the_norm_of_the_models_card():
    from sia_core.cli import _autoattack_for

    assert _autoattack_for("fmnist-robust") == "autoattack-linf"
    assert _autoattack_for("cifar10-robust-l2") == "autoattack-l2"
    assert _autoattack_for("torchvision:resnet18") == "autoattack-linf"
