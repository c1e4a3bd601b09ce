"""Model cards and checkpoints: round trips, and clear messages for every kind of bad file."""

from __future__ import annotations

import json

import pytest
import torch

from sia_core.errors import CheckpointError, ConfigError
from sia_core.models.registry import (CARD_FILE, MODEL_SOURCES, WEIGHTS_FILE, ModelCard, build_model,
                                      list_model_cards, load_model, model_folder, read_card, read_state_dict,
                                      require_model_id, resolve_model_spec, round_weights, save_model)

CARD = ModelCard(id="unit", dataset="fashion-mnist", architecture="tiny-cnn", input_shape=(1, 28, 28),
                 class_names=tuple(str(i) for i in range(10)), mean=(0.286,), std=(0.353,),
                 training={"recipe": "standard", "seed": 0},
                 evaluations=({"test_set": "t", "n": 1, "clean_accuracy": 1.0},))


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model(CARD)
    save_model(model, CARD, tmp_path / "unit")
    return model, tmp_path


def test_save_and_load_round_trip(saved):
    model, models_dir = saved
    loaded = load_model("unit", models_dir=models_dir)
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(loaded(x), model(x))
    assert read_card(models_dir / "unit") == CARD
    assert [c.id for c in list_model_cards(models_dir)] == ["unit"]


def test_float16_weights_halve_the_file_and_load_back_as_the_rounded_model(saved, tmp_path):
    model, models_dir = saved
    x = torch.rand(8, 1, 28, 28)
    full = model(x)
    round_weights(model, "float16")
    rounded = model(x)
    assert not torch.equal(full, rounded) and torch.allclose(full, rounded, atol=1e-2)  # rounded, not retrained
    save_model(model, CARD, tmp_path / "half" / "unit", dtype="float16")
    half_file = (tmp_path / "half" / "unit" / WEIGHTS_FILE).stat().st_size
    assert half_file < 0.55 * (models_dir / "unit" / WEIGHTS_FILE).stat().st_size
    assert all(t.dtype == torch.float16 for t in read_state_dict(tmp_path / "half" / "unit" / WEIGHTS_FILE).values())
    loaded = load_model("unit", models_dir=tmp_path / "half")
    assert next(loaded.parameters()).dtype == torch.float32
    assert torch.equal(loaded(x), rounded)  # what the card measured is what the file gives


def test_pt_state_dict_loads_with_weights_only(saved, tmp_path):
    model, _ = saved
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": model.state_dict()}, path)  # wrapper keys, nested: both accepted
    rebuilt = build_model(CARD, read_state_dict(path))
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(rebuilt(x), model(x))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(1), "extra": object()}, path)
    with pytest.raises(CheckpointError, match="not a valid PyTorch weights-only file"):
        read_state_dict(path)


@pytest.mark.parametrize("content, message", [
    (b"", "not a valid safetensors file"),
    (b"\x00" * 64, "not a valid safetensors file"),
])
def test_corrupt_safetensors(tmp_path, content, message):
    path = tmp_path / "w.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        read_state_dict(path)


def test_wrong_shaped_checkpoint_names_the_architecture(saved, tmp_path):
    rgb_card = ModelCard(**{**CARD.__dict__, "input_shape": (3, 32, 32), "mean": (0.5,) * 3, "std": (0.2,) * 3})
    state = read_state_dict(saved[1] / "unit" / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match="do not fit the tiny-cnn architecture") as wrong_size:
        build_model(rgb_card, state)
    # the tensor that differs, in shapes a person reads, not PyTorch's message
    assert "here and" in str(wrong_size.value) and "in the file" in str(wrong_size.value)
    assert "torch.Size" not in str(wrong_size.value)
    with pytest.raises(CheckpointError, match="do not fit") as other:
        build_model(CARD, {"features.0.weight": torch.zeros(1)})
    assert "missing (first: " in str(other.value) and "another architecture" in str(other.value)
    # weights saved from DataParallel carry "module." before every name: they load as they are
    state = read_state_dict(saved[1] / "unit" / WEIGHTS_FILE)
    plain = build_model(CARD, state)
    prefixed = build_model(CARD, {f"module.{key}": value for key, value in state.items()})
    x = torch.rand(2, *CARD.input_shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(prefixed.eval()(x), plain.eval()(x))


def test_missing_and_malformed_cards(saved):
    _, models_dir = saved
    with pytest.raises(CheckpointError, match="Unknown model 'nope'. Known models: unit"):
        load_model("nope", models_dir=models_dir)
    (models_dir / "unit" / CARD_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="not readable JSON"):
        load_model("unit", models_dir=models_dir)
    (models_dir / "unit" / CARD_FILE).write_text(json.dumps({"id": "unit"}))
    with pytest.raises(CheckpointError, match="incomplete or malformed"):
        load_model("unit", models_dir=models_dir)
    assert list_model_cards(models_dir) == []  # an unreadable card hides the model instead of breaking the list


@pytest.mark.parametrize("changes, message", [
    ({"input_shape": (3, 32, 32)}, "mean and std need 3 values"),
    ({"input_shape": (1, 28)}, "input_shape must be"),
    ({"input_shape": (1, 0, 28)}, "input_shape height"),
    ({"std": (0.0,)}, "std must be > 0"),
    ({"class_names": ()}, "class_names must hold at least one name"),
    ({"id": ""}, "needs an id"),
])
def test_inconsistent_card_is_refused_when_made(changes, message):
    with pytest.raises(ConfigError, match=message):
        ModelCard(**{**CARD.__dict__, **changes})


def test_inconsistent_card_on_disk_is_a_checkpoint_error(saved):
    _, models_dir = saved
    data = {**CARD.to_dict(), "mean": [0.5, 0.5, 0.5]}
    (models_dir / "unit" / CARD_FILE).write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="incomplete or malformed.*mean and std need 1 values"):
        load_model("unit", models_dir=models_dir)


def test_unknown_architecture(tmp_path):
    with pytest.raises(CheckpointError, match="unknown architecture"):
        build_model(ModelCard(**{**CARD.__dict__, "architecture": "resnet-9000"}))


def test_a_spec_resolves_to_one_model_source(saved, tmp_path):
    _, models_dir = saved
    folder = models_dir / "unit"
    assert [(entry.name, reference) for entry, reference in (
        resolve_model_spec("unit", models_dir), resolve_model_spec(str(folder), models_dir),
        resolve_model_spec(f"folder:{folder}", models_dir), resolve_model_spec("shipped:unit", models_dir))] == [
        ("shipped", "unit"), ("folder", str(folder)), ("folder", str(folder)), ("shipped", "unit")]
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(load_model(f"folder:{folder}")(x), load_model("unit", models_dir=models_dir)(x))
    assert model_folder("unit", models_dir) == folder and model_folder(str(folder), models_dir) == folder
    with pytest.raises(CheckpointError, match="Model folder not found"):
        load_model(f"folder:{tmp_path / 'absent'}")


def test_a_shipped_id_cannot_leave_the_models_folder(saved):
    _, models_dir = saved
    (models_dir / "inner").mkdir()
    with pytest.raises(CheckpointError, match="Unknown model '../unit'"):
        load_model("../unit", models_dir=models_dir / "inner")


@pytest.mark.parametrize("model_id", ["../x", "a/b", "a\\b", "..", "", "folder:x"])
def test_model_ids_that_are_not_plain_folder_names_are_refused(model_id):
    with pytest.raises(ConfigError, match="plain folder name"):
        require_model_id(model_id)


def test_uploaded_weights_source_builds_the_card_with_those_weights(saved, tmp_path):
    model, models_dir = saved
    weights = (models_dir / "unit" / WEIGHTS_FILE).read_bytes()
    other = build_model(CARD)  # fresh random weights: the upload must replace them
    loaded = MODEL_SOURCES.build("weights", card=CARD, weights=weights, suffix=".safetensors").model
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(loaded(x), model(x))
    assert not torch.allclose(other(x), model(x))
    assert loaded.model_id.startswith("unit + uploaded weights ")
    # the same weights in float16 (half the bytes, as the sidebar suggests under the upload limit) load into the
    # float32 network, close to the full-precision model
    from safetensors.torch import load, save

    half = save({name: tensor.half() if tensor.is_floating_point() else tensor
                 for name, tensor in load(weights).items()})
    assert len(half) < 0.6 * len(weights)
    from_half = MODEL_SOURCES.build("weights", card=CARD, weights=half, suffix=".safetensors").model
    assert next(from_half.network.parameters()).dtype == torch.float32
    torch.testing.assert_close(from_half(x), model(x), atol=1e-2, rtol=1e-2)
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        MODEL_SOURCES.build("weights", card=CARD, weights=b"\x00" * 32, suffix=".safetensors")
