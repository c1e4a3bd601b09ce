"""The ImageNet world's data: the 1,000 ImageNet-1k class names (torchvision's weights metadata, installed with
torchvision) and the embedded gallery of real photos (scripts/build_imagenet_gallery.py), some without a human
label (-1): those are attacked away from the model's own prediction."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from sia_core.data.base import ImageDataset
from sia_core.errors import DataError
from sia_core.paths import ASSETS_DIR

GALLERY_FILE = ASSETS_DIR / "data" / "imagenet_photos.npz"
GALLERY_SOURCES_FILE = ASSETS_DIR / "data" / "imagenet_photos_SOURCES.md"
NO_LABEL = -1  # a photo no ImageNet-1k class plainly names


@functools.cache
def imagenet_classes() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names, in the models' output order (torchvision's weights metadata; imported
    when first asked, not at start-up)."""
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def centre_square(array: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8: the largest centred square, resized (bicubic)."""
    from PIL import Image

    height, width = array.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(np.ascontiguousarray(array[top:top + side, left:left + side]))
    return np.asarray(square.resize((size, size), Image.Resampling.BICUBIC))


def load_gallery(path: str | Path = GALLERY_FILE) -> ImageDataset:
    """The embedded photos in [0, 1], labels in 0..999 or -1 (no human label), their sources in `source`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["x"], archive["y"]
            rows = json.loads(archive["sources"].tobytes().decode())
    except (OSError, KeyError, ValueError) as error:
        raise DataError(f"The ImageNet gallery is missing or unreadable at {path}: rebuild it with "
                        f"`python scripts/build_imagenet_gallery.py` ({error}).") from error
    return ImageDataset(name="imagenet-photos", images=torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255,
                        labels=torch.from_numpy(labels).long(), class_names=imagenet_classes(),
                        source=f"{len(rows)} photos from scikit-image's sample data (CC0 / public domain; "
                               f"{GALLERY_SOURCES_FILE.name})")


def has_unlabelled(dataset: ImageDataset) -> bool:
    return bool((dataset.labels < 0).any())


def with_model_labels(dataset: ImageDataset, predictions: torch.Tensor) -> ImageDataset:
    """Images without a human label take the model's prediction as their reference label; the attribute
    `label_is_prediction` marks which, so pages can say so."""
    missing = dataset.labels < 0
    labels = torch.where(missing, predictions.to(dataset.labels.device), dataset.labels)
    return ImageDataset(name=dataset.name, images=dataset.images, labels=labels, class_names=dataset.class_names,
                        attributes={**dataset.attributes, "label_is_prediction": missing}, source=dataset.source)


def labelled_by_prediction(dataset: ImageDataset) -> torch.Tensor:
    """Per image: does its reference label come from the model's own prediction (`with_model_labels`)? All False for
    a dataset whose labels a person gave."""
    return dataset.attributes.get("label_is_prediction", torch.zeros(len(dataset), dtype=torch.bool))


def human_labelled(dataset: ImageDataset) -> ImageDataset:
    """The images whose reference label a person gave: an accuracy over the others, which take the model's own
    prediction as their label (`with_model_labels`), would count each as correct by construction."""
    by_prediction = labelled_by_prediction(dataset)
    return dataset.subset(torch.nonzero(~by_prediction).flatten()) if bool(by_prediction.any()) else dataset


SYNSETS_IN_TIMM = "timm/data/_info/imagenet_synsets.txt"  # timm (Apache-2.0), installed --no-deps: a data file


@functools.cache
def imagenet_wordnet_ids() -> tuple[str, ...]:
    """The 1,000 WordNet ids ("n01440764", …) in the models' output order, read from the installed timm wheel's data
    file (timm itself is never imported); empty when timm is not installed, so folders must then use class names."""
    from importlib import metadata

    try:
        path = Path(str(metadata.distribution("timm").locate_file(SYNSETS_IN_TIMM)))
        ids = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    except (metadata.PackageNotFoundError, OSError):
        return ()
    return ids if len(ids) == 1000 else ()


def _normalized(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


def imagenet_index(folder_name: str) -> Optional[int]:
    """The ImageNet-1k class a folder names, by its WordNet id as ImageNet's own folders do ("n02123045") or by its
    class name ("tabby", "Egyptian_cat", "wall clock"; case, '_' and '-' ignored), or None."""
    wordnet = {wnid: index for index, wnid in enumerate(imagenet_wordnet_ids())}
    if folder_name.strip().lower() in wordnet:
        return wordnet[folder_name.strip().lower()]
    names = {_normalized(name): index for index, name in enumerate(imagenet_classes())}
    return names.get(_normalized(folder_name))


def as_imagenet(dataset: ImageDataset) -> ImageDataset:
    """An image folder's dataset with its folder names mapped onto the 1,000 ImageNet-1k classes (labels become
    ImageNet indices), so the ImageNet models take it; folders no class names are an error that lists them."""
    mapping = {index: imagenet_index(name) for index, name in enumerate(dataset.class_names)}
    unknown = [dataset.class_names[index] for index, target in mapping.items() if target is None]
    if unknown:
        raise DataError(f"{len(unknown)} folder(s) name no ImageNet-1k class: {', '.join(unknown[:5])}"
                        f"{' …' if len(unknown) > 5 else ''}. Name each folder by its class as ImageNet does "
                        "(e.g. n02123045, tabby, Egyptian_cat, wall_clock).")
    labels = torch.tensor([mapping[int(label)] for label in dataset.labels], dtype=torch.long)
    return ImageDataset(name=dataset.name, images=dataset.images, labels=labels, class_names=imagenet_classes(),
                        attributes=dataset.attributes, source=f"{dataset.source}, folders mapped to ImageNet-1k")
