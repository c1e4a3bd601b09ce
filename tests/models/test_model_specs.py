"""Model specs end to end: python:FILE.py:FACTORY, torchvision:NAME and exported:FILE.pt2 load into the one wrapper
with a card; class names, normalization and every kind of bad input."""

from __future__ import annotations

import textwrap

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from sia_core.errors import CheckpointError
from sia_core.models.registry import (MODEL_SOURCES, ModelOptions, load_model_and_card, resolve_model_spec,
                                      with_dataset_class_names)
from sia_core.models.user_models import HeadSplit, LogitsOnly

TINY = textwrap.dedent("""
    import torch.nn as nn

    def tiny():
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 4))

    def not_a_module():
        return 42
""")


@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text(TINY)
    return path


def _weights(tmp_path, seed: int = 0, name: str = "tiny.safetensors", prefix: str = "") -> tuple:
    generator = torch.Generator().manual_seed(seed)
    network = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 4))
    for parameter in network.parameters():
        parameter.data = torch.randn(parameter.shape, generator=generator)
    path = tmp_path / name
    state = {prefix + key: value.contiguous() for key, value in network.state_dict().items()}
    if name.endswith(".safetensors"):
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state}, path)
    return network.eval(), path


def test_python_spec_loads_weights_normalizes_and_splits_the_head(tiny_file, tmp_path):
    network, weights = _weights(tmp_path)
    options = ModelOptions.parse(weights=weights, input_shape="3,8,8", mean="0.5", std="0.25", classes="a,b,c,d")
    loaded = load_model_and_card(f"python:{tiny_file}:tiny", options, device=torch.device("cpu"))
    x = torch.rand(5, 3, 8, 8)
    # the wrapper normalizes inside: logits equal the bare network on (x - 0.5) / 0.25
    assert torch.allclose(loaded.model(x), network((x - 0.5) / 0.25), atol=1e-5)
    assert isinstance(loaded.model.network, HeadSplit) and loaded.model.network.head_name == "3"
    features = loaded.model.features(x)
    assert features.shape == (5, 16)
    assert torch.allclose(loaded.model.head(features), loaded.model(x), atol=1e-5)
    card = loaded.card
    assert card.class_names == ("a", "b", "c", "d") and card.input_shape == (3, 8, 8)
    assert card.mean == (0.5, 0.5, 0.5) and card.training["weights"] == str(weights)


def test_python_spec_takes_a_torch_save_wrapper_with_a_module_prefix(tiny_file, tmp_path):
    network, weights = _weights(tmp_path, seed=1, name="tiny.pt", prefix="module.")
    loaded = load_model_and_card(f"python:{tiny_file}:tiny", ModelOptions.parse(weights=weights, input_shape="3,8,8"),
                                 device=torch.device("cpu"))
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(loaded.model(x), network(x), atol=1e-5)  # no --mean/--std: no normalization


def test_numbered_classes_take_the_dataset_names_when_the_counts_match(tiny_file, tmp_path):
    _, weights = _weights(tmp_path)
    loaded = load_model_and_card(f"python:{tiny_file}:tiny", ModelOptions.parse(weights=weights, input_shape="3,8,8"),
                                 device=torch.device("cpu"))
    assert loaded.model.class_names == ("class 0", "class 1", "class 2", "class 3")
    named = with_dataset_class_names(loaded, ("w", "x", "y", "z"))
    assert named.model.class_names == ("w", "x", "y", "z") and named.card.class_names == ("w", "x", "y", "z")
    assert named.model.network is loaded.model.network  # shared, not copied
    assert with_dataset_class_names(loaded, ("only", "three", "names")) is loaded
    given = load_model_and_card(f"python:{tiny_file}:tiny",
                                ModelOptions.parse(weights=weights, input_shape="3,8,8", classes="a,b,c,d"))
    assert with_dataset_class_names(given, ("w", "x", "y", "z")) is given  # names the user gave stay


@pytest.mark.parametrize("spec, options, message", [
    ("python:{file}:tiny", dict(weights="{weights}"), "needs --input-shape"),
    ("python:{file}:tiny", dict(input_shape="3,8,8"), "needs --weights"),
    ("python:{file}:tiny", dict(input_shape="3,9,9", weights="{weights}"), "failed on a"),
    ("python:{file}:tiny", dict(input_shape="3,8,8", weights="{weights}", classes="a,b,c"), "returns 4 logits"),
    ("python:{file}:tiny", dict(input_shape="3,8,8", weights="{weights}", mean="0.1,0.2"), "3 values"),
    ("python:{file}:not_a_module", dict(input_shape="3,8,8", random_init=True), "not a torch.nn.Module"),
    ("python:{file}:missing", dict(input_shape="3,8,8", random_init=True), "no callable"),
    ("python:{dir}/nowhere.py:tiny", dict(input_shape="3,8,8", random_init=True), "not found"),
    ("python:{file}:tiny", dict(input_shape="3,8,8", weights="{dir}/absent.pt"), "not found"),
    ("python:{file}:tiny", dict(input_shape="3,8,8", weights="{junk}"), "not a valid"),
    ("python:{file}:tiny", dict(input_shape="3,8,8", weights="{nan}"), "NaN or Inf"),
    ("python:{file}:tiny", dict(input_shape="3,8,8", weights="{other}"), "missing"),
    ("torchvision:not_a_net", dict(random_init=True), "no classification model"),
    ("exported:{dir}/absent.pt2", dict(), "not found"),
    ("nonexistent-model", dict(), "Unknown model"),
])
def test_bad_model_input_is_one_clear_message(tiny_file, tmp_path, spec, options, message):
    _, weights = _weights(tmp_path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    nan = tmp_path / "nan.safetensors"
    state = dict(nn.Sequential(nn.Flatten(), nn.Linear(192, 16), nn.ReLU(), nn.Linear(16, 4)).state_dict())
    state["1.weight"] = torch.full((16, 192), float("nan"))
    save_file({key: value.contiguous() for key, value in state.items()}, str(nan))
    other = tmp_path / "other.safetensors"
    save_file({"conv.weight": torch.zeros(2, 2)}, str(other))
    fill = {"file": tiny_file, "weights": weights, "dir": tmp_path, "junk": junk, "nan": nan, "other": other}
    with pytest.raises(CheckpointError, match=message):
        load_model_and_card(spec.format(**fill),
                            ModelOptions.parse(**{k: v.format(**fill) if isinstance(v, str) else v
                                                  for k, v in options.items()}))


def test_torchvision_random_init_at_224_and_a_fine_tuned_head_from_weights(tmp_path):
    loaded = load_model_and_card("torchvision:resnet18", ModelOptions(random_init=True), device=torch.device("cpu"))
    model, card = loaded.model, loaded.card
    assert model.input_shape == (3, 224, 224) and model.num_classes == 1000
    assert card.class_names[0] == "tench"  # ImageNet names from the weights enum's meta
    assert card.mean == pytest.approx((0.485, 0.456, 0.406)) and model.network.head_name == "fc"
    assert model(torch.rand(1, 3, 224, 224)).shape == (1, 1000)
    # a 5-class fine-tune saved by the user: the head's shape in the file sets the class count
    from torchvision.models import resnet18
    tuned = resnet18(num_classes=5).eval()
    save_file({k: v.contiguous() for k, v in tuned.state_dict().items()}, str(tmp_path / "tuned.safetensors"))
    loaded = load_model_and_card("torchvision:resnet18",
                                 ModelOptions.parse(weights=tmp_path / "tuned.safetensors", input_shape="3,64,64"),
                                 device=torch.device("cpu"))
    x = torch.rand(2, 3, 64, 64)
    mean = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
    assert loaded.model.num_classes == 5 and loaded.card.training["class_names"] == "numbered"
    assert torch.allclose(loaded.model(x), tuned((x - mean) / std), atol=1e-4)


def test_exported_program_loads_from_the_command_line_only(tmp_path):
    network = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(network, (torch.rand(2, 3, 2, 2),), dynamic_shapes=({0: batch},))
    torch.export.save(program, tmp_path / "model.pt2")
    loaded = load_model_and_card(f"exported:{tmp_path / 'model.pt2'}", ModelOptions(), device=torch.device("cpu"))
    x = torch.rand(4, 3, 2, 2)
    assert loaded.model.input_shape == (3, 2, 2) and torch.allclose(loaded.model(x), network(x), atol=1e-6)
    assert isinstance(loaded.model.network, LogitsOnly)
    with pytest.raises(CheckpointError, match="exposes only its logits"):
        loaded.model.features(x)
    # sources that run code are marked, so the app never offers them to a visitor
    assert {entry.name for entry in MODEL_SOURCES if entry.traits.get("code")} == {"python", "exported"}


def test_spec_prefixes_resolve_to_their_sources():
    assert resolve_model_spec("torchvision:resnet18")[0].name == "torchvision"
    assert resolve_model_spec("python:a/b.py:Net") == (MODEL_SOURCES["python"], "a/b.py:Net")
    assert resolve_model_spec("fmnist-standard")[0].name == "shipped"
