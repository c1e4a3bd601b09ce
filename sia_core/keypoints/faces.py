"""Faces: MTCNN's O-Net (sia_core.models.onet) as a keypoint model of five landmarks on a 48×48 face crop, a crop of
a photo as MTCNN makes it, and the points carried back into the photo's pixels."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from sia_core.data.base import ImageDataset
from sia_core.errors import DataError, ImageDecodeError
from sia_core.keypoints.task import KeypointTask, inter_ocular_distance
from sia_core.keypoints.wrapper import KeypointWrapper
from sia_core.models.onet import LANDMARKS, ONET_SIZE, load_onet
from sia_core.validation import require

# O-Net's inputs are (x·255 − 127.5) / 128: per channel, mean 127.5/255 and std 128/255 on images in [0, 1]
ONET_MEAN, ONET_STD = 127.5 / 255, 128 / 255
FACE_TASK = KeypointTask(normalizer="inter-ocular", threshold=0.1, eyes=(0, 1))


def onet_keypoints(model_id: str = "mtcnn-onet") -> KeypointWrapper:
    """O-Net's landmark head behind the one keypoint wrapper (frozen weights from the facenet-pytorch wheel)."""
    return KeypointWrapper(load_onet(), points_of=lambda output: output.landmarks, mean=[ONET_MEAN] * 3,
                           std=[ONET_STD] * 3, input_shape=(3, ONET_SIZE, ONET_SIZE), point_names=LANDMARKS,
                           task=FACE_TASK, model_id=model_id).eval()


def face_crop(photo: torch.Tensor, box: tuple[float, float, float, float]) -> torch.Tensor:
    """(1, 3, 48, 48): the pixels of `box` (x0, y0, x1, y1, inclusive, in the photo's pixels) of a (3, H, W) photo
    in [0, 1], resized by area averaging, as MTCNN feeds O-Net."""
    require(photo.ndim == 3 and photo.shape[0] == 3, f"photo must be (3, H, W), got {tuple(photo.shape)}.")
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    height, width = photo.shape[1:]
    require(0 <= x0 < x1 < width and 0 <= y0 < y1 < height,
            f"The box {box} does not lie inside the {width}×{height} photo.")
    return F.interpolate(photo[:, y0:y1 + 1, x0:x1 + 1].unsqueeze(0), size=(ONET_SIZE, ONET_SIZE), mode="area")


def points_in_photo(points: torch.Tensor, box: tuple[float, float, float, float]) -> torch.Tensor:
    """(N, K, 2) crop fractions to the photo's pixels, as MTCNN maps them (x0 + w·x − 1, y0 + h·y − 1)."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    scale = torch.tensor([x1 - x0 + 1, y1 - y0 + 1], dtype=points.dtype)
    return points * scale + torch.tensor([x0 - 1, y0 - 1], dtype=points.dtype)


# --- photos: faces found by MTCNN, cut as O-Net sees them -----------------------------------------------------------

# marked by eye on a 3× enlargement of scikit-image's astronaut.png: pupils, nose tip, mouth corners, in its pixels
ASTRONAUT_MARKED = ((204.0, 100.0), (245.0, 102.0), (223.0, 126.0), (202.0, 138.0), (243.0, 141.0))
# scikit-image's sample photos with a face MTCNN finds (at 0.999 or more): Eileen Collins (NASA, public domain) and
# the cameraman (CC0, Lav Varshney), as scikit-image documents them; the only faces at hand offline
SAMPLE_FACE_PHOTOS = ("astronaut", "camera")
MIN_FACE_PROBABILITY = 0.9  # a dataset keeps the faces O-Net is at least this sure of
MAX_FACE_PHOTOS = 500
SMALL_CROP_SIDE = 64  # a photo this small with no face found is taken as a face crop already


@functools.lru_cache(maxsize=1)
def face_detector():
    """MTCNN's cascade, built once per process (frozen, used under inference mode only: safe to share)."""
    from sia_core.keypoints.mtcnn import FaceDetector

    return FaceDetector()


def crop_of(photo: torch.Tensor, detection) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """The (1, 3, 48, 48) crop O-Net looked at for `detection`, and its box in whole pixels (inclusive)."""
    from sia_core.keypoints.mtcnn import face_crop_box

    box = face_crop_box(detection, photo.shape[2], photo.shape[1])
    return face_crop(photo, box), box


def sample_photo(name: str) -> torch.Tensor:
    """(3, H, W) one of scikit-image's sample photos, RGB in [0, 1]."""
    try:
        from skimage import data
    except ImportError as error:
        raise DataError("The face photos come from scikit-image's sample data: pip install scikit-image==0.26.0 "
                        "(bash scripts/setup.sh does).") from error
    array = getattr(data, name)()
    tensor = torch.from_numpy(array.copy()).float() / 255
    return tensor.unsqueeze(0).expand(3, -1, -1).contiguous() if tensor.ndim == 2 else tensor.permute(2, 0, 1)


def hand_marked_evaluation() -> dict:
    """O-Net's card measure: MTCNN on the astronaut photo, its five landmarks against the hand-marked ones (NME by
    the inter-ocular distance, and each point's error)."""
    photo = sample_photo("astronaut")
    detection = face_detector().detect(photo)[0]
    marked = torch.tensor(ASTRONAUT_MARKED).unsqueeze(0)
    errors = (detection.landmarks.unsqueeze(0) - marked).norm(dim=2) / inter_ocular_distance(marked)
    return {"metric": "nme", "test_set": "scikit-image astronaut.png, five landmarks marked by hand", "test_n": 1,
            "normalizer": "inter-ocular", "threshold": FACE_TASK.threshold,
            "mean_nme": round(float(FACE_TASK.errors(detection.landmarks.unsqueeze(0), marked)), 5),
            "point_errors": [round(float(v), 4) for v in errors[0]],
            "face_probability": round(detection.probability, 6),
            "box": [round(v, 1) for v in detection.box]}


def _faces_dataset(crops: list[torch.Tensor], origins: list[str], name: str, source: str) -> ImageDataset:
    if not crops:
        raise DataError(f"{name}: no face found (MTCNN, probability at least {MIN_FACE_PROBABILITY}).")
    return ImageDataset(name=name, images=torch.cat(crops), labels=torch.zeros(len(crops), dtype=torch.long),
                        class_names=("face",), source=f"{source}: {len(crops)} face crops ({', '.join(origins[:6])}"
                                                      f"{', ...' if len(origins) > 6 else ''})",
                        point_names=LANDMARKS)


def sample_faces() -> ImageDataset:
    """The faces of scikit-image's sample photos as 48×48 crops (two: the whole offline face world)."""
    crops, origins = [], []
    for name in SAMPLE_FACE_PHOTOS:
        photo = sample_photo(name)
        for index, detection in enumerate(face_detector().detect(photo)):
            if detection.probability >= MIN_FACE_PROBABILITY:
                crops.append(crop_of(photo, detection)[0])
                origins.append(f"{name}.png face {index + 1}")
    return _faces_dataset(crops, origins, "face-photos", "scikit-image sample photos, faces found by MTCNN")


def load_face_folder(root: Path, *, n: Optional[int] = None) -> ImageDataset:
    """Every face MTCNN finds in the photos under `root` (any depth; PNG, JPEG or WebP), as 48×48 crops; a photo of
    at most 64 px where none is found counts as a face crop already. At most `n` (default 500) faces."""
    from sia_core.data.archive import IMAGE_SUFFIXES
    from sia_core.data.images import decode_photo

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Face folder not found: {root}")
    limit = n or MAX_FACE_PHOTOS
    crops, origins = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        if len(crops) >= limit:
            break
        try:
            photo = decode_photo(path.read_bytes())
        except ImageDecodeError:
            continue  # not an image after all: the others still count
        found = [d for d in face_detector().detect(photo) if d.probability >= MIN_FACE_PROBABILITY]
        for detection in found[:limit - len(crops)]:
            crops.append(crop_of(photo, detection)[0])
            origins.append(path.name)
        if not found and max(photo.shape[1:]) <= SMALL_CROP_SIDE:
            crops.append(F.interpolate(photo.unsqueeze(0), size=(ONET_SIZE, ONET_SIZE), mode="area"))
            origins.append(path.name)
    return _faces_dataset(crops, origins, f"face-folder-{root.name}", f"faces in {root}")
