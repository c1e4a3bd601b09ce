"""One photo through a keypoint model, as the CLI's `predict` reports it: for O-Net the faces MTCNN finds, each with
its five landmarks in the photo's own pixels; for a model of whole images (the Shapes landmarks) its points on the
photo resized to the model's input, carried back to the photo's pixels."""

from __future__ import annotations

from typing import Any

from sia_core.data.images import decode_image, decode_photo
from sia_core.keypoints.faces import crop_of, face_detector, points_in_photo


def _rounded(points) -> list[list[float]]:
    return [[round(float(x), 2), round(float(y), 2)] for x, y in points]


def predict_keypoints(model, card, data: bytes) -> dict[str, Any]:
    """`data` (PNG/JPEG/WebP bytes) through the keypoint model `model` (with its `card`): `keypoints` are the first
    face's (or the image's) points, [x, y] in the photo's pixels, named by `point_names`."""
    names = list(card.point_names)
    if card.architecture == "mtcnn-onet":
        photo = decode_photo(data)
        faces = []
        for detection in face_detector().detect(photo):
            crop, box = crop_of(photo, detection)
            points = points_in_photo(model.points(crop), box)[0]  # O-Net on the crop MTCNN cut, via our wrapper
            faces.append({"box": [round(v, 1) for v in detection.box], "probability": round(detection.probability, 6),
                          "crop_box": list(box), "keypoints": _rounded(points)})
        return {"model": card.id, "task": "keypoints", "point_names": names, "faces": faces,
                "keypoints": faces[0]["keypoints"] if faces else [],
                "width": int(photo.shape[2]), "height": int(photo.shape[1]),
                "message": "" if faces else "No face found (MTCNN: smallest face 20 px)."}
    photo = decode_photo(data)
    height, width = photo.shape[1:]
    image = decode_image(data, model.input_shape)  # the centre at the model's aspect ratio
    side = min(height, width)  # decode_image keeps the largest centred crop of that aspect (square models here)
    fractions = model.points(image)[0]
    x = fractions[:, 0] * side + (width - side) / 2
    y = fractions[:, 1] * side + (height - side) / 2
    return {"model": card.id, "task": "keypoints", "point_names": names,
            "keypoints": _rounded(zip(x.tolist(), y.tolist())), "width": int(width), "height": int(height)}
