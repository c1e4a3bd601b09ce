"""The model wrapper: normalization, shapes, device and the eval/no-grad context."""

from __future__ import annotations

import pytest
import torch

from sia_core.models.wrapper import default_device, frozen_eval
from tests.conftest import make_wrapper


def test_forward_normalizes_inside_and_returns_logits(tiny_model, tiny_batch):
    images, _ = tiny_batch
    logits = tiny_model(images)
    assert logits.shape == (16, 4)
    expected = tiny_model.network((images - 0.5) / 0.25)
    torch.testing.assert_close(logits, expected)


def test_single_image_without_batch_dimension_is_accepted(tiny_model, tiny_batch):
    images, _ = tiny_batch
    assert tiny_model(images[0]).shape == (1, 4)


def test_wrong_input_shape_names_the_expected_shape(tiny_model):
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 1, 8, 8\)"):
        tiny_model(torch.rand(2, 3, 8, 8))


def test_features_feed_the_head(tiny_model, tiny_batch):
    images, _ = tiny_batch
    torch.testing.assert_close(tiny_model.head(tiny_model.features(images)), tiny_model(images))


def test_predict_proba_sums_to_one_and_keeps_training_mode(tiny_model, tiny_batch):
    tiny_model.train()
    probabilities = tiny_model.predict_proba(tiny_batch[0], batch_size=5)
    assert probabilities.shape == (16, 4)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(16))
    assert tiny_model.training


def test_frozen_eval_restores_mode_and_grad_flags_even_on_error():
    model = make_wrapper()
    model.train()
    first = next(model.parameters())
    first.requires_grad_(False)  # a mixed state must come back exactly
    with pytest.raises(RuntimeError):
        with frozen_eval(model):
            assert not model.training
            assert not any(p.requires_grad for p in model.parameters())
            raise RuntimeError("boom")
    assert model.training
    assert not first.requires_grad
    assert all(p.requires_grad for p in list(model.parameters())[1:])


@pytest.mark.parametrize("cuda, expected", [(True, "cuda"), (False, "cpu")])
def test_default_device_is_the_gpu_when_there_is_one(monkeypatch, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert default_device() == torch.device(expected)


def test_the_wrapper_moves_inputs_to_its_device(tiny_batch):
    # the meta device stands in for a GPU: tensors with shapes and no data, available everywhere
    model = make_wrapper().to("meta")
    assert model.device.type == "meta" and model.mean.device.type == "meta"
    assert model(tiny_batch[0]).device.type == "meta"  # CPU images in, computed where the weights live
    assert model.features(tiny_batch[0]).device.type == "meta"


def test_mean_std_must_match_channels():
    from sia_core.models.architectures import build_architecture
    from sia_core.models.wrapper import ClassifierWrapper

    with pytest.raises(ValueError, match="one per channel"):
        ClassifierWrapper(build_architecture("mlp", 3, 8, 2), mean=[0.5], std=[0.2], input_shape=(3, 8, 8),
                          class_names=["a", "b"])


def test_batched_logits_report_each_batch_and_equal_one_pass():
    model = make_wrapper()
    images = torch.rand(10, 1, 8, 8)
    heard: list[tuple[int, int, int]] = []
    logits = model.logits(images, batch_size=4, progress=lambda step, total, info: heard.append(
        (step, total, info["images"])))
    assert heard == [(1, 3, 4), (2, 3, 8), (3, 3, 10)]
    with torch.no_grad():
        assert torch.allclose(logits, model(images), atol=1e-6)
    assert torch.allclose(model.predict_proba(images, batch_size=4), torch.softmax(logits, 1), atol=1e-6)
