"""One model object serves every session thread (`st.cache_resource`): a loaded model is frozen once, the engine
never flips its flags, and hooks see only their own thread's forward passes, so overlapping calls give the
single-thread results exactly."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import pytest
import torch
from torch import nn

from sia_core.attacks import PGD, SemanticAttack
from sia_core.data.catalog import load_dataset
from sia_core.models.registry import load_model_and_card, with_dataset_class_names
from sia_core.models.user_models import HeadSplit
from sia_core.models.wrapper import ClassifierWrapper, freeze_for_inference, frozen_eval
from sia_core.regions.importance import GradCAM, GradientSaliency, default_cam_layer
from tests.conftest import make_wrapper

THREADS = 8
ROUNDS = 3  # each thread runs every task this many times, in a different order each round
IMAGES = 16


def _is_frozen(model: nn.Module) -> bool:
    return not any(module.training for module in model.modules()) and not any(
        parameter.requires_grad for parameter in model.parameters())


def _features(model: ClassifierWrapper, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.features(images)


def _tasks(model: ClassifierWrapper, images: torch.Tensor, labels: torch.Tensor
           ) -> dict[str, Callable[[], torch.Tensor]]:
    return {
        "pgd": lambda: PGD(eps=8 / 255, norm="linf", steps=10, seed=0)(model, images, labels).images,
        "sia": lambda: SemanticAttack(steps=10, seed=0)(model, images, labels).images,
        "proba": lambda: model.predict_proba(images),
        "logits": lambda: model.logits(images),
        "features": lambda: _features(model, images),
        "gradcam": lambda: GradCAM()(model, images, labels),  # resolves its default layer with hooks each call
        "saliency": lambda: GradientSaliency()(model, images, labels),
        "cam_layer": lambda: torch.tensor([len(default_cam_layer(model))]),
    }


def _run_concurrently(tasks: dict[str, Callable[[], torch.Tensor]]) -> list[tuple[str, torch.Tensor]]:
    """Every task from `THREADS` threads at once, `ROUNDS` times, each thread starting at another task."""
    names = list(tasks)
    barrier = threading.Barrier(THREADS)

    def worker(offset: int) -> list[tuple[str, torch.Tensor]]:
        barrier.wait()
        results = []
        for round_ in range(ROUNDS):
            for k in range(len(names)):
                name = names[(offset + round_ + k) % len(names)]
                results.append((name, tasks[name]()))
        return results

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(worker, offset) for offset in range(THREADS)]
        return [pair for future in futures for pair in future.result()]


@pytest.mark.parametrize("model_id, dataset", [("fmnist-standard", "fashion-mnist-subset"),
                                               ("cifar10-standard", "cifar10-subset")])  # the second has BatchNorm
def test_overlapping_calls_on_one_shared_model_match_the_single_thread_results(model_id, dataset):
    loaded = load_model_and_card(model_id)
    model = loaded.model
    assert _is_frozen(model)
    data = load_dataset(dataset, "test", n=IMAGES)
    images, labels = data.images, data.labels
    tasks = _tasks(model, images, labels)
    reference = {name: task() for name, task in tasks.items()}
    results = _run_concurrently(tasks)
    assert len(results) == THREADS * ROUNDS * len(tasks)
    mismatched = sorted({name for name, result in results if not torch.equal(result, reference[name])})
    assert not mismatched, f"results differ from the single-thread ones under concurrency: {mismatched}"
    assert _is_frozen(model)


def test_head_split_features_see_only_their_own_forward_pass():
    torch.manual_seed(0)
    network = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 4))
    split = freeze_for_inference(HeadSplit(network, "3"))
    generator = torch.Generator().manual_seed(0)
    batches = [torch.rand(IMAGES, 1, 8, 8, generator=generator) for _ in range(THREADS)]
    reference = [split.features(batch) for batch in batches]
    barrier = threading.Barrier(THREADS)

    def worker(index: int) -> bool:
        barrier.wait()
        same = True
        for _ in range(50):
            split(batches[(index + 1) % THREADS])  # another input through the same head, in between
            same &= torch.equal(split.features(batches[index]), reference[index])
        return same

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        assert all(pool.map(worker, range(THREADS)))


def test_a_loaded_model_and_its_renamed_wrapper_are_frozen_and_share_everything():
    loaded = load_model_and_card("fmnist-standard")
    model = loaded.model
    assert _is_frozen(model)
    names = tuple(f"class {k}" for k in range(model.num_classes))
    renamed = model.with_class_names(names)
    assert _is_frozen(renamed) and renamed.class_names == names
    assert renamed.network is model.network and renamed.mean is model.mean and renamed.std is model.std
    assert with_dataset_class_names(loaded, names) is loaded  # a shipped model keeps its own names


def test_overlapping_frozen_eval_blocks_leave_a_loaded_model_frozen():
    """The issue's interleaving: one session's block ends while another's is still running."""
    model = load_model_and_card("fmnist-standard").model
    first, second = frozen_eval(model), frozen_eval(model)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert _is_frozen(model)  # the second session is still mid-attack
    second.__exit__(None, None, None)
    assert _is_frozen(model)


def test_frozen_eval_does_not_touch_a_frozen_model(monkeypatch):
    model = freeze_for_inference(make_wrapper(architecture="tiny-cnn"))
    calls: list[str] = []
    original_train, original_requires_grad = nn.Module.train, torch.Tensor.requires_grad_
    monkeypatch.setattr(nn.Module, "train", lambda self, mode=True: calls.append("train") or original_train(self, mode))
    monkeypatch.setattr(torch.Tensor, "requires_grad_",
                        lambda self, flag=True: calls.append("requires_grad_") or original_requires_grad(self, flag))
    with frozen_eval(model):
        assert _is_frozen(model)
    assert calls == []
    assert _is_frozen(model)


def test_frozen_eval_still_freezes_and_restores_a_model_in_training():
    model = make_wrapper(architecture="tiny-cnn").train()
    model.network.head.bias.requires_grad_(False)  # a mixed state comes back as it was
    flags = [parameter.requires_grad for parameter in model.parameters()]
    with frozen_eval(model):
        assert _is_frozen(model)
    assert model.training and all(module.training for module in model.modules())
    assert [parameter.requires_grad for parameter in model.parameters()] == flags
    model.eval()  # a trainable model in eval mode (training's attack step between epochs) is frozen and restored too
    with frozen_eval(model):
        assert _is_frozen(model)
    assert not model.training and [parameter.requires_grad for parameter in model.parameters()] == flags
