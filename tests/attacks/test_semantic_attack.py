"""The Semantic Image Attack: it respects its threat model, its result is honest, and it finds known weaknesses."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sia_core.attacks import PGD, SemanticAttack
from sia_core.data.base import ImageDataset
from sia_core.data.catalog import load_dataset
from sia_core.errors import ConfigError
from sia_core.evaluation import evaluate
from sia_core.models.architectures import SplitClassifier
from sia_core.models.registry import load_model
from sia_core.models.wrapper import ClassifierWrapper
from sia_core.semantics import ATTRIBUTES, apply_attributes
from tests.conftest import make_wrapper


class MeanBrightness(nn.Module):
    """Features: the image's mean brightness; a linear head thresholds it at 0.5 (class 1 = bright)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3)).unsqueeze(1)


def brightness_model(channels: int = 1, size: int = 8) -> ClassifierWrapper:
    head = nn.Linear(1, 2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[-20.0], [20.0]]))
        head.bias.copy_(torch.tensor([10.0, -10.0]))
    return ClassifierWrapper(SplitClassifier(nn.Sequential(MeanBrightness()), head), mean=[0.0] * channels,
                             std=[1.0] * channels, input_shape=(channels, size, size), class_names=["dark", "bright"]).eval()


@pytest.fixture
def rgb_batch():
    generator = torch.Generator().manual_seed(0)
    return torch.rand(12, 3, 8, 8, generator=generator), torch.randint(0, 4, (12,), generator=generator)


def test_threat_model_holds(rgb_batch):
    model = make_wrapper(channels=3, size=8, seed=1)
    x, y = rgb_batch
    eps = 4 / 255
    result = SemanticAttack(steps=8, eps_linf=eps, random_init=True, seed=3)(model, x, y)
    assert result.images.min() >= 0 and result.images.max() <= 1
    for k, name in enumerate(result.attribute_names):
        values = result.attribute_values[:, k]
        assert torch.all(values >= ATTRIBUTES[name].low - 1e-6) and torch.all(values <= ATTRIBUTES[name].high + 1e-6)
    torch.testing.assert_close(result.edited_images, apply_attributes(x, {n: result.attribute_values[:, k]
                                                                           for k, n in enumerate(result.attribute_names)}))
    assert torch.all(result.pixel_perturbation.abs() <= eps + 1e-6)
    with torch.no_grad():
        assert torch.equal(result.success, model(result.images).argmax(1) != y)


def test_no_steps_and_no_budget_is_the_identity(rgb_batch):
    model = make_wrapper(channels=3, size=8)
    x, y = rgb_batch
    result = SemanticAttack(steps=0)(model, x, y)
    torch.testing.assert_close(result.images, x)
    assert torch.all(result.attribute_values == 0)
    only_attributes = SemanticAttack(steps=5, eps_linf=0.0)(model, x, y)
    torch.testing.assert_close(only_attributes.images, only_attributes.edited_images)


def test_attributes_only_flips_a_brightness_reader_by_moving_brightness():
    model = brightness_model()
    x = torch.full((4, 1, 8, 8), 0.62)  # bright, 0.12 above the boundary: brightness's range (±0.25) reaches it
    y = torch.ones(4, dtype=torch.long)
    result = SemanticAttack(attributes=("brightness", "rotation"), steps=20, eps_linf=0.0)(model, x, y)
    assert bool(result.success.all())
    values = result.attributes_of(0)
    assert values["brightness"] < -0.1 and abs(values["rotation"]) < 1e-6  # rotation cannot change the mean here


def test_pixel_budget_alone_cannot_reach_a_far_boundary_but_sia_can():
    model = brightness_model()
    x = torch.full((4, 1, 8, 8), 0.62)
    y = torch.ones(4, dtype=torch.long)
    assert not PGD(eps=2 / 255, steps=30)(model, x, y).success.any()
    assert SemanticAttack(attributes=("brightness",), eps_linf=2 / 255)(model, x, y).success.all()


def test_targeted_and_early_stop():
    model = make_wrapper(channels=1, size=8, seed=2)
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    y = model.logits(x).argmax(1)
    target = (y + 1) % 4
    targeted = SemanticAttack(steps=30, eps_linf=16 / 255)(model, x, y, target=target)
    assert torch.equal(targeted.success, targeted.adversarial_predictions == target)
    stopped = SemanticAttack(steps=30, eps_linf=16 / 255, early_stop=True)(model, x, y)
    flipped = stopped.first_success_step >= 0
    assert flipped.any()
    assert torch.all(stopped.success[flipped])  # frozen at the first success, so still successful


def test_sparsity_uses_fewer_attributes():
    model = make_wrapper(channels=3, size=8, seed=5)
    x = torch.rand(32, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    y = model.logits(x).argmax(1)
    dense = SemanticAttack(steps=30, eps_linf=0.0)(model, x, y)
    sparse = SemanticAttack(steps=30, eps_linf=0.0, sparsity_weight=3.0)(model, x, y)
    assert sparse.normalized_magnitudes().sum() < 0.8 * dense.normalized_magnitudes().sum()


def test_a_perceptual_weight_keeps_the_image_closer_in_ssim():
    model = load_model("fmnist-standard")
    data = load_dataset("fashion-mnist-subset")
    x, y = data.images[:32], data.labels[:32]
    plain = SemanticAttack(steps=15, eps_linf=4 / 255)(model, x, y)
    careful = SemanticAttack(steps=15, eps_linf=4 / 255, perceptual_weight=20.0)(model, x, y)
    assert careful.mean_ssim > plain.mean_ssim
    assert "μ_ssim=20" in careful.attack and "μ_ssim" not in plain.attack


def test_history_records_every_step_and_each_attribute(rgb_batch):
    model = make_wrapper(channels=3, size=8)
    x, y = rgb_batch
    seen = []
    result = SemanticAttack(steps=6, attributes=("hue", "rotation"))(model, x, y, progress=lambda s, t, i: seen.append(s))
    assert seen == [1, 2, 3, 4, 5, 6]
    assert len(result.history["loss"]) == 7  # the start and each step
    assert set(result.history) >= {"loss", "true_class_probability", "success_rate", "attribute/hue", "attribute/rotation"}
    assert result.history["attribute/hue"][0] == 0.0


def test_bad_configurations():
    # every numeric field is walked in tests/attacks/test_attacks.py; here the names and their fit to the images
    with pytest.raises(ConfigError, match="Unknown attributes: smile"):
        SemanticAttack(attributes=("smile",))
    with pytest.raises(ConfigError, match="do not apply to 1-channel"):
        SemanticAttack(attributes=("hue",))(make_wrapper(), torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))


def test_perturb_returns_the_images_of_the_full_call(rgb_batch):
    model = make_wrapper(channels=3, size=8, seed=1)
    x, y = rgb_batch
    attack = SemanticAttack(steps=6, eps_linf=8 / 255, random_init=True, seed=2)
    torch.testing.assert_close(attack.perturb(model, x, y), attack(model, x, y).images)


def test_evaluate_accepts_the_semantic_attack():
    # a brightness reader: bright images 0.12 above its boundary survive pixel PGD but not a brightness edit
    model = brightness_model()
    x = torch.cat([torch.full((6, 1, 8, 8), 0.62), torch.full((4, 1, 8, 8), 0.9)])
    y = torch.ones(10, dtype=torch.long)
    data = ImageDataset("bright", x, y, model.class_names)
    attack = SemanticAttack(attributes=("brightness",), steps=20, eps_linf=0.0)
    report = evaluate(model, data, attack=attack, batch_size=4)
    assert report.clean_accuracy == 1.0
    assert report.robust_accuracy == pytest.approx(0.4)  # 0.9 - 0.25 stays bright, 0.62 - 0.25 does not
    assert report.attack == attack.description
    assert evaluate(model, data, attack=PGD(eps=2 / 255, steps=10)).robust_accuracy == 1.0
