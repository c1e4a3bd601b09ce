"""The one resolver: a model spec and a data spec become the model with its card, the test set fitted to the model,
and the training split when a study asks for it (or a clear error that says what to give)."""

from __future__ import annotations

import pytest

from sia_core.errors import SiaError
from sia_core import resolve as resolver
from sia_core.resolve import resolve, resolve_group, training_split


def test_a_shipped_model_resolves_on_its_own_dataset():
    subject = resolve("fmnist-standard", n=40)
    assert subject.card.id == "fmnist-standard" and subject.dataset_spec == subject.card.dataset
    assert len(subject.test_set) == 40 and subject.test_set.image_shape == subject.model.input_shape
    assert subject.train_set is None  # not asked for


def test_a_data_spec_fits_the_test_set_to_the_model():
    # the embedded Fashion-MNIST images are 1 x 28 x 28; the CIFAR-10 model takes 3 x 32 x 32
    subject = resolve("cifar10-standard", "fashion-mnist-subset", n=8)
    assert subject.test_set.image_shape == (3, 32, 32) and len(subject.test_set) == 8
    with pytest.raises(SiaError):  # 5 Shapes classes cannot be scored by a 10-class model
        resolve("fmnist-standard", "shapes", n=8)


def test_the_training_split_is_optional_or_required():
    assert training_split("fashion-mnist-subset") is None  # the embedded subset has no training split
    subject = resolve("fmnist-standard", "fashion-mnist-subset", n=4, train_split="optional")
    assert subject.train_set is None
    with pytest.raises(SiaError, match="This study trains on the training split"):
        resolve("fmnist-standard", "fashion-mnist-subset", n=4, train_split="required")
    shapes = training_split("shapes", image_shape=(3, 32, 32), n=16)
    assert shapes is not None and len(shapes) == 16


def test_a_group_shares_the_first_models_test_set():
    first, group = resolve_group(["fmnist-standard", "fmnist-robust"], n=12)
    assert [loaded.card.id for loaded in group] == ["fmnist-standard", "fmnist-robust"]
    assert len(first.test_set) == 12 and group[0] is first.loaded
    with pytest.raises(SiaError, match="at least one model"):
        resolve_group([])


def test_the_test_split_falls_back_to_the_shipped_subset_only_for_the_default_folder(tmp_path):
    assert len(resolver.test_split("fashion-mnist-subset", n=5)) == 5
    with pytest.raises(SiaError):
        resolver.test_split(f"fashion-mnist:{tmp_path / 'missing'}")  # a folder the user named is never swapped silently
