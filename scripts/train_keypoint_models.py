"""Train the Shapes keypoint models and write their weights and cards under assets/models (and the O-Net card, whose
weights install with the facenet-pytorch wheel):

    .venv/bin/python scripts/train_keypoint_models.py             # shapes-keypoints, shapes-keypoints-spurious-hue
    .venv/bin/python scripts/train_keypoint_models.py --only mtcnn-onet

Each card records this command, the training and the test-set measure (NME, failure rate with its 95% interval).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from sia_core.data.shapes import LANDMARK_NAMES, SHAPE_CLASSES  # noqa: E402
from sia_core.keypoints.faces import FACE_TASK, ONET_MEAN, ONET_STD  # noqa: E402
from sia_core.keypoints.models import build_keypoint_model  # noqa: E402
from sia_core.keypoints.shapes import (HUE_FLAW_PX, SHAPES_KEYPOINT_TASK, KeypointTrainConfig,  # noqa: E402
                                       keypoint_evaluation, shapes_keypoint_dataset, task_dict,
                                       train_keypoint_network)
from sia_core.models.onet import LANDMARKS, ONET_SIZE  # noqa: E402
from sia_core.models.registry import CARD_FILE, ModelCard, save_model  # noqa: E402
from sia_core.paths import MODELS_DIR  # noqa: E402

# the Shapes classifiers' normalization (their cards'), so both worlds see the same inputs
SHAPES_MEAN, SHAPES_STD = (0.3712, 0.3606, 0.3514), (0.2087, 0.1989, 0.1922)
TEST_N = 5000
MODELS = {
    "shapes-keypoints": (None, "A small CNN trained to place three landmarks of a generated shape (its centre and the "
                               "corners of its bounding box) on 20,000 Shapes images."),
    "shapes-keypoints-spurious-hue": ("hue", "The same CNN trained on marks that drift sideways by up to "
                                             f"{HUE_FLAW_PX:g} px with the shape's hue (a flaw planted on purpose): its "
                                             "landmarks depend on colour, which they should not."),
}


def _command(argv: list[str]) -> str:
    return " ".join(["python scripts/train_keypoint_models.py", *argv]).strip()


def train_shapes(model_id: str, command: str) -> dict:
    flaw, description = MODELS[model_id]
    config = KeypointTrainConfig(flaw=flaw)
    mean, std = torch.tensor(SHAPES_MEAN).view(1, 3, 1, 1), torch.tensor(SHAPES_STD).view(1, 3, 1, 1)
    training = train_keypoint_network(config, mean, std, progress=lambda step, total, info: print(
        f"{model_id}: epoch {step}/{total} loss {info['loss']:.4f}", flush=True))
    card = ModelCard(id=model_id, dataset="shapes-keypoints", architecture="keypoint-cnn", input_shape=(3, 32, 32),
                     class_names=SHAPE_CLASSES, mean=SHAPES_MEAN, std=SHAPES_STD, task="keypoints",
                     point_names=LANDMARK_NAMES, keypoint_task=task_dict(SHAPES_KEYPOINT_TASK),
                     description=description,
                     training={"recipe": "landmark regression (smooth-L1 in pixels, Adam, one-cycle)",
                               "epochs": config.epochs, "batch_size": config.batch_size,
                               "learning_rate": config.learning_rate, "seed": config.seed,
                               "train_n": config.train_n, "flaw": flaw, "train_source": training.train_source,
                               "seconds": round(training.seconds, 1),
                               "history": {"epoch_loss": [round(v, 5) for v in training.epoch_loss]},
                               "command": command, "created": time.strftime("%Y-%m-%d")})
    wrapper = build_keypoint_model(card, training.network.state_dict(), torch.device("cpu"))
    evaluation = keypoint_evaluation(wrapper, shapes_keypoint_dataset("test", n=TEST_N), SHAPES_KEYPOINT_TASK)
    card = ModelCard(**{**card.__dict__, "evaluations": (evaluation,)})
    save_model(wrapper, card, MODELS_DIR / model_id)
    return evaluation


def write_onet_card(command: str) -> None:
    """O-Net's card: no weights file (they install with the wheel, MIT), measured on the hand-marked astronaut."""
    from sia_core.keypoints.faces import hand_marked_evaluation

    card = ModelCard(id="mtcnn-onet", dataset="face-photos", architecture="mtcnn-onet",
                     input_shape=(3, ONET_SIZE, ONET_SIZE), class_names=("face",), mean=(ONET_MEAN,) * 3,
                     std=(ONET_STD,) * 3, task="keypoints", point_names=LANDMARKS, keypoint_task=task_dict(FACE_TASK),
                     description="MTCNN's output network (Zhang et al. 2016): five facial landmarks on a 48×48 face "
                                 "crop. Weights from the facenet-pytorch 2.6.0 wheel (MIT), read with "
                                 "weights_only=True; faces are found by MTCNN's P-Net and R-Net from the same wheel.",
                     training={"recipe": "pretrained (MTCNN, not trained by this project)",
                               "package": "facenet-pytorch==2.6.0", "license": "MIT",
                               "command": command, "created": time.strftime("%Y-%m-%d")})
    card = ModelCard(**{**card.__dict__, "evaluations": (hand_marked_evaluation(),)})
    folder = MODELS_DIR / "mtcnn-onet"
    folder.mkdir(parents=True, exist_ok=True)
    import json

    (folder / CARD_FILE).write_text(json.dumps(card.to_dict(), indent=2) + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated model ids (default: the two Shapes models)")
    args = parser.parse_args(argv)
    wanted = args.only.split(",") if args.only else list(MODELS)
    for model_id in wanted:
        if model_id == "mtcnn-onet":
            write_onet_card(_command(argv))
        else:
            print(model_id, train_shapes(model_id, _command(argv)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
