"""FGSM and PGD: they never leave the eps-ball or [0, 1], success is honest, and known answers hold."""

from __future__ import annotations

import pytest
import torch

from sia_core.attacks import ATTACKS, FGSM, PGD, CarliniWagnerL2, DeepFool, SemanticAttack, quantize_8bit
from sia_core.attacks.carlini_wagner import cw_margin
from sia_core.attacks.base import concatenate_results
from sia_core.errors import ConfigError
from sia_core.perceptual import ssim
from tests.conftest import linear_wrapper, make_wrapper

CONFIGS = [
    pytest.param(FGSM(eps=0.1), id="fgsm"),
    pytest.param(FGSM(eps=0.1, random_start=True, seed=3), id="fgsm-rs"),
    pytest.param(PGD(eps=0.1, norm="linf", steps=10, seed=0), id="pgd-linf"),
    pytest.param(PGD(eps=0.05, norm="linf", steps=5, random_start=False), id="pgd-linf-nors"),
    pytest.param(PGD(eps=0.5, norm="l2", steps=10, seed=0), id="pgd-l2"),
    pytest.param(PGD(eps=2.0, norm="l2", steps=5, step_size=1.0, seed=1), id="pgd-l2-large"),
]


def _norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


@pytest.mark.parametrize("attack", CONFIGS)
@pytest.mark.parametrize("targeted", [False, True])
def test_stays_in_ball_and_unit_box(attack, targeted, tiny_batch):
    model = make_wrapper()
    images, labels = tiny_batch
    images = images.clone()
    images[:4] = 0.0  # corners of the box exercise the clipping
    images[4:8] = 1.0
    target = (labels + 1) % 4 if targeted else None
    result = attack(model, images, labels, target=target)
    norm = getattr(attack, "norm", "linf")
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert torch.all(_norm(result.images - images, norm) <= attack.eps + 1e-5)
    torch.testing.assert_close(result.perturbation_linf, (result.images - images).flatten(1).abs().amax(1))


@pytest.mark.parametrize("attack", CONFIGS)
def test_success_is_recomputed_on_returned_images(attack, tiny_batch):
    model = make_wrapper()
    images, labels = tiny_batch
    result = attack(model, images, labels)
    with torch.no_grad():
        predictions = model(result.images).argmax(1)
        rounded = model(quantize_8bit(result.images)).argmax(1)
    assert torch.equal(result.success, predictions != labels)
    assert torch.equal(result.success_after_rounding, rounded != labels)
    assert torch.equal(result.adversarial_predictions, predictions)
    torch.testing.assert_close(result.ssim, ssim(result.images, images))  # how visible, on the same tensor
    assert result.mean_ssim == pytest.approx(float(result.ssim.mean()))


@pytest.mark.parametrize("attack", [FGSM(eps=0.1), PGD(eps=0.1, steps=3, random_start=False), DeepFool(steps=3),
                                    SemanticAttack(steps=3)], ids=lambda a: type(a).__name__)
def test_every_attack_reports_ssim_and_chunks_concatenate_it(attack, tiny_batch):
    images, labels = tiny_batch
    whole = attack(make_wrapper(), images, labels)
    assert whole.ssim.shape == (len(labels),) and whole.ssim.device.type == "cpu" and torch.all(whole.ssim <= 1 + 1e-6)
    joined = concatenate_results([attack(make_wrapper(), images[:6], labels[:6]),
                                  attack(make_wrapper(), images[6:], labels[6:])])
    torch.testing.assert_close(joined.ssim, whole.ssim)


def test_fgsm_on_linear_model_moves_along_sign_of_weight_difference():
    # Two classes, logits = W x: the CE gradient for label 0 points along (w1 - w0), so FGSM adds eps * sign(w1 - w0).
    torch.manual_seed(0)
    weight = torch.randn(2, 16)
    model = linear_wrapper(weight, torch.zeros(2), (1, 4, 4))
    images = torch.full((3, 1, 4, 4), 0.5)
    labels = torch.zeros(3, dtype=torch.long)
    result = FGSM(eps=0.1)(model, images, labels)
    expected = 0.5 + 0.1 * torch.sign(weight[1] - weight[0]).view(1, 1, 4, 4)
    torch.testing.assert_close(result.images, expected.expand(3, -1, -1, -1))


def test_pgd_l2_on_linear_model_reaches_the_boundary_when_eps_exceeds_the_margin():
    # Binary linear model: the L2 distance to the boundary is |w.x + b| / ||w||; an eps just above it must flip.
    weight = torch.tensor([[1.0, -1.0, 0.5, 0.0], [-1.0, 1.0, -0.5, 0.0]])
    model = linear_wrapper(weight, torch.zeros(2), (1, 2, 2))
    x = torch.tensor([[0.7, 0.4, 0.6, 0.5]]).view(1, 1, 2, 2)
    w = weight[0] - weight[1]
    margin = float((w @ x.flatten()).abs() / w.norm())
    label = torch.tensor([0])
    assert not PGD(eps=margin * 0.95, norm="l2", steps=50, random_start=False)(model, x, label).success.item()
    assert PGD(eps=margin * 1.05, norm="l2", steps=50, random_start=False)(model, x, label).success.item()


def test_targeted_pgd_reaches_the_target_more_often_than_untargeted():
    model = make_wrapper(seed=2)
    generator = torch.Generator().manual_seed(5)
    images = torch.rand(64, 1, 8, 8, generator=generator)
    labels = model.logits(images).argmax(1)
    target = (labels + 1) % 4
    targeted = PGD(eps=0.5, steps=20, seed=0)(model, images, labels, target=target)
    untargeted = PGD(eps=0.5, steps=20, seed=0)(model, images, labels)
    assert targeted.success_rate > 0.9
    assert float((untargeted.adversarial_predictions == target).float().mean()) < targeted.success_rate


def test_pgd_is_stronger_than_fgsm_and_deterministic_with_a_seed():
    model = make_wrapper(seed=4)
    generator = torch.Generator().manual_seed(6)
    images = torch.rand(128, 1, 8, 8, generator=generator)
    labels = model.logits(images).argmax(1)
    pgd = PGD(eps=0.03, steps=20, seed=7)
    first, second = pgd(model, images, labels), pgd(model, images, labels)
    assert torch.equal(first.images, second.images)
    assert first.success_rate >= FGSM(eps=0.03)(model, images, labels).success_rate
    assert len(first.history["loss"]) == 20


def test_progress_callback_sees_every_step():
    model = make_wrapper()
    seen = []
    PGD(eps=0.1, steps=4)(model, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]),
                          progress=lambda step, total, info: seen.append((step, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_attack_leaves_model_state_untouched():
    model = make_wrapper()
    model.train()
    PGD(eps=0.1, steps=2)(model, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_registry_builds_every_attack_from_one_call():
    for entry in ATTACKS:
        attack = ATTACKS.build(entry.name, eps=0.25, steps=3, seed=1)
        assert attack.eps == 0.25 and attack.seed == 1
        assert getattr(attack, "norm", "linf") == entry.traits["norm"]
        assert getattr(attack, "steps", 1) == (3 if entry.traits["uses_steps"] else 1)
        assert entry.label and entry.description
    assert ATTACKS.names() == ("fgsm", "pgd-linf", "pgd-l2", "cw-l2", "autoattack-linf", "autoattack-l2")
    assert ATTACKS.build("pgd-l2", eps=0.5) == PGD(eps=0.5, norm="l2", steps=20, seed=0)  # the CLI's defaults
    assert ATTACKS.build("cw-l2", eps=0.5) == CarliniWagnerL2(eps=0.5, steps=30, seed=0)
    with pytest.raises(ConfigError, match="choose one of fgsm, pgd-linf, pgd-l2, cw-l2, autoattack-linf"):
        ATTACKS.build("cw", eps=0.1)


BAD_CONFIGS = [
    (PGD, {"eps": -0.1}), (PGD, {"eps": float("nan")}), (PGD, {"eps": 0.1, "norm": "l1"}),
    (PGD, {"eps": 0.1, "steps": -1}), (PGD, {"eps": 0.1, "steps": 2.5}), (PGD, {"eps": 0.1, "step_size": 0.0}),
    (PGD, {"eps": 0.1, "step_size": -0.01}), (PGD, {"eps": 0.1, "seed": 1.5}),
    (FGSM, {"eps": -1}), (FGSM, {"eps": "0.1"}), (FGSM, {"eps": 0.1, "step_size": 0}), (FGSM, {"eps": 0.1, "seed": "0"}),
    (DeepFool, {"steps": -3, "candidates": 0}), (DeepFool, {"steps": 0}), (DeepFool, {"candidates": 1}),
    (DeepFool, {"candidates": 2.0}), (DeepFool, {"overshoot": -0.02}), (DeepFool, {"norm": "l1"}),
    (SemanticAttack, {"attributes": ("smile",)}), (SemanticAttack, {"attributes": "brightness"}),
    (SemanticAttack, {"steps": -1}), (SemanticAttack, {"steps": 3.0}), (SemanticAttack, {"eps_linf": -1.0}),
    (SemanticAttack, {"sparsity_weight": -0.5}), (SemanticAttack, {"attribute_step": 0.0}),
    (SemanticAttack, {"pixel_step": 0.0}), (SemanticAttack, {"warmup_fraction": 1.5}),
    (SemanticAttack, {"warmup_fraction": -0.1}), (SemanticAttack, {"seed": 0.5}),
    (SemanticAttack, {"perceptual_weight": -1.0}), (SemanticAttack, {"perceptual_weight": float("nan")}),
]


@pytest.mark.parametrize("config, options", BAD_CONFIGS, ids=lambda v: v.__name__ if isinstance(v, type) else repr(v))
def test_bad_values_are_refused_when_constructed(config, options):
    with pytest.raises(ConfigError):
        config(**options)


GOOD_CONFIGS = [
    (PGD, {"eps": 0.0, "steps": 0}), (PGD, {"eps": 0.5, "norm": "l2", "step_size": 0.1, "seed": 3}),
    (FGSM, {"eps": 0.0}), (FGSM, {"eps": 1, "seed": None}), (DeepFool, {}),
    (DeepFool, {"norm": "linf", "steps": 1, "candidates": 2, "overshoot": 0.0}), (SemanticAttack, {}),
    (SemanticAttack, {"attributes": (), "steps": 0, "eps_linf": 0.0, "warmup_fraction": 1.0, "seed": None}),
]


@pytest.mark.parametrize("config, options", GOOD_CONFIGS, ids=lambda v: v.__name__ if isinstance(v, type) else repr(v))
def test_defaults_and_edge_values_construct(config, options):
    assert config(**options).description


def test_fgsm_without_budget_changes_nothing(tiny_batch):
    images, labels = tiny_batch
    for attack in (FGSM(eps=0.0), FGSM(eps=0.0, random_start=True, seed=0)):
        torch.testing.assert_close(attack(make_wrapper(), images, labels).images, images)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU to put the model elsewhere than the data")
@pytest.mark.parametrize("attack", [PGD(eps=0.1, steps=2), FGSM(eps=0.1), DeepFool(steps=3),
                                    SemanticAttack(steps=2)], ids=lambda a: type(a).__name__)
def test_attacks_move_the_data_to_the_models_device(attack, tiny_batch):
    model = make_wrapper().to("cuda")
    images, labels = tiny_batch
    result = attack(model, images, labels)  # the data stays on the CPU: the attack reads model.device
    with torch.no_grad():
        assert torch.equal(result.adversarial_predictions, model(result.images).argmax(1).cpu())


def test_cw_margin_is_the_logit_gap_capped_at_kappa():
    logits = torch.tensor([[3.0, 1.0, 2.5], [0.0, 4.0, 1.0]])
    labels = torch.tensor([0, 1])
    torch.testing.assert_close(cw_margin(logits, labels, kappa=10.0, targeted=False), torch.tensor([-0.5, -3.0]))
    torch.testing.assert_close(cw_margin(logits, labels, kappa=0.0, targeted=False), torch.tensor([-0.5, -3.0]))
    torch.testing.assert_close(cw_margin(logits, torch.tensor([2, 2]), kappa=0.2, targeted=True), torch.tensor([-0.5, -3.0]))
    torch.testing.assert_close(cw_margin(logits, torch.tensor([1, 0]), kappa=0.2, targeted=False), torch.tensor([0.2, 0.2]))


def test_cw_l2_crosses_a_linear_boundary_exactly_when_the_budget_allows():
    """Two classes, logits w·x and -w·x on 16 pixels: the distance to the boundary is |w·x| / ‖w‖₂, so an L2 budget
    just above it succeeds and one just below cannot, and the change stays inside the ball."""
    w = torch.cat([torch.ones(8), -torch.ones(8)])
    model = linear_wrapper(torch.stack([w, -w]), torch.zeros(2), (1, 4, 4))
    x = torch.full((1, 1, 4, 4), 0.5)
    x.view(-1)[:8] = 0.6  # w·x = 4.8 - 4.0 = 0.8 and ‖w‖₂ = 4: the boundary is 0.2 away, well inside [0, 1]
    distance = 0.8 / 4
    y = torch.tensor([0])
    far = CarliniWagnerL2(eps=distance * 1.05, steps=60)(model, x, y)
    near = CarliniWagnerL2(eps=distance * 0.95, steps=60)(model, x, y)
    assert bool(far.success[0]) and not bool(near.success[0])
    assert float(far.perturbation_l2[0]) <= distance * 1.05 + 1e-5 and 0 < float(far.ssim[0]) < 1


def test_an_image_already_misclassified_is_its_own_outcome_not_a_success():
    from sia_core.attacks import PGD
    from tests.conftest import make_wrapper

    model = make_wrapper(channels=1, size=8, classes=4, seed=3)
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    predicted = model.logits(x).argmax(1)
    y = predicted.clone()
    y[:4] = (predicted[:4] + 1) % 4  # the first four are already wrong
    result = PGD(eps=0.0, steps=1, seed=0)(model, x, y)  # a radius-0 attack changes nothing
    assert result.already_fooled[:4].all() and not result.already_fooled[4:].any()
    assert [result.outcome(i) for i in range(6)] == ["already-fooled"] * 4 + ["failed"] * 2


@pytest.mark.parametrize("name, eps, steps, words", [
    ("pgd-linf", 8 / 255, 20, "20-step PGD at L∞ ε = 8/255"),
    ("pgd-linf", 0.0314, 20, "20-step PGD at L∞ ε = 8/255"),  # a card's rounded 8/255
    ("autoattack-l2", 0.5, 100, "AutoAttack at L2 ε = 0.5"),  # its own budgets: no step count
    ("fgsm", 4 / 255, 1, "FGSM at L∞ ε = 4/255"),
    ("cw-l2", 1.0, 30, "30-step Carlini–Wagner at L2 ε = 1"),
    ("an older card's text", 0.1, None, "an older card's text at ε = 0.1"),
    ("PGD-linf eps=0.0314", 0.0314, None, "PGD-linf eps=0.0314 at L∞ ε = 8/255"),
    ("pgd-linf", None, 20, "PGD (L∞)")])  # a card without its budget: the attack's name alone
def test_an_attack_at_its_budget_reads_in_words_with_linf_radii_in_255ths(name, eps, steps, words):
    from sia_core.attacks import attack_label

    assert attack_label(name, eps, steps) == words
