"""The command line: JSON output, and one clear line (exit 2) for bad input, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import PROJECT_ROOT


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sia_core", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_models_json_lists_the_shipped_models_with_measured_accuracies():
    result = run_cli("models", "--json")
    assert result.returncode == 0, result.stderr
    models = {m["id"]: m for m in json.loads(result.stdout)["models"]}
    assert {"fmnist-standard", "fmnist-robust", "shapes-standard", "shapes-spurious-hue"} <= set(models)
    for card in models.values():
        assert card["training"]["command"].startswith("python -m sia_core train")
        evaluation = card["evaluations"][0]
        assert evaluation["n"] >= 5000 and 0.2 < evaluation["clean_accuracy"] <= 1.0  # chance is 0.1 / 0.2


def test_evaluate_json_matches_a_direct_computation():
    result = run_cli("evaluate", "--model", "fmnist-standard", "--dataset", "fashion-mnist-subset", "--n", "200",
                     "--attack", "pgd-linf", "--eps", "0.1", "--steps", "5", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 200 and report["attack"] == "pgd-linf" and report["eps"] == 0.1
    from sia_core.data.catalog import load_dataset
    from sia_core.models.registry import load_model

    data = load_dataset("fashion-mnist-subset", n=200)
    clean = float((load_model("fmnist-standard").logits(data.images).argmax(1) == data.labels).float().mean())
    assert report["clean_accuracy"] == pytest.approx(clean, abs=1e-4)
    assert 0 <= report["robust_accuracy"] <= report["clean_accuracy"]


def test_predict_json(tmp_path):
    path = tmp_path / "x.png"
    Image.new("L", (28, 28), 0).save(path)
    result = run_cli("predict", "--model", "fmnist-standard", "--image", str(path), "--json")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["predicted_class"] in output["probabilities"]
    assert sum(output["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)


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


def test_margins_json_has_the_issue_keys(tmp_path):
    result = run_cli("margins", "--model", "fmnist-standard", "--n", "40", "--eps", "0.0078", "--bisection-steps", "4",
                     "--pgd-steps", "5", "--pseudo-fit", "40", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("model", "n", "norm", "eps", "kendall_tau", "pearson", "auroc", "aupr", "fpr_at_95_tpr",
                "seconds_logit_margins", "seconds_input_margins", "robust_accuracy_attack", "robust_accuracy_estimate",
                "pseudo_kendall_tau_before", "pseudo_kendall_tau_after"):
        assert key in report, key
    assert report["n"] == 40 and report["seconds_input_margins"] > report["seconds_logit_margins"]
