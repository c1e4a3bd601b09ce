"""Constructed datasets: exact relabelling, images in [0, 1] and in the ε-ball, representation matching works,
saved sets round-trip and resume, and training on them reports accuracies on the original test set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sia_core.data.base import ImageDataset
from sia_core.errors import DataError
from sia_core.features import (ConstructedSet, ConstructionConfig, build_constructed_set, relabel_targets,
                               train_on_constructed, transfer_study)
from tests.conftest import make_wrapper


@pytest.fixture(scope="module")
def tiny_train() -> ImageDataset:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % 4
    images = (labels.float().view(-1, 1, 1, 1) / 4 + 0.1 * torch.rand(40, 1, 8, 8, generator=generator)).clamp(0, 1)
    return ImageDataset("tiny-train", images, labels, ("a", "b", "c", "d"))


@pytest.fixture(scope="module")
def tiny_model():
    return make_wrapper(channels=1, size=8, classes=4, seed=3, architecture="mlp")


def test_relabelling_is_exact():
    labels = torch.tensor([0, 1, 2, 3, 3])
    assert relabel_targets(labels, "d_det", 4, seed=0).tolist() == [1, 2, 3, 0, 0]
    first, second = relabel_targets(labels, "d_rand", 4, seed=5), relabel_targets(labels, "d_rand", 4, seed=5)
    assert torch.equal(first, second) and int(first.min()) >= 0 and int(first.max()) < 4


@pytest.mark.parametrize("kind", ["d_det", "d_rand"])
def test_relabelled_sets_stay_in_the_box_and_the_ball(tiny_model, tiny_train, kind):
    config = ConstructionConfig(kind=kind, n=24, eps=0.5, steps=10, step_size=0.1, batch_size=10)
    built = build_constructed_set(tiny_model, tiny_train, config)
    assert len(built) == 24 and built.images.min() >= 0 and built.images.max() <= 1
    sources = tiny_train.images[built.source_indices]
    assert torch.all((built.images - sources).flatten(1).norm(dim=1) <= 0.5 + 1e-5)
    assert torch.equal(built.original_labels, tiny_train.labels[built.source_indices])
    expected = relabel_targets(built.original_labels, kind, 4, seed=0)
    assert torch.equal(built.labels, expected)
    assert 0 <= built.metric["targeted_success_rate"] <= 1


@pytest.mark.parametrize("kind", ["d_r", "d_nr"])
def test_representation_matching_lowers_the_error_and_starts_elsewhere(tiny_model, tiny_train, kind):
    built = build_constructed_set(tiny_model, tiny_train, ConstructionConfig(kind=kind, n=20, steps=60, step_size=0.05))
    assert built.metric["relative_representation_error"] < 0.5 * built.metric["relative_representation_error_at_start"]
    assert torch.all(built.start_indices != built.source_indices)  # a random *other* image
    assert torch.equal(built.labels, built.original_labels)        # D_R / D_NR keep the source label
    assert built.images.min() >= 0 and built.images.max() <= 1


def test_saved_sets_round_trip_and_resume(tiny_model, tiny_train, tmp_path):
    path = tmp_path / "det.npz"
    config = ConstructionConfig(kind="d_det", n=20, eps=0.5, steps=5, batch_size=10)
    built = build_constructed_set(tiny_model, tiny_train, config, out=path)
    loaded = ConstructedSet.load(path)
    assert loaded.config == config and loaded.source_model == built.source_model
    assert torch.allclose(loaded.images, built.images, atol=1e-3)  # stored as float16
    assert torch.equal(loaded.labels, built.labels) and torch.equal(loaded.source_indices, built.source_indices)
    calls = []
    resumed = build_constructed_set(tiny_model, tiny_train, config, out=path, progress=lambda *a: calls.append(a))
    assert calls == [] and torch.allclose(resumed.images, loaded.images)  # nothing left to build


def test_bad_files_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(3))
    with pytest.raises(DataError, match="not a constructed dataset"):
        ConstructedSet.load(bad)
    with pytest.raises(ValueError, match="Unknown kind"):
        ConstructionConfig(kind="d_x")  # type: ignore[arg-type]


def test_training_on_a_constructed_set_reports_original_test_accuracy(tiny_model, tiny_train):
    built = build_constructed_set(tiny_model, tiny_train, ConstructionConfig(kind="d_nr", n=40, steps=20))
    model, result = train_on_constructed(built.as_dataset(), tiny_train, kind="d_nr", architecture="mlp", epochs=2,
                                         eval_eps=0.1, eval_steps=3, eval_n=20)
    assert result.n_train == 40 and len(result.epoch_test_accuracy) == 2
    assert 0 <= result.robust_accuracy <= result.test_accuracy <= 1
    assert model.input_shape == (1, 8, 8)


def test_transfer_study_gives_one_point_per_architecture_and_grows_with_the_attack():
    from sia_core.training import TrainConfig, train

    generator = torch.Generator().manual_seed(1)
    labels = torch.arange(400) % 4
    images = (labels.float().view(-1, 1, 1, 1) / 4 + 0.1 * torch.rand(400, 1, 8, 8, generator=generator)).clamp(0, 1)
    data = ImageDataset("levels", images, labels, ("a", "b", "c", "d"))
    source = make_wrapper(channels=1, size=8, classes=4, seed=5, architecture="mlp")
    train(source, data, TrainConfig(epochs=30))
    det = build_constructed_set(source, data, ConstructionConfig(kind="d_det", n=400, eps=1.0, steps=10))
    kwargs = dict(epochs=30, attack_steps=10, attack_n=100)
    weak = transfer_study(source, det, data, data, ("mlp", "tiny-cnn"), attack_eps=1e-4, **kwargs)
    strong = transfer_study(source, det, data, data, ("mlp", "tiny-cnn"), attack_eps=3.0, **kwargs)
    assert [p.architecture for p in weak] == ["mlp", "tiny-cnn"]
    for low, high in zip(weak, strong):
        assert low.standard_accuracy == high.standard_accuracy > 0.9  # same seed, same training: same model
        assert low.transfer_success == 0.0  # a 1e-4 step cannot flip a confident, correct decision
        assert high.transfer_success > 0.5  # an L2 step of 3 moves these images into another class's intensity
        assert 0 <= high.accuracy_from_det <= 1
    with pytest.raises(DataError, match="trains on D̂_det"):
        transfer_study(source, build_constructed_set(source, data, ConstructionConfig(kind="d_nr", n=8, steps=2)),
                       data, data, ("mlp",))
