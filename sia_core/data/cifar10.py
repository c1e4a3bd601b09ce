"""CIFAR-10 from torchvision's python batches, an ImageFolder tree (one folder per class), an `.npz`, or a `.tar.gz`
of JPEG files (`<split>/<class>/NNNN.jpg`).

The python batches are pickles; they are read with an unpickler that admits only the numpy
types those files contain, so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from sia_core.data.base import ImageDataset, Split
from sia_core.errors import DataError
from sia_core.paths import ASSETS_DIR

EMBEDDED_CIFAR10_FILE = ASSETS_DIR / "data" / "cifar10_test_subset.npz"
CIFAR10_DIR_ENV = "SIA_CIFAR10_DIR"  # where the full CIFAR-10 is read from when no path is given
CIFAR10_CITATION = ("Alex Krizhevsky. Learning Multiple Layers of Features from Tiny Images. Technical report, "
                    "University of Toronto, 2009. https://www.cs.toronto.edu/~kriz/cifar.html")
CIFAR10_CLASSES: tuple[str, ...] = ("airplane", "automobile", "bird", "cat", "deer",
                                     "dog", "frog", "horse", "ship", "truck")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits the few globals that CIFAR's python batches need, nothing else."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as handle:
            batch = _NumpyOnlyUnpickler(io.BytesIO(handle.read()), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch.get(b"labels", batch.get(b"fine_labels")), dtype=np.int64)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise DataError(f"{path} is not a readable CIFAR-10 python batch ({error}).") from error
    if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise DataError(f"{path}: expected (N, 3072) uint8 data and N labels, got {data.shape} and {labels.shape}.")
    return data.reshape(-1, 3, 32, 32), labels


def _dataset(images_nchw: np.ndarray, labels: np.ndarray, split: str, source: str) -> ImageDataset:
    if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise DataError(f"{source}: labels outside 0..9.")
    return ImageDataset(name=f"cifar10-{split}",
                        images=torch.from_numpy(np.ascontiguousarray(images_nchw)).float().div_(255.0),
                        labels=torch.from_numpy(labels.astype(np.int64)),
                        class_names=CIFAR10_CLASSES, source=source)


def load_cifar10_batches(root: str | Path, split: Split = "test") -> ImageDataset:
    """torchvision's layout: `root/cifar-10-batches-py/{data_batch_1..5,test_batch}` (or those files in `root`)."""
    root = Path(root)
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
    paths = [folder / name for name in names if (folder / name).is_file()]
    if not paths:
        raise DataError(f"No CIFAR-10 {split} batches ({', '.join(names)}) in {folder}.")
    parts = [_read_batch(path) for path in paths]
    return _dataset(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), split,
                    f"CIFAR-10 {split} python batches from {folder}")


def load_cifar10_npz(path: str | Path, split: Split = "test") -> ImageDataset:
    """An `.npz` with `x` uint8 (N, 32, 32, 3) and `y` int labels; no pickled objects allowed."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["x"], archive["y"]
    except (OSError, KeyError, ValueError) as error:
        raise DataError(f"{path} is not a CIFAR-10 .npz with arrays 'x' and 'y' ({error}).") from error
    if images.ndim != 4 or images.shape[1:] != (32, 32, 3) or images.dtype != np.uint8:
        raise DataError(f"{path}: 'x' must be uint8 of shape (N, 32, 32, 3), got {images.dtype} {images.shape}.")
    if labels.shape != (images.shape[0],):
        raise DataError(f"{path}: 'y' must hold one label per image.")
    return _dataset(images.transpose(0, 3, 1, 2), labels, split, f"CIFAR-10 images from {path.name}")


def load_cifar10_image_folder(root: str | Path, split: Split = "test") -> ImageDataset:
    """An ImageFolder tree `root/[split/]<class>/*.png|jpg`; class folders must be CIFAR-10's names."""
    from PIL import Image

    root = Path(root)
    folder = root / split if (root / split).is_dir() else root
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir())
    unknown = [p.name for p in class_dirs if p.name not in CIFAR10_CLASSES]
    if not class_dirs or unknown:
        raise DataError(f"{folder} must hold one folder per CIFAR-10 class "
                        f"({', '.join(CIFAR10_CLASSES)}); found {', '.join(p.name for p in class_dirs) or 'none'}.")
    images, labels = [], []
    for class_dir in class_dirs:
        label = CIFAR10_CLASSES.index(class_dir.name)
        for file in sorted(class_dir.iterdir()):
            if file.suffix.lower() not in _IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as image:
                    array = np.asarray(image.convert("RGB").resize((32, 32)), dtype=np.uint8)
            except OSError as error:
                raise DataError(f"Could not decode {file}: {error}") from error
            images.append(array)
            labels.append(label)
    if not images:
        raise DataError(f"No images under {folder}.")
    return _dataset(np.stack(images).transpose(0, 3, 1, 2), np.asarray(labels), split,
                    f"CIFAR-10 {split} ImageFolder tree at {folder}")


def load_cifar10_jpeg_archive(path: str | Path, split: Split = "test") -> ImageDataset:
    """A `.tar.gz` of `<split>/<class>/NNNN.jpg` files (such as a JPEG copy of CIFAR-10):
    read in memory, never extracted. NNNN is the image's place among its class in the official order; the images
    come class by class in turns (every class's 0000, then every class's 0001, ...), so the first N of either
    split are balanced. JPEG is lossy: pixels differ from the originals by about 6/255."""
    import tarfile

    from PIL import Image

    path = Path(path)
    images, labels, keys = [], [], []
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                parts = Path(member.name).parts
                if not member.isfile() or len(parts) < 2 or Path(member.name).suffix.lower() not in _IMAGE_SUFFIXES:
                    continue
                class_name = parts[-2]
                if class_name not in CIFAR10_CLASSES or (len(parts) >= 3 and parts[-3] not in (split, ".")):
                    continue
                handle = archive.extractfile(member)
                with Image.open(io.BytesIO(handle.read())) as image:
                    images.append(np.asarray(image.convert("RGB").resize((32, 32)), dtype=np.uint8))
                labels.append(CIFAR10_CLASSES.index(class_name))
                keys.append((parts[-1], labels[-1]))
    except (OSError, tarfile.TarError, EOFError) as error:
        raise DataError(f"{path} is not a readable .tar.gz of CIFAR-10 JPEG files ({error}).") from error
    if not images:
        raise DataError(f"{path} holds no {split}/<class>/*.jpg files of CIFAR-10's classes.")
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return _dataset(np.stack([images[i] for i in order]).transpose(0, 3, 1, 2), np.asarray(labels)[order], split,
                    f"CIFAR-10 {split} split, JPEG copy ({path.name})")


def _split_file_in(folder: Path, split: Split, suffix: str) -> Path | None:
    """The one `*<suffix>` file in `folder` whose name holds the split ("train" / "test"): a released subset
    (`.npz`) or the JPEG copy's archive (`.tar.gz`); None when there is none."""
    candidates = sorted(path for path in folder.glob(f"*{suffix}") if split in path.name.lower())
    if len(candidates) > 1:
        raise DataError(f"{folder} holds several {split} {suffix} files ({', '.join(p.name for p in candidates)}); "
                        "point to one of them.")
    return candidates[0] if candidates else None


def load_cifar10(root: str | Path, split: Split = "test") -> ImageDataset:
    """Dispatch on what `root` is: an `.npz` or `.tar.gz` file, a folder with `*train*.npz` / `*test*.npz` or
    `*train*.tar.gz` / `*test*.tar.gz`, a folder of python batches, or an ImageFolder tree."""
    root = Path(root).expanduser()
    if root.is_file() and root.suffix == ".npz":
        return load_cifar10_npz(root, split)
    if root.is_file() and root.name.endswith(".tar.gz"):
        return load_cifar10_jpeg_archive(root, split)
    if not root.is_dir():
        raise DataError(f"CIFAR-10 path not found: {root}")
    split_archive = _split_file_in(root, split, ".npz")
    if split_archive is not None:
        return load_cifar10_npz(split_archive, split)
    jpeg_archive = _split_file_in(root, split, ".tar.gz")
    if jpeg_archive is not None:
        return load_cifar10_jpeg_archive(jpeg_archive, split)
    batches = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    if (batches / "test_batch").is_file() or (batches / "data_batch_1").is_file():
        return load_cifar10_batches(root, split)
    return load_cifar10_image_folder(root, split)


def build_cifar10_subset(root: str | Path, *, per_class: int = 100, out: str | Path | None = None) -> dict:
    """Write the embedded CIFAR-10 test subset: the first `per_class` test images of each class found under `root`
    (any layout `load_cifar10` reads; give exact pixels, not a JPEG copy), in their order, with their
    positions and the dataset's citation. A class with fewer images gives what it has."""
    dataset = load_cifar10(root, "test")
    labels = dataset.labels.numpy()
    index = np.sort(np.concatenate([np.nonzero(labels == c)[0][:per_class] for c in range(len(CIFAR10_CLASSES))]))
    images = (dataset.images[index] * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = Path(out) if out else EMBEDDED_CIFAR10_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, x=images, y=labels[index].astype(np.int64), index=index.astype(np.int64),
                        citation=np.array(CIFAR10_CITATION), source=np.array(dataset.source))
    return {"out": str(out), "n": int(index.size), "per_class": np.bincount(labels[index], minlength=10).tolist(),
            "source": dataset.source, "citation": CIFAR10_CITATION}


def load_embedded_cifar10(path: str | Path = EMBEDDED_CIFAR10_FILE) -> ImageDataset:
    """The CIFAR-10 test subset that ships in `assets/` (built by `python -m sia_core build-subset --world cifar10`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"The embedded CIFAR-10 subset is missing: {path}. Rebuild it from exact-pixel CIFAR-10 "
                        "(python batches or an .npz) with `python -m sia_core build-subset --world cifar10 "
                        "--data-dir PATH`.")
    dataset = load_cifar10_npz(path, "test")
    return ImageDataset(name="cifar10-test-subset", images=dataset.images, labels=dataset.labels,
                        class_names=CIFAR10_CLASSES,
                        source=f"CIFAR-10 test subset (embedded; Krizhevsky 2009), {len(dataset)} images")


def default_cifar10_root() -> Path | None:
    """Where the full CIFAR-10 is read from when no path is given: $SIA_CIFAR10_DIR, or None when it is unset.

    There is no default folder: the path comes from the data spec (`cifar10:PATH`), this variable, or a
    `[[data]]` entry of the app's config file."""
    configured = os.environ.get(CIFAR10_DIR_ENV)
    return Path(configured).expanduser() if configured else None
