"""Training recipes learn, and adversarial training buys robustness on a problem where that is known."""

from __future__ import annotations

import pytest
import torch

from sia_core.attacks import FGSM, PGD, SemanticAttack
from sia_core.augmentation import RandomAttributes
from sia_core.data.base import ImageDataset
from sia_core.data.catalog import load_dataset
from sia_core.errors import ConfigError
from sia_core.evaluation import evaluate
from sia_core.training import (RECIPES, TradesAdversary, TrainConfig, _adversarial_batch, channel_statistics, crop_flip,
                               train)
from tests.conftest import make_wrapper


def _two_blob_dataset(n: int = 512, seed: int = 0) -> ImageDataset:
    """Two classes with a robust cue (overall brightness, noisy per image) and a non-robust one
    (a faint checkerboard whose sign is the class, noiseless): standard training leans on the
    checkerboard, which an L-inf attack of 0.06 can flip; adversarial training cannot use it."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=generator)
    sign = (2 * labels - 1).float().view(-1, 1, 1, 1)
    brightness = 0.5 + 0.12 * sign + 0.04 * torch.randn(n, 1, 1, 1, generator=generator)
    checker = ((torch.arange(8).view(1, 8) + torch.arange(8).view(8, 1)) % 2) * 2 - 1
    images = brightness + 0.04 * sign * checker + 0.02 * torch.randn(n, 1, 8, 8, generator=generator)
    return ImageDataset("blobs", images.clamp(0, 1), labels, ("dark", "bright"))


@pytest.mark.parametrize("recipe", ["standard", "pgd", "fgsm-rs", "trades", "pgd-l2"])
def test_each_recipe_learns_the_task(recipe):
    data = _two_blob_dataset()
    model = make_wrapper(classes=2, seed=1)
    config = TrainConfig(recipe=recipe, epochs=3, batch_size=64, learning_rate=3e-3, eps=0.05, attack_steps=3, seed=0)
    history = train(model, data, config)
    assert len(history.epoch_loss) == 3 and history.epoch_loss[-1] < history.epoch_loss[0]
    assert evaluate(model, _two_blob_dataset(seed=1)).clean_accuracy > 0.95


def test_adversarial_training_is_more_robust_than_standard():
    data, test = _two_blob_dataset(1024), _two_blob_dataset(512, seed=3)
    attack = PGD(eps=0.1, steps=10, seed=0)
    robust = {}
    for recipe in ("standard", "pgd", "trades"):
        model = make_wrapper(classes=2, seed=2)
        train(model, data, TrainConfig(recipe=recipe, epochs=4, batch_size=64, learning_rate=3e-3, eps=0.1,
                                       attack_steps=5, seed=0))
        robust[recipe] = evaluate(model, test, attack=attack).robust_accuracy
    assert robust["pgd"] > robust["standard"] + 0.1, robust
    assert robust["trades"] > robust["standard"] + 0.1, robust


def test_training_is_reproducible_with_a_seed():
    data = _two_blob_dataset(128)
    outputs = []
    for _ in range(2):
        model = make_wrapper(classes=2, seed=5)
        train(model, data, TrainConfig(epochs=1, batch_size=32, seed=7))
        outputs.append(model.logits(data.images[:4]))
    torch.testing.assert_close(outputs[0], outputs[1])


def test_training_leaves_the_global_generator_alone():
    data, model = _two_blob_dataset(64), make_wrapper(classes=2)  # make_wrapper seeds the global generator itself
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(model, data, TrainConfig(epochs=1, batch_size=32, seed=7))
    torch.testing.assert_close(torch.rand(3), expected)


def test_recipes_build_their_per_batch_adversary():
    assert RECIPES.names() == ("standard", "pgd", "pgd-l2", "trades", "fgsm-rs", "sia", "random-attributes")
    assert RECIPES.build("standard", eps=0.1, steps=3, seed=5) is None
    assert RECIPES.build("pgd", eps=0.1, steps=3, seed=5) == PGD(eps=0.1, norm="linf", steps=3, seed=5)
    assert RECIPES.build("pgd-l2", eps=1.5, steps=3, seed=5) == PGD(eps=1.5, norm="l2", steps=3, seed=5)
    assert RECIPES.build("trades", eps=0.1, steps=3, seed=5) == TradesAdversary(eps=0.1, steps=3, seed=5)
    assert RECIPES.build("fgsm-rs", eps=0.1, steps=3, seed=5) == FGSM(eps=0.1, random_start=True, seed=5)
    assert RECIPES.build("sia", eps=0.02, steps=5, seed=5) == SemanticAttack(steps=5, eps_linf=0.02, seed=5)
    assert RECIPES.build("random-attributes", eps=0.02, steps=5, seed=5) == RandomAttributes(eps_linf=0.02, seed=5)
    for entry in RECIPES:
        assert entry.label and entry.description
        assert entry.traits["adversarial"] == (entry.name in ("pgd", "pgd-l2", "trades", "fgsm-rs", "sia"))
        assert entry.traits["mix"] == {"standard": 0.0, "sia": 0.5, "random-attributes": 0.5}.get(entry.name, 1.0)


def test_half_of_a_batch_is_attacked_by_the_mixed_recipes():
    data = _two_blob_dataset(8)
    model = make_wrapper(classes=2, seed=1)
    for recipe in ("sia", "random-attributes"):
        config = TrainConfig(recipe=recipe, eps=0.05, attack_steps=2)
        batch = _adversarial_batch(model, data.images, data.labels, config, eps=0.05, generator_seed=3)
        changed = (batch - data.images).flatten(1).abs().amax(1) > 0
        assert changed[:4].all() and not changed[4:].any(), (recipe, changed)


def test_the_trades_attack_moves_the_prediction_inside_the_ball():
    data = _two_blob_dataset(64)
    model = make_wrapper(classes=2, seed=1)
    train(model, data, TrainConfig(epochs=2, batch_size=32, learning_rate=3e-3))
    adversary = TradesAdversary(eps=0.05, steps=5, seed=0)
    adversarial = adversary.perturb(model, data.images, data.labels)
    assert (adversarial - data.images).abs().max() <= 0.05 + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    clean = torch.softmax(model.logits(data.images), 1)
    def divergence(images):
        return torch.nn.functional.kl_div(torch.log_softmax(model.logits(images), 1), clean, reduction="sum")
    noise = (data.images + 0.05 * torch.sign(torch.randn(data.images.shape, generator=torch.Generator().manual_seed(1)))
             ).clamp(0, 1)
    assert divergence(adversarial) > divergence(noise) > 0  # the climb beats random corners of the same ball
    assert torch.equal(adversarial, adversary.perturb(model, data.images, data.labels))  # seeded


def test_crop_flip_moves_whole_images_and_is_drawn_from_the_generator():
    images = torch.rand(16, 3, 8, 8)
    first = crop_flip(images, torch.Generator().manual_seed(0))
    assert first.shape == images.shape
    assert torch.equal(first, crop_flip(images, torch.Generator().manual_seed(0)))
    # each output is a shifted (and maybe mirrored) window of its own padded image: its centre 0..4 region survives
    # intact somewhere, and the image's pixel values never mix with another image's
    for out, image in zip(first, images):
        values = set(out.flatten().tolist()) - {0.0}
        assert values <= set(image.flatten().tolist()) and len(values) >= 16
    augmented = TrainConfig(augment="crop-flip")
    assert augmented.augment == "crop-flip"


def test_sia_training_lowers_the_success_of_sia_against_the_trained_model():
    """A tiny run on real images (the embedded Fashion-MNIST subset): the same start, trained with and without SIA
    examples, then attacked by the full SIA on held-out images it classifies correctly."""
    images = load_dataset("fashion-mnist-subset")
    data = ImageDataset("train", images.images[:800], images.labels[:800], images.class_names)
    test = ImageDataset("test", images.images[800:], images.labels[800:], images.class_names)
    attack = SemanticAttack(steps=5, eps_linf=2 / 255, seed=0)  # the strength it trained against (measured: 0.86 → 0.58)
    success = {}
    for recipe in ("standard", "sia"):
        model = make_wrapper(channels=1, size=28, classes=10, seed=3)
        train(model, data, TrainConfig(recipe=recipe, epochs=6, batch_size=64, learning_rate=3e-3, eps=2 / 255,
                                       attack_steps=5, seed=0))
        correct = model.logits(test.images).argmax(1) == test.labels
        success[recipe] = attack(model, test.images[correct], test.labels[correct]).success_rate
    assert success["sia"] < success["standard"] - 0.15, success


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path):
    data = _two_blob_dataset(256)
    config = TrainConfig(recipe="fgsm-rs", epochs=3, batch_size=64, learning_rate=3e-3, eps=0.05, seed=2)
    straight = make_wrapper(classes=2, seed=6)
    train(straight, data, config)
    checkpoint = tmp_path / "run.pt"
    interrupted = make_wrapper(classes=2, seed=6)

    def stop_after_two_epochs(epoch: int, total: int, info: dict) -> None:
        if epoch == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, data, config, progress=stop_after_two_epochs, checkpoint=checkpoint)
    resumed = make_wrapper(classes=2, seed=99)  # a fresh process: other initial weights, all restored from the file
    history = train(resumed, data, config, checkpoint=checkpoint)
    assert len(history.epoch_loss) == 3
    torch.testing.assert_close(resumed.logits(data.images), straight.logits(data.images))
    with pytest.raises(ConfigError, match="different training config"):
        train(make_wrapper(classes=2), data, TrainConfig(epochs=5, seed=2), checkpoint=checkpoint)


def test_a_step_budget_and_class_weights_do_what_they_say():
    data = _two_blob_dataset(256)
    seen = []
    train(make_wrapper(classes=2), data, TrainConfig(epochs=1, batch_size=64, steps=10),
          progress=lambda epoch, total, info: seen.append((epoch, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]  # 10 steps of 4 per pass: three passes, the last one cut short
    # a zero weight on class 1 means its images teach nothing: the model never learns to say "bright"
    model = make_wrapper(classes=2, seed=1)
    train(model, data, TrainConfig(epochs=3, batch_size=64, learning_rate=3e-3, class_weights=(1.0, 0.0)))
    assert (model.logits(data.images).argmax(1) == 0).all()


BAD_TRAIN_CONFIGS = [
    {"recipe": "trades"}, {"recipe": "pgd-l2"}, {"recipe": "mixup"}, {"trades_beta": -1.0}, {"augment": "mixup"},
    {"recipe": "pgd", "eps": 0.0}, {"recipe": "fgsm-rs"}, {"eps": -0.1}, {"epochs": 0},
    {"epochs": 2.5}, {"batch_size": 0}, {"learning_rate": 0.0}, {"learning_rate": -1e-3}, {"weight_decay": -1e-4},
    {"attack_steps": 0}, {"eps_warmup_epochs": -1.0}, {"seed": 0.5}, {"recipe": "sia"}, {"steps": 0},
    {"class_weights": (1.0, -1.0)}, {"class_weights": ()},
]


@pytest.mark.parametrize("options", BAD_TRAIN_CONFIGS, ids=repr)
def test_bad_train_configs_are_refused(options):
    with pytest.raises(ConfigError):
        TrainConfig(**options)


def test_config_messages_and_channel_statistics():
    for good in (TrainConfig(), TrainConfig(recipe="fgsm-rs", eps=0.1, eps_warmup_epochs=2)):
        assert good.seed == 0
    with pytest.raises(ConfigError, match="needs eps > 0"):
        TrainConfig(recipe="pgd", eps=0.0)
    with pytest.raises(ConfigError, match="Unknown recipe 'mixup'; choose one of standard, pgd, pgd-l2, trades, fgsm-rs"):
        TrainConfig(recipe="mixup")
    mean, std = channel_statistics(ImageDataset("c", torch.full((4, 2, 3, 3), 0.25), torch.zeros(4, dtype=torch.long), ("a",)))
    assert mean == [0.25, 0.25] and std == [0.001, 0.001]


def test_evaluate_counts_and_progress(tiny_model, tiny_batch):
    images, labels = tiny_batch
    data = ImageDataset("t", images, labels, tuple(tiny_model.class_names))
    seen = []
    report = evaluate(tiny_model, data, attack=PGD(eps=0.0, steps=1), n=10, batch_size=4,
                      progress=lambda s, t, i: seen.append((s, t)))
    expected = float((tiny_model.logits(images[:10]).argmax(1) == labels[:10]).float().mean())
    assert report.n == 10 and report.clean_accuracy == pytest.approx(expected)
    assert report.robust_accuracy == pytest.approx(expected)  # eps = 0 cannot change anything
    assert seen == [(1, 3), (2, 3), (3, 3)]
    for bad in ({"n": 0}, {"n": -5}, {"batch_size": 0}):
        with pytest.raises(ConfigError):
            evaluate(tiny_model, data, **bad)
