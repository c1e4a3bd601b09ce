"""A user's own data: image folders of any size, .npz arrays, and zip uploads that break no limit."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sia_core.data.archive import ArchiveLimits, extract_image_archive
from sia_core.data.fashion_mnist import load_embedded_subset
from sia_core.data.folders import load_image_folder, load_npz
from sia_core.errors import DataError


def _png(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _folder(root: Path, classes: dict[str, int], size: tuple[int, int] = (40, 30)) -> Path:
    for index, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True)
        for k in range(count):
            (root / name / f"{k}.png").write_bytes(_png((80 * index, 10 * k, 200), size))
    return root


def test_image_folder_classes_from_folder_names_and_resized_to_the_model_input(tmp_path):
    _folder(tmp_path, {"cat": 3, "dog": 2})
    data = load_image_folder(tmp_path, image_shape=(3, 24, 24))
    assert data.class_names == ("cat", "dog")
    assert data.images.shape == (5, 3, 24, 24) and data.labels.tolist() == [0, 1, 0, 1, 0]  # round-robin order
    # colour survives: the red channel of a "dog" image is 80/255 everywhere (a flat image resizes exactly)
    assert torch.allclose(data.images[1, 0], torch.full((24, 24), 80 / 255))


def test_image_folder_partial_load_keeps_every_class_and_grayscale(tmp_path):
    _folder(tmp_path, {"a": 5, "b": 5, "c": 5})
    data = load_image_folder(tmp_path, image_shape=(1, 16, 16), n=4)
    assert set(data.labels.tolist()) == {0, 1, 2} and data.images.shape == (4, 1, 16, 16)


def test_image_folder_without_shape_takes_the_first_images_size(tmp_path):
    _folder(tmp_path, {"a": 1, "b": 1}, size=(50, 20))
    assert load_image_folder(tmp_path).images.shape == (2, 3, 20, 50)


def test_a_users_folder_is_titled_by_its_own_name_and_a_shipped_set_by_its_id(tmp_path):
    _folder(tmp_path / "my_photos", {"cat": 1, "dog": 1})
    # not "imagefolder-my_photos"
    assert load_image_folder(tmp_path / "my_photos").title == "the folder “my_photos”"
    assert load_embedded_subset().title == "fashion-mnist-test-subset"


def test_a_folder_zipped_inside_its_own_folder_is_looked_through_splits_included(tmp_path):
    _folder(tmp_path / "a" / "photos", {"cat": 2, "dog": 2})
    assert load_image_folder(tmp_path / "a").class_names == ("cat", "dog")
    _folder(tmp_path / "b" / "photos" / "train", {"cat": 1, "dog": 1})
    _folder(tmp_path / "b" / "photos" / "test", {"cat": 2, "dog": 1, "bird": 1})
    wrapped_splits = load_image_folder(tmp_path / "b", "test")  # the splits, not read as two classes
    assert wrapped_splits.class_names == ("bird", "cat", "dog") and len(wrapped_splits) == 4


@pytest.mark.parametrize("classes", [{"only": 3}, {}])
def test_image_folder_with_one_class_or_none_is_refused(tmp_path, classes):
    _folder(tmp_path, classes)
    with pytest.raises(DataError, match="at least two class folders") as refused:
        load_image_folder(tmp_path)
    # the one class folder is named as found, not looked through as a wrapper ("found: none")
    assert ("found: only" in str(refused.value)) == bool(classes)


def test_npz_nhwc_and_nchw_give_the_same_images(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    y = np.array([0, 1, 2, 0, 1, 2])
    np.savez(tmp_path / "nhwc.npz", x=x, y=y, class_names=np.array(["r", "g", "b"]))
    np.savez(tmp_path / "nchw.npz", x=x.transpose(0, 3, 1, 2), y=y)
    a, b = load_npz(tmp_path / "nhwc.npz"), load_npz(tmp_path / "nchw.npz")
    assert torch.equal(a.images, b.images) and a.images.shape == (6, 3, 8, 8)
    assert a.class_names == ("r", "g", "b") and b.class_names == ("0", "1", "2")
    assert float(a.images[1, 2, 3, 4]) == pytest.approx(x[1, 3, 4, 2] / 255)


def test_npz_with_labels_outside_the_class_names_is_refused(tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros((2, 4, 4), np.uint8), y=np.array([0, 5]), class_names=np.array(["a", "b"]))
    with pytest.raises(DataError, match="labels must lie"):
        load_npz(tmp_path / "bad.npz")


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def test_a_good_zip_unpacks_to_a_loadable_folder(tmp_path):
    data = _zip({"pets/cat/1.png": _png((1, 2, 3)), "pets/dog/1.png": _png((4, 5, 6)), "pets/readme.txt": b"hi",
                 "__MACOSX/pets/._1.png": b"junk"})
    root = extract_image_archive(data, tmp_path / "out")
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png")) == ["pets/cat/1.png", "pets/dog/1.png"]
    assert load_image_folder(root / "pets").class_names == ("cat", "dog")


@pytest.mark.parametrize("members, limits, message", [
    ({"../evil.png": _png((0, 0, 0))}, ArchiveLimits(), "unsafe path"),
    ({"/etc/evil.png": _png((0, 0, 0))}, ArchiveLimits(), "unsafe path"),
    ({f"a/{k}.png": _png((k, 0, 0)) for k in range(5)}, ArchiveLimits(max_files=4), "at most 4"),
    ({"a/big.png": _png((0, 0, 0), (300, 300))}, ArchiveLimits(max_image_pixels=10_000), "pixels"),
    ({"a/bomb.png": b"\0" * 3_000_000}, ArchiveLimits(), "zip bomb"),
    ({"a/x.png": _png((0, 0, 0)), "b/y.png": _png((1, 1, 1))}, ArchiveLimits(max_total_bytes=100), "unpacks to"),
    ({"a/notes.txt": b"no images"}, ArchiveLimits(), "no PNG"),
])
def test_zips_that_break_a_limit_are_refused_and_write_nothing(tmp_path, members, limits, message):
    with pytest.raises(DataError, match=message):
        extract_image_archive(_zip(members), tmp_path / "out", limits)
    assert not (tmp_path / "out").exists()


def test_not_a_zip_is_refused(tmp_path):
    with pytest.raises(DataError, match="not a readable .zip"):
        extract_image_archive(b"PK\x03\x04 broken", tmp_path)


def test_a_folders_classes_are_renumbered_to_the_models_order_by_name(tmp_path):
    from sia_core.data.folders import matched_to_classes
    from sia_core.resolve import resolve

    model_order = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
    # folder names as people write them: no slash in a folder name, any case and punctuation
    _folder(tmp_path, {"t-shirt-top": 1, "trouser": 1, "Pullover": 1, "dress": 1, "coat": 1, "sandal": 1,
                       "shirt": 1, "sneaker": 1, "bag": 1, "ankle_boot": 1}, size=(28, 28))
    folder = load_image_folder(tmp_path, image_shape=(1, 28, 28))
    assert folder.class_names[0] == "Pullover"  # sorted: capitals first, then "ankle_boot", "bag", ...
    matched, warning = matched_to_classes(folder, model_order)
    assert warning is None and matched.class_names == model_order
    # every image keeps its class: its new label names the folder it came from
    folder_to_model = {"t-shirt-top": "T-shirt/top", "trouser": "Trouser", "Pullover": "Pullover", "dress": "Dress",
                       "coat": "Coat", "sandal": "Sandal", "shirt": "Shirt", "sneaker": "Sneaker", "bag": "Bag",
                       "ankle_boot": "Ankle boot"}
    assert [matched.class_names[new] for new in matched.labels] == [
        folder_to_model[folder.class_names[old]] for old in folder.labels]
    assert folder.labels.tolist() == list(range(10))  # the shared dataset is not changed
    subject = resolve("fmnist-standard", f"imagefolder:{tmp_path}")
    assert subject.test_set.class_names == model_order
    assert subject.test_set.class_names[subject.test_set.labels[folder.class_names.index("bag")]] == "Bag"


def test_a_folder_whose_names_are_not_the_models_is_read_by_position_and_says_so(tmp_path):
    from sia_core.data.folders import matched_to_classes

    _folder(tmp_path, {"apples": 1, "pears": 1})
    folder = load_image_folder(tmp_path)
    same, warning = matched_to_classes(folder, ("cat", "dog"))
    assert same is folder and "read by position" in warning and "apples → cat" in warning
    assert matched_to_classes(folder, ("apples", "pears")) == (folder, None)


def test_the_training_split_of_a_folder_is_renumbered_as_its_test_split(tmp_path):
    from sia_core.resolve import resolve

    for split in ("train", "test"):
        _folder(tmp_path / split, {name: 2 for name in ("ankle_boot", "bag", "coat", "dress", "pullover", "sandal",
                                                        "shirt", "sneaker", "t-shirt-top", "trouser")}, size=(28, 28))
    subject = resolve("fmnist-standard", f"imagefolder:{tmp_path}", train_split="required")
    train, test = subject.train_set, subject.test_set
    assert train.class_names == test.class_names == subject.model.class_names
    # the first loaded image of each split comes from "ankle_boot": label 9 in the model's order, in both
    assert int(train.labels[0]) == int(test.labels[0]) == subject.model.class_names.index("Ankle boot")
