"""Loaders: idx (Fashion-MNIST), CIFAR-10 (batches, npz, ImageFolder), the embedded subset, uploaded images."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from sia_core.data.base import ImageDataset
from sia_core.data.catalog import DATASETS, load_dataset
from sia_core.data.cifar10 import CIFAR10_CLASSES, load_cifar10
from sia_core.data.fashion_mnist import (DEBIAN_PACKAGE_DIR, FASHION_MNIST_CLASSES, balanced_subset_indices,
                                         find_idx_files, load_embedded_subset, load_fashion_mnist, read_idx)
from sia_core.data.images import decode_image
from sia_core.errors import ConfigError, DataError, ImageDecodeError
from tests.conftest import SHARED_DATA


def _idx_bytes(array: np.ndarray) -> bytes:
    code = {np.uint8: 0x08}[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def _write_fake_fashion_mnist(folder, n=20, gz=True):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        data = _idx_bytes(array)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return images, labels


@pytest.mark.parametrize("layout", ["flat", "raw", "torchvision"])
@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_layouts_round_trip_pixels(tmp_path, layout, gz):
    folder = {"flat": tmp_path, "raw": tmp_path / "raw", "torchvision": tmp_path / "FashionMNIST" / "raw"}[layout]
    images, labels = _write_fake_fashion_mnist(folder, gz=gz)
    dataset = load_fashion_mnist(tmp_path, "test")
    assert dataset.images.shape == (20, 1, 28, 28) and dataset.images.dtype == torch.float32
    assert torch.equal((dataset.images[:, 0] * 255).round().to(torch.uint8), torch.from_numpy(images))
    assert dataset.labels.tolist() == labels.tolist()
    assert dataset.class_names == FASHION_MNIST_CLASSES


def test_idx_reader_rejects_truncated_and_foreign_files(tmp_path):
    images, _ = _write_fake_fashion_mnist(tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(path)
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(DataError, match="not an idx file"):
        read_idx(path)


def test_missing_folder_and_missing_files_give_clear_messages(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        load_fashion_mnist(tmp_path / "nope")
    with pytest.raises(DataError, match="No Fashion-MNIST test files"):
        load_fashion_mnist(tmp_path)


def test_real_fashion_mnist_from_shared_data(shared_data):
    dataset = load_fashion_mnist(shared_data / "FashionMNIST" / "raw" / ".." / "..", "test")
    assert len(dataset) == 10_000
    assert torch.bincount(dataset.labels).tolist() == [1000] * 10
    assert 0.27 < float(dataset.images.mean()) < 0.30  # Fashion-MNIST's well-known mean pixel, 0.286
    train_images, _ = find_idx_files(shared_data, "train")
    assert train_images.name == "train-images-idx3-ubyte.gz"


@pytest.mark.skipif(not DEBIAN_PACKAGE_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_debian_package_layout_matches_shared_copy(shared_data):
    debian = load_fashion_mnist(DEBIAN_PACKAGE_DIR, "test")
    shared = load_fashion_mnist(shared_data, "test")
    assert torch.equal(debian.images, shared.images) and torch.equal(debian.labels, shared.labels)


def test_embedded_subset_is_balanced():
    subset = load_embedded_subset()
    assert len(subset) >= 2000
    counts = torch.bincount(subset.labels, minlength=10)
    assert counts.min() == counts.max()


def test_embedded_subset_matches_its_source_indices():
    root = next((path for path in (DEBIAN_PACKAGE_DIR, SHARED_DATA) if path.is_dir()), None)
    if root is None:
        pytest.skip("neither the Debian package dataset-fashion-mnist nor ../shared/data is present")
    subset, full = load_embedded_subset(), load_fashion_mnist(root, "test")
    index = subset.attributes["test_index"]
    assert torch.equal(full.images[index], subset.images) and torch.equal(full.labels[index], subset.labels)


def test_balanced_subset_indices_are_distinct_and_balanced():
    labels = np.repeat(np.arange(3), 10)
    index = balanced_subset_indices(labels, 4, seed=1)
    assert len(set(index.tolist())) == 12 and np.bincount(labels[index]).tolist() == [4, 4, 4]


# --- CIFAR-10 ---------------------------------------------------------------------------------

def _fake_cifar(n=12):
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8), (np.arange(n) % 10).astype(np.int64)


def test_cifar_npz_round_trip(tmp_path):
    x, y = _fake_cifar()
    np.savez(tmp_path / "c.npz", x=x, y=y)
    dataset = load_cifar10(tmp_path / "c.npz")
    assert dataset.images.shape == (12, 3, 32, 32)
    assert torch.equal((dataset.images * 255).round().to(torch.uint8), torch.from_numpy(x).permute(0, 3, 1, 2))
    assert dataset.labels.tolist() == y.tolist()


def test_cifar_folder_with_train_and_test_npz_picks_the_split(tmp_path):
    x, y = _fake_cifar()
    np.savez(tmp_path / "my_train_part.npz", x=x[:8], y=y[:8])
    np.savez(tmp_path / "my_test_part.npz", x=x[8:], y=y[8:])
    assert len(load_cifar10(tmp_path, "train")) == 8 and len(load_cifar10(tmp_path, "test")) == 4
    np.savez(tmp_path / "other_test.npz", x=x[8:], y=y[8:])
    with pytest.raises(DataError, match="several test .npz"):
        load_cifar10(tmp_path, "test")


def test_cifar_python_batches_round_trip_and_refuse_code(tmp_path):
    x, y = _fake_cifar()
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = {b"data": x.transpose(0, 3, 1, 2).reshape(12, -1), b"labels": y.tolist()}
    (folder / "test_batch").write_bytes(pickle.dumps(batch))
    dataset = load_cifar10(tmp_path, "test")
    assert torch.equal((dataset.images * 255).round().to(torch.uint8), torch.from_numpy(x).permute(0, 3, 1, 2))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DataError, match="not a readable CIFAR-10 python batch"):
        load_cifar10(tmp_path, "test")


def test_cifar_image_folder(tmp_path):
    x, y = _fake_cifar(4)
    for i, (image, label) in enumerate(zip(x, y)):
        folder = tmp_path / "test" / CIFAR10_CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:04d}.png")
    dataset = load_cifar10(tmp_path, "test")
    assert sorted(dataset.labels.tolist()) == sorted(y.tolist())
    (tmp_path / "test" / "giraffe").mkdir()
    with pytest.raises(DataError, match="one folder per CIFAR-10 class"):
        load_cifar10(tmp_path, "test")


def test_real_cifar_subset_npz(shared_data):
    dataset = load_cifar10(shared_data / "cifar10-subset" / "cifar10_test_first1017.npz")
    assert dataset.images.shape == (1017, 3, 32, 32)
    assert dataset.labels[:4].tolist() == [3, 8, 8, 0]  # cat, ship, ship, airplane: CIFAR-10's first test images
    folder = shared_data / "cifar10-subset"
    assert len(load_cifar10(folder, "train")) == 5085 and len(load_cifar10(folder, "test")) == 1017


def test_real_cifar_jpeg_image_folder(shared_data, tmp_path):
    with tarfile.open(shared_data / "cifar10-jpg" / "cifar10_test_jpg.tar.gz") as archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith(("0000.jpg", "0001.jpg"))]
        archive.extractall(tmp_path, members=members, filter="data")
    root = next(p.parent for p in tmp_path.rglob("airplane"))
    dataset = load_cifar10(root, "test")
    assert len(dataset) == 20 and torch.bincount(dataset.labels).tolist() == [2] * 10
    exact = load_cifar10(shared_data / "cifar10-subset" / "cifar10_test_first1017.npz")
    first_airplane = exact.images[exact.labels == 0][0]
    assert (dataset.images[dataset.labels == 0][0] - first_airplane).abs().mean() < 12 / 255  # JPEG q~75


def test_catalog_names_and_errors(monkeypatch):
    assert load_dataset("shapes", "test", n=10).image_shape == (3, 32, 32)
    with pytest.raises(ConfigError, match="Unknown dataset 'imagenet'; choose one of fashion-mnist-subset, shapes"):
        load_dataset("imagenet")
    with monkeypatch.context() as patch:  # where no CIFAR-10 lies beside the checkout
        patch.setitem(DATASETS["cifar10"].traits, "default_root", None)
        with pytest.raises(DataError, match=r"needs a path .*\(cifar10:PATH\), in \$SIA_CIFAR10_DIR, or in a \[\[data"):
            load_dataset("cifar10")
    with pytest.raises(DataError, match="no train split"):  # the embedded subset is test images: never train on it
        load_dataset("fashion-mnist-subset", "train")
    with pytest.raises(ConfigError, match="applies to generated datasets only"):
        load_dataset("fashion-mnist-subset", spurious="hue")
    with pytest.raises(ConfigError, match="n must be a whole number > 0"):
        load_dataset("fashion-mnist-subset", n=0)
    with pytest.raises(ConfigError, match="split must be one of"):
        load_dataset("shapes", "validation", n=10)  # type: ignore[arg-type]


def test_every_catalog_entry_declares_what_the_sidebar_and_cli_read():
    for entry in DATASETS:
        assert entry.label and entry.description and set(entry.traits["splits"]) <= {"train", "test"}
        if entry.traits.get("needs_path"):
            assert entry.traits["path_label"]


def test_a_spec_names_the_dataset_and_its_path(tmp_path):
    x, y = _fake_cifar()
    np.savez(tmp_path / "c.npz", x=x, y=y)
    by_spec = load_dataset(f"cifar10:{tmp_path / 'c.npz'}", n=5)
    by_root = load_dataset("cifar10", root=tmp_path / "c.npz", n=5)
    assert len(by_spec) == 5 and torch.equal(by_spec.images, by_root.images)
    with pytest.raises(ConfigError, match="give it once"):
        load_dataset(f"cifar10:{tmp_path / 'c.npz'}", root=tmp_path / "other.npz")


def test_loaders_keep_the_first_n_images_in_order():
    full = load_dataset("fashion-mnist-subset")
    first = load_dataset("fashion-mnist-subset", n=7)
    assert torch.equal(first.images, full.images[:7]) and torch.equal(first.labels, full.labels[:7])


@pytest.mark.parametrize("images, labels, message", [
    (torch.zeros(2, 8, 8), torch.zeros(2, dtype=torch.long), "images must be"),
    (torch.zeros(2, 1, 8, 8), torch.zeros(3, dtype=torch.long), "labels must be"),
])
def test_a_malformed_dataset_is_a_data_error(images, labels, message):
    with pytest.raises(DataError, match=message):
        ImageDataset("bad", images, labels, ("a",))


# --- uploaded images --------------------------------------------------------------------------

def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_decode_formats_to_model_shape(fmt):
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    gray = decode_image(_encode(image, fmt), (1, 28, 28))
    rgb = decode_image(_encode(image, fmt), (3, 32, 32))
    assert gray.shape == (1, 1, 28, 28) and rgb.shape == (1, 3, 32, 32)
    assert 0 <= float(rgb.min()) and float(rgb.max()) <= 1
    assert rgb[0, 0].mean() > 0.6 and rgb[0, 1].mean() < 0.3  # still red


def test_decode_applies_exif_orientation():
    image = Image.new("L", (40, 20), 0)
    image.paste(255, (0, 0, 20, 20))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    decoded = decode_image(_encode(image, "JPEG", exif=exif.tobytes(), quality=95), (1, 40, 40))
    assert decoded[0, 0, :20].mean() > 0.8  # the white half is now on top


def test_decode_composites_transparency_on_white():
    decoded = decode_image(_encode(Image.new("RGBA", (8, 8), (0, 0, 0, 0)), "PNG"), (3, 8, 8))
    assert decoded.min() > 0.99


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n garbage", "corrupt or not an image"),
    (b"hello world", "corrupt or not an image"),
])
def test_decode_rejects_bad_files(data, message):
    with pytest.raises(ImageDecodeError, match=message):
        decode_image(data, (1, 28, 28))


def test_decode_refuses_huge_images_and_other_formats():
    huge = _encode(Image.new("1", (6000, 6000)), "PNG")  # 36 Mpx, tiny on disk
    with pytest.raises(ImageDecodeError, match="too large"):
        decode_image(huge, (1, 28, 28))
    with pytest.raises(ImageDecodeError, match="Unsupported image format"):
        decode_image(_encode(Image.new("RGB", (4, 4)), "BMP"), (1, 28, 28))


def _jpeg_archive(path, split: str, x, y) -> None:
    """A .tar.gz laid out like the JPEG copy of CIFAR-10: <split>/<class>/NNNN.jpg, written in shuffled order."""
    with tarfile.open(path, "w:gz") as archive:
        for i in reversed(range(len(x))):  # the loader sorts; the archive's order must not matter
            buffer = io.BytesIO()
            Image.fromarray(x[i]).save(buffer, format="JPEG", quality=95)
            rank = int((y[:i] == y[i]).sum())  # NNNN: the image's place among its class
            info = tarfile.TarInfo(f"{split}/{CIFAR10_CLASSES[y[i]]}/{rank:04d}.jpg")
            info.size = len(buffer.getvalue())
            archive.addfile(info, io.BytesIO(buffer.getvalue()))
        evil = tarfile.TarInfo("../outside.jpg")  # never extracted: the loader reads members in memory
        evil.size = 3
        archive.addfile(evil, io.BytesIO(b"bad"))


def test_cifar_jpeg_archive_reads_the_classes_in_turns_without_extracting(tmp_path):
    smooth = np.tile(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (32, 1, 3))  # JPEG keeps gradients
    x = np.stack([np.roll(smooth, 3 * i, axis=1) for i in range(6)])
    y = np.array([2, 0, 2, 1, 0, 1])
    _jpeg_archive(tmp_path / "cifar10_test_jpg.tar.gz", "test", x, y)
    dataset = load_cifar10(tmp_path, "test")  # the folder: its *test*.tar.gz
    # the classes in turns: each class's 0000 (images 1, 3, 0), then each class's 0001 (images 4, 5, 2)
    assert dataset.labels.tolist() == [0, 1, 2, 0, 1, 2] and "JPEG copy" in dataset.source
    expected = torch.from_numpy(x[[1, 3, 0, 4, 5, 2]]).permute(0, 3, 1, 2).float() / 255
    assert (dataset.images - expected).abs().mean() < 3 / 255  # lossy, but these images
    assert not (tmp_path / "outside.jpg").exists() and not (tmp_path.parent / "outside.jpg").exists()
    with pytest.raises(DataError, match=r"no train/<class>/\*.jpg"):
        load_cifar10(tmp_path / "cifar10_test_jpg.tar.gz", "train")
    (tmp_path / "broken_train.tar.gz").write_bytes(b"not a gzip")
    with pytest.raises(DataError, match="not a readable .tar.gz"):
        load_cifar10(tmp_path, "train")


def test_the_embedded_cifar10_subset_is_built_from_a_folder_by_the_cli(tmp_path, capsys):
    from sia_core.cli import main
    from sia_core.data.cifar10 import load_embedded_cifar10

    x, y = _fake_cifar(30)
    np.savez(tmp_path / "c10_test.npz", x=x, y=y)
    assert main(["build-subset", "--world", "cifar10", "--data-dir", str(tmp_path), "--per-class", "2",
                 "--out", str(tmp_path / "out.npz"), "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["n"] == 20 and built["per_class"] == [2] * 10 and "Krizhevsky" in built["citation"]
    subset = load_embedded_cifar10(tmp_path / "out.npz")
    first_two = np.concatenate([np.nonzero(y == c)[0][:2] for c in range(10)])
    assert subset.labels.tolist() == y[np.sort(first_two)].tolist()  # the first two of each class, in file order
    assert torch.equal((subset.images * 255).round().to(torch.uint8),
                       torch.from_numpy(x[np.sort(first_two)]).permute(0, 3, 1, 2))
    with pytest.raises(DataError, match="embedded CIFAR-10 subset is missing"):
        load_embedded_cifar10(tmp_path / "absent.npz")


def test_cifar10_has_no_default_folder_but_sia_cifar10_dir(monkeypatch, tmp_path):
    from sia_core.data.cifar10 import default_cifar10_root

    monkeypatch.setenv("SIA_CIFAR10_DIR", str(tmp_path))
    assert default_cifar10_root() == tmp_path
    monkeypatch.delenv("SIA_CIFAR10_DIR")
    assert default_cifar10_root() is None


def test_cifar10_is_read_from_sia_cifar10_dir_when_no_folder_is_given():
    if DATASETS["cifar10"].traits["default_root"] is None:
        pytest.skip("$SIA_CIFAR10_DIR is unset (tests/conftest.py sets it to ../shared/data/cifar10-jpg when present)")
    test = load_dataset("cifar10", "test", n=20)
    assert "JPEG copy" in test.source and torch.bincount(test.labels).tolist() == [2] * 10  # the classes in turns
