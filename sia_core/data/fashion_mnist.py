"""Fashion-MNIST and MNIST from idx / idx.gz files: torchvision's layout, the Debian package's, or a bare folder.

Also the embedded balanced test subset that ships in `assets/` and torchvision's downloader
for users who have internet. The two datasets share the file format and names, not the classes.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from sia_core.data.base import ImageDataset, Split
from sia_core.errors import DataError
from sia_core.paths import ASSETS_DIR

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
MNIST_CLASSES: tuple[str, ...] = tuple(str(digit) for digit in range(10))
DEBIAN_PACKAGE_DIR = Path("/usr/share/datasets/fashion-mnist")
EMBEDDED_SUBSET_FILE = ASSETS_DIR / "data" / "fashion_mnist_test_subset.npz"

_FILE_STEMS = {"train": "train", "test": "t10k"}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one idx (or gzipped idx) file into a numpy array, checking its header against its size."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"Could not read {path}: {error}") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an idx file (bad magic number).")
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header_size != expected:
        raise DataError(f"{path} is truncated or corrupt: header says {dims}, data has "
                        f"{len(raw) - header_size} bytes instead of {expected}.")
    return np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(dims)


def find_idx_files(root: str | Path, split: Split, *, title: str = "Fashion-MNIST",
                   torchvision_folder: str = "FashionMNIST") -> tuple[Path, Path]:
    """Locate the (images, labels) idx files of `split` under `root`.

    Accepts `root` itself, `root/raw`, `root/<torchvision_folder>/raw` (torchvision) and the Debian
    package folder layout; plain and `.gz` files both work.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{title} folder not found: {root}")
    stem = _FILE_STEMS[split]
    for folder in (root, root / "raw", root / torchvision_folder / "raw", root / title.lower()):
        for suffix in ("", ".gz"):
            images = folder / f"{stem}-images-idx3-ubyte{suffix}"
            labels = folder / f"{stem}-labels-idx1-ubyte{suffix}"
            if images.is_file() and labels.is_file():
                return images, labels
    raise DataError(
        f"No {title} {split} files in {root}: expected {stem}-images-idx3-ubyte[.gz] and "
        f"{stem}-labels-idx1-ubyte[.gz] there, in raw/ or in {torchvision_folder}/raw/."
    )


def _to_dataset(images: np.ndarray, labels: np.ndarray, name: str, source: str,
                class_names: tuple[str, ...] = FASHION_MNIST_CLASSES) -> ImageDataset:
    if images.ndim != 3 or images.shape[0] != labels.shape[0]:
        raise DataError(f"{source}: images {images.shape} and labels {labels.shape} do not match.")
    if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise DataError(f"{source}: labels outside 0..{len(class_names) - 1}.")
    return ImageDataset(
        name=name,
        images=torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1),
        labels=torch.from_numpy(labels.astype(np.int64)),
        class_names=class_names,
        source=source,
    )


def load_fashion_mnist(root: str | Path, split: Split = "test", *, download: bool = False) -> ImageDataset:
    """Fashion-MNIST `split` from the idx files under `root`.

    With `download=True` torchvision fetches the files into `root/FashionMNIST/raw` first
    (needs internet; it skips the download when md5-verified files are already there).
    """
    if download:
        from torchvision.datasets import FashionMNIST  # only needed by users who download

        FashionMNIST(str(root), train=(split == "train"), download=True)
    images_path, labels_path = find_idx_files(root, split)
    return _to_dataset(read_idx(images_path), read_idx(labels_path),
                       name=f"fashion-mnist-{split}", source=f"Fashion-MNIST {split} split from {images_path.parent}")


def load_mnist(root: str | Path, split: Split = "test") -> ImageDataset:
    """MNIST digits `split` from the idx files under `root` (torchvision's `MNIST/raw` layout or a bare folder)."""
    images_path, labels_path = find_idx_files(root, split, title="MNIST", torchvision_folder="MNIST")
    return _to_dataset(read_idx(images_path), read_idx(labels_path), name=f"mnist-{split}",
                       source=f"MNIST {split} split from {images_path.parent}", class_names=MNIST_CLASSES)


def default_fashion_mnist_root() -> Path:
    """Where the full dataset is looked for by default: the Debian package `dataset-fashion-mnist`."""
    return DEBIAN_PACKAGE_DIR


def load_embedded_subset(path: str | Path = EMBEDDED_SUBSET_FILE) -> ImageDataset:
    """The balanced Fashion-MNIST test subset that ships in `assets/` (see scripts/build_embedded_default.sh)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"The embedded Fashion-MNIST subset is missing: {path}. "
                        "Rebuild it with `bash scripts/build_embedded_default.sh`.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels, indices = archive["x"], archive["y"], archive["index"]
    except (OSError, KeyError, ValueError) as error:
        raise DataError(f"Could not read the embedded subset {path}: {error}") from error
    dataset = _to_dataset(images, labels, name="fashion-mnist-test-subset",
                          source=f"Balanced subset ({len(labels)} images) of the Fashion-MNIST test split")
    return ImageDataset(dataset.name, dataset.images, dataset.labels, dataset.class_names,
                        attributes={"test_index": torch.from_numpy(indices.astype(np.int64))},
                        source=dataset.source)


def balanced_subset_indices(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """`per_class` indices of each class, drawn without replacement, sorted."""
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def build_fashion_mnist_subset(root: str | Path = DEBIAN_PACKAGE_DIR, *, per_class: int = 250, seed: int = 0,
                               out: str | Path | None = None) -> dict:
    """Write the embedded Fashion-MNIST test subset: `per_class` test images of each class drawn at random
    (seeded) from the idx files under `root`, with their positions in the test split."""
    images_path, labels_path = find_idx_files(root, "test")
    images, labels = read_idx(images_path), read_idx(labels_path)
    index = balanced_subset_indices(labels, per_class, seed=seed)
    out = Path(out) if out else EMBEDDED_SUBSET_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, x=images[index], y=labels[index].astype(np.int64), index=index.astype(np.int64))
    return {"out": str(out), "n": int(index.size), "per_class": per_class, "source": str(images_path.parent)}
