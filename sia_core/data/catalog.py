"""Datasets by name, so a model card, the CLI and the app can say "fashion-mnist" and mean the same thing.

`DATASETS` is the one list of them: the CLI's choices, the sidebar's selectbox and `load_dataset` all read it.
Adding a dataset is one `Entry` whose factory is a `DatasetLoader`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Protocol

from sia_core.data.base import ImageDataset, Split
from sia_core.data.cifar10 import CIFAR10_DIR_ENV, default_cifar10_root, load_cifar10, load_embedded_cifar10
from sia_core.data.fashion_mnist import (default_fashion_mnist_root, load_embedded_subset, load_fashion_mnist,
                                         load_mnist)
from sia_core.data.folders import load_image_folder, load_npz
from sia_core.data.imagenet import as_imagenet, load_gallery
from sia_core.data.shapes import SPURIOUS_ATTRIBUTES, shapes_dataset
from sia_core.errors import ConfigError, DataError
from sia_core.registry import Entry, Registry
from sia_core.validation import one_of, optional, positive_int

SPLITS: tuple[str, ...] = ("train", "test")


class DatasetLoader(Protocol):
    """What an entry's factory is called with; `root` is None for datasets that need no path, and the options
    are the entry's `options` trait (e.g. Shapes' spurious attribute)."""

    def __call__(self, *, split: Split, root: Optional[Path], n: Optional[int], seed: int,
                 **options: Any) -> ImageDataset: ...


def _read_from_files(read: Callable[[Path, Split], ImageDataset]) -> DatasetLoader:
    """A loader for a dataset stored in files: read the split at `root`, keep the first `n` images."""
    def load(*, split: Split, root: Optional[Path], n: Optional[int], seed: int) -> ImageDataset:
        dataset = read(root, split)  # type: ignore[arg-type]  # load_dataset has checked that a path is there
        return dataset if n is None else dataset.subset(slice(0, n))
    return load


def _image_folder(*, split: Split, root: Optional[Path], n: Optional[int], seed: int,
                  image_shape: Optional[tuple[int, int, int]] = None) -> ImageDataset:
    # resized while decoding: 5,000 images at 224x224 would not fit in memory at their own size first
    return load_image_folder(root, split, image_shape=image_shape, n=n)  # type: ignore[arg-type]


def _imagenet_folder(*, split: Split, root: Optional[Path], n: Optional[int], seed: int,
                     image_shape: Optional[tuple[int, int, int]] = None) -> ImageDataset:
    return as_imagenet(load_image_folder(root, split, image_shape=image_shape, n=n))  # type: ignore[arg-type]


def _npz_file(*, split: Split, root: Optional[Path], n: Optional[int], seed: int) -> ImageDataset:
    return load_npz(root, n=n)  # type: ignore[arg-type]


def _embedded_subset(*, split: Split, root: Optional[Path], n: Optional[int], seed: int) -> ImageDataset:
    dataset = load_embedded_subset()
    return dataset if n is None else dataset.subset(slice(0, n))


def _imagenet_gallery(*, split: Split, root: Optional[Path], n: Optional[int], seed: int) -> ImageDataset:
    dataset = load_gallery()
    return dataset if n is None else dataset.subset(slice(0, n))


def _embedded_cifar10(*, split: Split, root: Optional[Path], n: Optional[int], seed: int) -> ImageDataset:
    dataset = load_embedded_cifar10()
    return dataset if n is None else dataset.subset(slice(0, n))


def _generated_shapes(*, split: Split, root: Optional[Path], n: Optional[int], seed: int,
                      spurious: Optional[str] = None, spurious_strength: float = 0.95) -> ImageDataset:
    return shapes_dataset(split, n=n, seed=seed, spurious=spurious,  # type: ignore[arg-type]
                          spurious_strength=spurious_strength)


def _generated_shapes_keypoints(*, split: Split, root: Optional[Path], n: Optional[int], seed: int) -> ImageDataset:
    from sia_core.keypoints.shapes import shapes_keypoint_dataset  # the keypoint world's module, loaded when asked

    return shapes_keypoint_dataset(split, n=n, seed=seed)


def _face_photos(*, split: Split, root: Optional[Path], n: Optional[int], seed: int) -> ImageDataset:
    from sia_core.keypoints.faces import sample_faces

    dataset = sample_faces()
    return dataset if n is None else dataset.subset(slice(0, n))


def _face_folder(*, split: Split, root: Optional[Path], n: Optional[int], seed: int) -> ImageDataset:
    from sia_core.keypoints.faces import load_face_folder

    return load_face_folder(root, n=n)  # type: ignore[arg-type]


# Traits, read by `load_dataset`, the CLI and the sidebar:
#   splits        the splits the dataset has (the embedded subset is a test set only: never train on it)
#   needs_path    a folder or file is required (`default_root`, when set, is used if none is given)
#   path_env      the environment variable `default_root` is read from
#   test_fallback the dataset the CLI evaluates on when the default root is absent (a subset that ships)
#   path_label    the sidebar's label for the path field, for datasets read from files
#   options       extra keyword options the loader takes beyond split/root/n/seed
#   app_test_n    how many test images the app loads (generated sets are sized on demand)
#   one_split     the same images serve both splits (a folder without train/ and test/, one .npz file)
DATASETS: Registry[ImageDataset] = Registry("dataset", [
    Entry("fashion-mnist-subset", "Fashion-MNIST test subset (embedded)",
          "A balanced subset of the Fashion-MNIST test split that ships with the app: 250 images per class.",
          _embedded_subset, traits={"splits": ("test",)}),
    Entry("shapes", "Shapes test split (generated)",
          "Generated 32x32 RGB shapes (circle, square, triangle, cross, ring) with known attributes; the train split "
          "can correlate one attribute with the class on purpose.",
          _generated_shapes, traits={"splits": SPLITS, "options": ("spurious", "spurious_strength"),
                                     "app_test_n": 2000}),
    Entry("shapes-keypoints", "Shapes with landmarks (generated)",
          "The generated Shapes with three landmarks per image (the shape's centre and the corners of its bounding "
          "box), known exactly from how each image was drawn: the keypoint models' ground truth.",
          _generated_shapes_keypoints, traits={"splits": SPLITS, "app_test_n": 2000, "task": "keypoints"}),
    Entry("face-photos", "Faces in sample photos (scikit-image)",
          "The faces MTCNN finds in scikit-image's sample photos (the astronaut and the cameraman), as 48×48 crops: "
          "the only faces at hand offline, two of them; a folder of your photos gives more.",
          _face_photos, traits={"splits": ("test",), "task": "keypoints"}),
    Entry("face-folder", "Faces in a folder of photos",
          "Your photos (PNG, JPEG or WebP, any depth of sub-folders): every face MTCNN finds, cut as O-Net sees it "
          "(48×48); small images where none is found count as face crops already. At most 500 faces.",
          _face_folder, traits={"splits": SPLITS, "needs_path": True, "path_label": "Folder of photos or face crops",
                                "path_placeholder": "/path/to/photos", "one_split": True, "task": "keypoints"}),
    Entry("cifar10-subset", "CIFAR-10 test subset (embedded)",
          "The first test images of each CIFAR-10 class (up to 100; exact pixels), shipped with the app. "
          "CIFAR-10: Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009.",
          _embedded_cifar10, traits={"splits": ("test",)}),
    Entry("imagenet-photos", "ImageNet world: photos (embedded)",
          "Real photos at 224 px from scikit-image's sample data (CC0 or public domain), for the ImageNet-1k models; "
          "those no ImageNet class plainly names carry no label and are attacked away from the model's own "
          "prediction.",
          _imagenet_gallery, traits={"splits": ("test",)}),
    Entry("fashion-mnist", "Fashion-MNIST from a folder",
          "The full Fashion-MNIST (60,000 train, 10,000 test images) from idx files: torchvision's layout, the Debian "
          "package dataset-fashion-mnist, or a bare folder.",
          _read_from_files(load_fashion_mnist),
          traits={"splits": SPLITS, "needs_path": True, "default_root": default_fashion_mnist_root(),
                  "test_fallback": "fashion-mnist-subset", "path_label": "Fashion-MNIST folder"}),
    Entry("cifar10", "CIFAR-10 from a folder or .npz",
          "CIFAR-10 from torchvision's python batches, an ImageFolder tree (one folder per class) or an .npz with "
          "x (N, 32, 32, 3) uint8 and y.",
          _read_from_files(load_cifar10),
          traits={"splits": SPLITS, "needs_path": True, "path_label": "CIFAR-10 folder or .npz",
                  "path_placeholder": "/path/to/cifar-10-batches-py", "default_root": default_cifar10_root(),
                  "path_env": CIFAR10_DIR_ENV}),
    Entry("mnist", "MNIST from a folder",
          "MNIST handwritten digits (classes 0-9) from idx files: torchvision's layout (<folder>/MNIST/raw) or a "
          "bare folder.",
          _read_from_files(load_mnist),
          traits={"splits": SPLITS, "needs_path": True, "path_label": "MNIST folder",
                  "path_placeholder": "/path/to/data (holding MNIST/raw)"}),
    Entry("imagefolder", "Image folder (one sub-folder per class)",
          "Your own images: <folder>/<class name>/<image files>, or with train/ and test/ inside; any size (resized "
          "to the model's input), class names from the folder names, at most 5,000 images taken across the classes.",
          _image_folder,
          traits={"splits": SPLITS, "needs_path": True, "path_label": "Image folder",
                  "path_placeholder": "/path/to/images", "options": ("image_shape",), "one_split": True,
                  "app_test_n": 1000}),
    Entry("imagenet-folder", "ImageNet-style image folder (sub-folders named by WordNet id or ImageNet class)",
          "Your photos for the ImageNet-1k models: <folder>/<WordNet id or class name>/<image files> (e.g. n02123045/ "
          "as in ImageNet's own folders, or tabby/, wall_clock/), any size (cropped to the centre and resized to the model's input), at most 5,000 images.",
          _imagenet_folder,
          traits={"splits": SPLITS, "needs_path": True, "path_label": "ImageNet-style folder",
                  "path_placeholder": "/path/to/photos", "options": ("image_shape",), "one_split": True,
                  "app_test_n": 1000}),
    Entry("npz", "NumPy .npz file",
          "Arrays in an .npz: x (uint8 or [0, 1] floats, NHWC or NCHW, 1 or 3 channels), y (integer labels) and "
          "optionally class_names.",
          _npz_file,
          traits={"splits": SPLITS, "needs_path": True, "path_label": ".npz file",
                  "path_placeholder": "/path/to/data.npz", "one_split": True}),
])


def resolve_dataset(spec: str, root: Optional[str | Path] = None) -> tuple[Entry[ImageDataset], Optional[Path]]:
    """The entry and path a dataset spec names: a name ("cifar10") with `root`, or "name:path" ("cifar10:/data")."""
    prefix, separator, path = spec.partition(":")
    if separator and prefix in DATASETS:
        if root is not None and Path(root) != Path(path):
            raise ConfigError(f"The dataset {spec!r} names a path and another one was given ({root}); give it once.")
        entry, root = DATASETS[prefix], path
    else:
        entry = DATASETS[spec]
    if root is None or str(root) == "":
        root = entry.traits.get("default_root")
    return entry, None if root is None else Path(root).expanduser()


def _no_path_message(entry: Entry[ImageDataset]) -> str:
    """Every way to give a dataset its path: there is no default folder."""
    ways = [f"as a path or in the data spec ({entry.name}:PATH)"]
    if "path_env" in entry.traits:
        ways.append(f"in ${entry.traits['path_env']}")
    ways.append(f"in a [[data]] spec = \"{entry.name}:PATH\" of the app's config file (sia_explorer.toml)")
    return (f"The dataset {entry.name} needs a path ({entry.traits['path_label']}): give it "
            f"{', '.join(ways[:-1])}{',' if len(ways) > 2 else ''} or {ways[-1]}.")


def load_dataset(name: str, split: Split = "test", *, root: Optional[str | Path] = None,
                 spurious: Optional[str] = None, spurious_strength: float = 0.95,
                 n: Optional[int] = None, seed: int = 0,
                 image_shape: Optional[tuple[int, int, int]] = None) -> ImageDataset:
    """Load split `split` of the dataset `name` (a `DATASETS` name, or "name:path"), the first `n` images if given,
    as `image_shape` (C, H, W) when given (a model's input: resized and converted between gray and RGB).

    Each entry's description says what it reads; `spurious` (Shapes only) correlates an attribute with the class
    in the train split. A bad name, split, count or option raises a `ConfigError`, missing data a `DataError`.
    """
    entry, path = resolve_dataset(name, root)
    one_of("split", split, SPLITS)
    optional(positive_int, "n", n)
    if split not in entry.traits["splits"]:
        raise DataError(f"The dataset {entry.name} has no {split} split, only {', '.join(entry.traits['splits'])}.")
    if entry.traits.get("needs_path") and path is None:
        raise DataError(_no_path_message(entry))
    takes_spurious = "spurious" in entry.traits.get("options", ())
    if spurious is not None and not takes_spurious:
        raise ConfigError(f"A spurious attribute ({', '.join(SPURIOUS_ATTRIBUTES)}) applies to generated datasets "
                          f"only, not to {entry.name}.")
    options = {"spurious": spurious, "spurious_strength": spurious_strength} if takes_spurious else {}
    if "image_shape" in entry.traits.get("options", ()):
        options["image_shape"] = image_shape
    dataset = entry.build(split=split, root=path, n=n, seed=seed, **options)
    return dataset if image_shape is None else dataset.resized(image_shape)
