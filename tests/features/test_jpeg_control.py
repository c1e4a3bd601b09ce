"""The JPEG control (sia_core.features.jpeg_control and `features_at_scale.py jpeg-control`): JPEG re-encoding drops
fine detail and keeps smooth images, the report averages seeds per image and pairs the arms by image, and the
script's tiny tier trains both arms on the exact CIFAR-10 images at hand, resumes, and reaches the study file."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from sia_core.errors import ConfigError
from sia_core.features.jpeg_control import (JpegControlArm, JpegControlConfig, attacked_sample, jpeg_reencode,
                                            summarize)

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "features_at_scale.py"
EXACT = SCRIPT.parents[2] / "shared" / "data" / "cifar10-subset"


def test_jpeg_keeps_a_smooth_image_and_loses_fine_detail():
    ramp = torch.linspace(0, 1, 32).expand(3, 32, 32).unsqueeze(0)  # smooth: one gradient across the image
    noise = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))  # detail at every frequency
    flat = torch.full((1, 3, 32, 32), 128 / 255)
    for images in (ramp, noise, flat):
        out = jpeg_reencode(images)
        assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    assert float((jpeg_reencode(flat) - flat).abs().max()) < 0.5 / 255
    smooth_error = float((jpeg_reencode(ramp) - ramp).abs().mean())
    detail_error = float((jpeg_reencode(noise) - noise).abs().mean())
    assert smooth_error < 1 / 255 and detail_error > 20 * smooth_error  # quality 75 quantizes fine detail away


def test_a_single_channel_image_round_trips_in_its_own_shape():
    gray = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert jpeg_reencode(gray, quality=95).shape == (2, 1, 28, 28)


def _arm(pixels: str, seed: int, flags: list[bool]) -> JpegControlArm:
    return JpegControlArm(pixels=pixels, seed=seed, n_train=100, train_accuracy=1.0, test_accuracy=0.5 + seed / 10,
                          test_n=50, reached={"0.5": tuple(flags)})


def test_the_report_averages_seeds_per_image_and_pairs_the_arms_by_image():
    config = JpegControlConfig(seeds=(0, 1), attacked_n=4)
    arms = (_arm("exact", 0, [True, True, True, False]), _arm("exact", 1, [True, True, False, False]),
            _arm("jpeg", 0, [True, False, False, False]), _arm("jpeg", 1, [True, False, False, False]))
    summary = summarize(config, arms).summary
    exact, jpeg = (summary["arms"][pixels]["targeted_success"]["0.5"] for pixels in ("exact", "jpeg"))
    assert exact["rate"] == pytest.approx(5 / 8) and jpeg["rate"] == pytest.approx(2 / 8)
    assert summary["arms"]["exact"]["test_accuracy"] == pytest.approx(0.55)
    gap = summary["difference"]["0.5"]
    assert gap["exact_minus_jpeg"] == pytest.approx(3 / 8)
    assert gap["ci95"][0] <= gap["exact_minus_jpeg"] <= gap["ci95"][1]
    same = summarize(config, (_arm("exact", 0, [True, False]), _arm("jpeg", 0, [True, False]))).summary
    assert same["difference"]["0.5"] == {"exact_minus_jpeg": 0.0, "ci95": [0.0, 0.0]}


def test_one_arm_alone_has_no_difference_and_arms_survive_their_json():
    arm = _arm("jpeg", 3, [True, False, True])
    assert JpegControlArm.from_dict(json.loads(json.dumps(arm.to_dict()))) == arm
    assert summarize(JpegControlConfig(), (arm,)).summary["difference"] == {}
    assert "reached" not in summarize(JpegControlConfig(), (arm,)).to_dict()["arms"][0]


def test_both_arms_attack_the_same_images_and_bad_settings_are_refused():
    config = JpegControlConfig(attacked_n=10)
    assert torch.equal(attacked_sample(100, config), attacked_sample(100, config))
    assert len(attacked_sample(5, config)) == 5
    with pytest.raises(ConfigError):
        JpegControlConfig(seeds=())
    with pytest.raises(ConfigError):
        _arm("png", 0, [True])


@pytest.fixture(scope="module")
def at_scale():
    spec = importlib.util.spec_from_file_location("features_at_scale_jpeg", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not EXACT.is_dir(), reason="needs ../shared/data/cifar10-subset (the exact CIFAR-10 pixels)")
def test_the_script_trains_both_arms_resumes_and_reaches_the_study_file(at_scale, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    # a trained set's weights, as a stage leaves them (here an untrained network's): scored on both test pixels
    (work / "weights").mkdir(parents=True)
    world = at_scale.WORLDS["cifar10"]
    test = at_scale.resolver.test_split(world.data, image_shape=(3, 32, 32))
    at_scale._save_weights(at_scale.fresh_model("d_det", world.architecture, test, seed=3),
                           work / "weights" / "d_det.safetensors")
    at_scale.main(["jpeg-control", "--world", "cifar10", "--tier", "tiny", "--work", str(work)])
    report = json.loads((work / "results" / "jpeg_control.json").read_text())
    assert [arm["pixels"] for arm in report["arms"]] == ["exact", "jpeg"]
    assert all(arm["n_train"] == 5085 and arm["test_n"] == 1017 for arm in report["arms"])
    # PIL's re-encoding is close to the copy the at-scale source learned from, far from the exact pixels
    assert report["reencoding_error_to_copy"] < 2 < report["reencoding_error_to_exact"]
    assert "0.5" in report["summary"]["difference"]
    scored = report["test_pixels"]
    assert list(scored) == ["d_det"] and scored["d_det"]["n"] == 1017 and scored["d_det"]["whole_test_n"] == at_scale.tier_of("cifar10", "tiny").test_n
    assert "d_rand" in report["test_pixels_not_scored"]
    assert scored["d_det"]["exact_minus_copy"] == pytest.approx(scored["d_det"]["exact"] - scored["d_det"]["copy"])
    capsys.readouterr()
    # a part run with other settings is redone; one with the tier's is not
    stale = work / "results" / "jpeg_control-parts" / "jpeg-0.json"
    stale.write_text(json.dumps({**json.loads(stale.read_text()), "config": {"steps": 1}}))
    at_scale.main(["jpeg-control", "--world", "cifar10", "--tier", "tiny", "--work", str(work)])
    log = capsys.readouterr().err
    assert "exact, seed 0: done" in log and "jpeg, seed 0: training on" in log
    with pytest.raises(SystemExit, match="pixels:seed"):
        at_scale.main(["jpeg-control", "--world", "cifar10", "--tier", "tiny", "--work", str(work), "--arms", "raw:0"])
    with pytest.raises(SystemExit, match="CIFAR-10"):
        at_scale.main(["jpeg-control", "--world", "fashion-mnist", "--tier", "tiny", "--work", str(work)])
    monkeypatch.setattr(at_scale, "PRECOMPUTED", tmp_path)
    monkeypatch.setitem(at_scale.WORLDS, "cifar10", at_scale.dataclasses.replace(at_scale.WORLDS["cifar10"],
                                                                                   study_file="cifar10-study.json"))
    (tmp_path / "cifar10-study.json").write_text(json.dumps({"margins": {"kept": True}}))
    study = json.loads(at_scale.write("cifar10", "tiny", work, "command").read_text())
    assert study["features"]["jpeg_control"]["summary"] == report["summary"]
    # rows a later run replaced: write keeps the control but scores the replaced sets' models again from the weights
    # here, and drops the score of a replaced set whose weights are not here; the others' stay as they were
    kept = {**report, "test_pixels": {"d_det": {**scored["d_det"], "exact": 0.99}, "d_rand": {"exact": 0.5},
                                      "d_nr": {"exact": 0.4}}}
    updated = at_scale.rescore_replaced_models("cifar10", "tiny", work, kept, ["d_det", "d_rand"])
    assert [updated["test_pixels"]["d_det"][key] for key in ("exact", "copy", "whole_test_accuracy")] == [
        scored["d_det"][key] for key in ("exact", "copy", "whole_test_accuracy")]
    assert list(updated["test_pixels"]) == ["d_det", "d_nr"] and updated["test_pixels"]["d_nr"] == {"exact": 0.4}
    assert "d_rand" in updated["test_pixels_not_scored"] and "d_det" not in updated["test_pixels_not_scored"]
    assert updated["test_pixels_rescored"]["sets"] == ["d_det"] and updated["summary"] == report["summary"]
    assert at_scale.rescore_replaced_models("cifar10", "tiny", work, kept, []) is kept


def test_a_seed_only_one_arm_finished_waits_and_unequal_samples_are_refused():
    config = JpegControlConfig(seeds=(0, 1), attacked_n=2)
    arms = (_arm("exact", 0, [True, False]), _arm("exact", 1, [True, True]), _arm("jpeg", 0, [False, False]))
    summary = summarize(config, arms).summary
    assert summary["arms"]["exact"]["seeds"] == [0] == summary["arms"]["jpeg"]["seeds"]
    assert summary["seeds_unpaired"] == [1] and summary["difference"]["0.5"]["exact_minus_jpeg"] == 0.5
    assert summary["arms"]["exact"]["targeted_success_by_seed"]["0.5"] == [0.5]
    with pytest.raises(ConfigError, match="different numbers of images"):
        summarize(config, (_arm("exact", 0, [True, False]), _arm("jpeg", 0, [True, False, True])))


def test_saved_weights_load_back_strictly_and_a_stranger_is_refused(at_scale, tmp_path):
    from sia_core.data.base import ImageDataset
    from sia_core.errors import CheckpointError

    names = tuple("abcdefghij")
    test = ImageDataset("toy", torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)),
                        torch.arange(4), names)
    saved = at_scale.fresh_model("saved", "resnet9-slim", test, seed=3)
    at_scale._save_weights(saved, tmp_path / "w.safetensors")
    loaded = at_scale.fresh_model("loaded", "resnet9-slim", test, seed=4)
    at_scale._load_weights(loaded, tmp_path / "w.safetensors")
    for name, tensor in saved.network.state_dict().items():
        if tensor.is_floating_point():
            assert torch.equal(loaded.network.state_dict()[name], tensor.half().float()), name
    with pytest.raises(CheckpointError, match="do not fit"):
        at_scale._load_weights(at_scale.fresh_model("other", "tiny-cnn", test, seed=0), tmp_path / "w.safetensors")
