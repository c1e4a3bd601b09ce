"""Real faces: MTCNN's cascade on the facenet-pytorch wheel's weights finds the astronaut's face and landmarks, the
CLI's predict returns them in the photo's pixels, a folder of photos becomes face crops, and the attribute edits alone
push O-Net's NME above the failure threshold."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("skimage")

from sia_core.keypoints.faces import ASTRONAUT_MARKED, FACE_TASK  # noqa: E402
from sia_core.keypoints.task import inter_ocular_distance  # noqa: E402

MARKED = torch.tensor(ASTRONAUT_MARKED)


def _within_a_tenth_of_the_eye_distance(points: torch.Tensor) -> None:
    distance = (points - MARKED).norm(dim=1) / inter_ocular_distance(MARKED.unsqueeze(0))
    assert bool((distance < 0.10).all()), distance


def test_mtcnn_finds_the_astronauts_face_where_the_issue_measured_it():
    from sia_core.keypoints.faces import face_detector, sample_photo

    faces = face_detector().detect(sample_photo("astronaut"))
    assert len(faces) == 1
    assert faces[0].box == pytest.approx((181, 62, 268, 172), abs=2)
    assert faces[0].probability > 0.9999
    _within_a_tenth_of_the_eye_distance(faces[0].landmarks)


def test_predict_returns_the_five_landmarks_in_the_photos_pixels(tmp_path, capsys):
    from skimage import data
    from PIL import Image

    from sia_core.cli import main

    path = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    assert main(["predict", "--model", "mtcnn-onet", "--image", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["point_names"][:2] == ["left eye", "right eye"] and len(result["keypoints"]) == 5
    _within_a_tenth_of_the_eye_distance(torch.tensor(result["keypoints"]))
    assert FACE_TASK.errors(torch.tensor([result["keypoints"]]), MARKED.unsqueeze(0)).item() < 0.05


def test_predict_says_plainly_when_no_face_is_found(tmp_path, capsys):
    from PIL import Image

    from sia_core.cli import main

    path = tmp_path / "grey.png"
    Image.new("RGB", (120, 90), (128, 128, 128)).save(path)
    assert main(["predict", "--model", "mtcnn-onet", "--image", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["faces"] == [] and result["keypoints"] == [] and "No face" in result["message"]


def test_a_folder_of_photos_and_crops_becomes_face_crops_and_an_empty_one_a_clear_message(tmp_path):
    from skimage import data
    from PIL import Image

    from sia_core.data.catalog import load_dataset
    from sia_core.errors import DataError

    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")
    Image.fromarray(data.astronaut()[67:168, 177:278]).resize((40, 40)).save(tmp_path / "crop.png")
    (tmp_path / "notes.png").write_text("not an image")
    Image.new("RGB", (30, 30), (90, 60, 40)).save(tmp_path / "tiny.png")  # no face found in it: taken as a crop
    faces = load_dataset(f"face-folder:{tmp_path}")
    assert faces.images.shape[1:] == (3, 48, 48) and faces.point_names[0] == "left eye"
    assert len(faces) >= 3 and all(name in faces.source for name in ("astronaut.png", "crop.png", "tiny.png"))
    assert "notes.png" not in faces.source
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no face found"):
        load_dataset(f"face-folder:{empty}")


def test_attribute_edits_alone_push_onets_nme_past_the_failure_threshold():
    from sia_core.attacks.semantic import SemanticAttack
    from sia_core.resolve import resolve

    subject = resolve("mtcnn-onet")
    assert subject.test_set.keypoint_reference == "model prediction" and len(subject.test_set) == 2
    x, reference = subject.test_set.images, subject.test_set.keypoints
    result = SemanticAttack(eps_linf=0.0, steps=30)(subject.model, x, reference)
    nme = FACE_TASK.errors(result.adversarial_logits, result.reference)
    assert bool(result.success.any()) and float(nme.max()) > 0.1
    assert bool((result.success == (nme > 0.1)).all())
    # what moved is a person-visible edit: the attributes, not pixels (there is no pixel term)
    assert float(result.normalized_magnitudes().max()) > 0.1
