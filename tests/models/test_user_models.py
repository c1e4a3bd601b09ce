"""Users' own classifiers: imported factories, foreign state_dicts, torchvision architectures, exported programs."""

from __future__ import annotations

import textwrap

import pytest
import torch
from torch import nn

from sia_core.errors import CheckpointError
from sia_core.models.user_models import (HeadSplit, check_forward, clean_state_dict, final_linear_name,
                                         import_factory, load_exported_program, load_weights_into, parse_floats,
                                         parse_shape, torchvision_network)

LENET = textwrap.dedent("""
    import torch.nn as nn

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
            self.fc1 = nn.Linear(16 * 5 * 5, 84)
            self.fc2 = nn.Linear(84, 10)

        def forward(self, x):
            return self.fc2(self.fc1(self.conv(x).flatten(1)).relu())

    class Broken(LeNet):
        def forward(self, x):
            raise RuntimeError("no GPU here")
""")


@pytest.fixture
def lenet_file(tmp_path):
    path = tmp_path / "lenet.py"
    path.write_text(LENET)
    return path


def test_factory_from_a_file_and_its_head_split(lenet_file):
    network = import_factory(f"{lenet_file}:LeNet")()
    assert final_linear_name(network, 10) == "fc2"
    split = HeadSplit(network, "fc2")
    x = torch.rand(3, 1, 28, 28)
    features = split.features(x)
    assert features.shape == (3, 84)
    # the features are exactly what the head turns into the logits
    assert torch.allclose(split.head(features), network(x), atol=1e-6)
    # the head is not registered twice: the split's parameters are the network's
    assert len(list(split.parameters())) == len(list(network.parameters()))


def test_factory_errors_are_messages(lenet_file, tmp_path):
    with pytest.raises(CheckpointError, match="no callable 'Missing'"):
        import_factory(f"{lenet_file}:Missing")
    with pytest.raises(CheckpointError, match="not found"):
        import_factory(f"{tmp_path / 'nope.py'}:LeNet")
    bad = tmp_path / "bad.py"
    bad.write_text("import not_a_module_anywhere\n")
    with pytest.raises(CheckpointError, match="ModuleNotFoundError"):
        import_factory(f"{bad}:X")
    with pytest.raises(CheckpointError, match="FILE.py:FACTORY"):
        import_factory("just_a_name")


def test_state_dict_prefixes_are_stripped_and_nan_refused(lenet_file):
    network = import_factory(f"{lenet_file}:LeNet")()
    state = {f"module.{k}": v for k, v in network.state_dict().items()}
    assert set(clean_state_dict(state)) == set(network.state_dict())
    state["module.fc2.bias"] = torch.full((10,), float("nan"))
    with pytest.raises(CheckpointError, match="NaN or Inf.*fc2.bias"):
        clean_state_dict(state)


def test_weights_that_do_not_fit_name_the_keys(lenet_file):
    network = import_factory(f"{lenet_file}:LeNet")()
    state = dict(network.state_dict())
    state.pop("fc1.weight")
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"missing \(first: 'fc1.weight'\).*unexpected \(first: 'extra.weight'\)"):
        load_weights_into(network, state, "LeNet")
    state = dict(network.state_dict())
    state["fc2.weight"] = torch.zeros(5, 84)
    with pytest.raises(CheckpointError, match=r"shape mismatch at 'fc2.weight'"):
        load_weights_into(network, state, "LeNet")


def test_forward_checks(lenet_file):
    network = import_factory(f"{lenet_file}:LeNet")()
    check_forward(network, (1, 28, 28), 10, "LeNet")
    with pytest.raises(CheckpointError, match="returns 10 logits, but there are 3 class names"):
        check_forward(network, (1, 28, 28), 3, "LeNet")
    with pytest.raises(CheckpointError, match="failed on a"):
        check_forward(network, (3, 32, 32), 10, "LeNet")
    with pytest.raises(CheckpointError, match="no GPU here"):
        check_forward(import_factory(f"{lenet_file}:Broken")(), (1, 28, 28), 10, "broken")


def test_torchvision_architecture_random_init_at_224():
    network, meta = torchvision_network("resnet18", num_classes=None, weights_file=None, pretrained=False,
                                        download=False)
    assert meta["size"] == 224 and len(meta["class_names"]) == 1000 and meta["mean"][0] == pytest.approx(0.485)
    check_forward(network, (3, 224, 224), 1000, "resnet18")
    assert final_linear_name(network) == "fc"


def test_torchvision_pretrained_without_cache_or_download_is_a_message(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(CheckpointError, match="not in the torch hub cache"):
        torchvision_network("resnet18", num_classes=None, weights_file=None, pretrained=True, download=False)
    with pytest.raises(CheckpointError, match="no classification model"):
        torchvision_network("not_a_net", num_classes=None, weights_file=None, pretrained=False, download=False)


def test_exported_program_round_trip(tmp_path):
    network = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).eval()
    x = torch.rand(2, 3, 2, 2)
    torch.export.save(torch.export.export(network, (x,)), tmp_path / "model.pt2")
    loaded, example_shape = load_exported_program(tmp_path / "model.pt2")
    assert torch.allclose(loaded(x), network(x)) and example_shape == (3, 2, 2)
    (tmp_path / "junk.pt2").write_bytes(b"not an archive")
    with pytest.raises(CheckpointError, match="not a loadable exported program"):
        load_exported_program(tmp_path / "junk.pt2")


def test_shape_and_normalization_parsing():
    assert parse_shape("1,28,28") == (1, 28, 28) and parse_shape("3x224x224") == (3, 224, 224)
    assert parse_floats("0.5", 3, "mean") == (0.5, 0.5, 0.5)
    for bad in ("1,28", "a,b,c", "0,28,28"):
        with pytest.raises(CheckpointError):
            parse_shape(bad)
    with pytest.raises(CheckpointError, match="needs 3 values"):
        parse_floats("0.1,0.2", 3, "mean")
    with pytest.raises(CheckpointError, match="> 0"):
        parse_floats("0", 1, "std")


def test_a_measured_card_counts_only_the_images_a_person_labelled(tmp_path):
    from sia_core.data.base import ImageDataset
    from sia_core.data.imagenet import with_model_labels
    from sia_core.models.measured import measured_card
    from sia_core.models.registry import load_model_and_card

    loaded = load_model_and_card("fmnist-standard")
    images = torch.rand(6, 1, 28, 28)
    predictions = loaded.model.logits(images).argmax(1)
    # two photos with a person's label, both wrong; four labelled by the model's own prediction
    wrong = (predictions[:2] + 1) % 10
    dataset = ImageDataset(name="photos", images=images, labels=torch.cat([wrong, torch.full((4,), -1)]),
                           class_names=loaded.model.class_names, source="six photos")
    labelled = with_model_labels(dataset, predictions)
    card = measured_card(loaded, labelled, "photos", folder=tmp_path)
    evaluation = card.evaluations[0]
    assert evaluation["n"] == 2 and evaluation["clean_accuracy"] == 0.0  # not 4 of 6 right by construction
    assert "the 2 of 6 images of photos with a human label" in evaluation["note"]
