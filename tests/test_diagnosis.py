"""Diagnosis: histograms find a weakness that is known to be there, and the report exports cleanly."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest
import torch

from sia_core.attacks import PGD
from sia_core.attacks.semantic import SemanticAttack
from sia_core.data.base import ImageDataset
from sia_core.diagnosis import BASELINES, MATCH_TOLERANCE, SSIM_THRESHOLDS, DiagnosisConfig, diagnose, select_correct
from sia_core.errors import ConfigError, SiaError
from sia_core.results_io import decode, encode
from tests.attacks.test_semantic_attack import brightness_model


def _near_boundary_dataset(n: int = 24) -> ImageDataset:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (n,), generator=generator)
    level = 0.5 + (2 * labels.float() - 1) * 0.1  # 0.1 from the boundary: brightness reaches it, 4/255 does not
    images = level.view(-1, 1, 1, 1) + 0.02 * torch.randn(n, 1, 8, 8, generator=generator)
    return ImageDataset("near", images.clamp(0, 1), labels, ("dark", "bright"))


def test_a_brightness_reader_is_diagnosed_as_brightness_sensitive():
    report = diagnose(brightness_model(), _near_boundary_dataset(), DiagnosisConfig(n=24, eps_linf=4 / 255, steps=20))
    assert report.ranking()[0] == "brightness"
    k = report.attribute_names.index("brightness")
    assert float(report.sensitivity_success[k]) == 1.0
    assert float(report.dominance[k]) > 0.5
    assert report.success_rate["pgd"] == 0.0 and report.success_rate["sia"] == 1.0
    assert tuple(report.success_rate) == BASELINES.names()
    assert report.per_class_sensitivity.shape == (2, len(report.attribute_names))


def test_report_exports_json_and_csv():
    report = diagnose(brightness_model(), _near_boundary_dataset(8), DiagnosisConfig(n=8, steps=5))
    summary = report.to_dict()
    assert summary["n"] == 8 and set(summary["sensitivity"]) == set(report.attribute_names)
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert len(rows) == len(report.attribute_names) * 3  # all + two classes
    assert {row["scope"] for row in rows} == {"all", "dark", "bright"}


def test_the_report_carries_ssim_per_image_and_how_success_trades_against_it():
    report = diagnose(brightness_model(), _near_boundary_dataset(12), DiagnosisConfig(n=12, eps_linf=4 / 255, steps=5))
    assert set(report.attack_ssim) == set(report.attack_success) == set(BASELINES.names())
    assert all(report.attack_ssim[name].shape == report.attack_success[name].shape == (12,)
               for name in BASELINES.names())
    assert report.joint is not None and torch.equal(report.attack_ssim["sia"], report.joint.ssim)
    means = report.mean_ssim_of_successes()
    fooled = report.attack_success["sia"]
    assert means["sia"] == pytest.approx(float(report.attack_ssim["sia"][fooled].mean()))
    assert means["pgd"] is None  # 4/255 of pixels never reaches the boundary: no success to average
    assert report.to_dict()["mean_ssim_of_successes"]["sia"] == round(means["sia"], 4)
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert {row["sia_mean_ssim_of_successes"] for row in rows if row["scope"] == "all"} == {f"{means['sia']:.5f}"}
    curves = report.success_vs_ssim()
    for name, points in curves.items():
        assert [s for s, _ in points] == list(SSIM_THRESHOLDS) and SSIM_THRESHOLDS[0] == 0.5 and SSIM_THRESHOLDS[-1] == 1
        shares = [share for _, share in points]
        assert all(a >= b for a, b in zip(shares, shares[1:])) and shares[0] <= report.success_rate[name]
        threshold = 0.8
        expected = float((report.attack_success[name] & (report.attack_ssim[name] >= threshold)).float().mean())
        assert report.success_vs_ssim((threshold,))[name] == [(threshold, pytest.approx(expected))]


def test_a_report_saved_before_ssim_still_loads_and_exports():
    report = diagnose(brightness_model(), _near_boundary_dataset(8), DiagnosisConfig(n=8, steps=3))
    data = encode(dataclasses.replace(report, joint=None))
    for name in ("attack_success", "attack_ssim"):  # what a file written before SSIM lacks
        del data["fields"][name]
    old = decode(data)
    assert old.attack_ssim == {} and old.mean_ssim_of_successes() == {} and old.success_vs_ssim() == {}
    assert "mean_ssim_of_successes" not in old.to_dict()
    assert {row["sia_mean_ssim_of_successes"] for row in csv.DictReader(io.StringIO(old.to_csv()))} == {""}


def test_only_correctly_classified_images_are_attacked():
    data = _near_boundary_dataset(40)
    flipped = ImageDataset("mixed", data.images, torch.cat([1 - data.labels[:10], data.labels[10:]]), data.class_names)
    chosen = select_correct(brightness_model(), flipped, n=100)
    assert len(chosen) == 30 and torch.all(chosen >= 10)


def test_the_baselines_share_the_pixel_budget_and_differ_where_they_should():
    config = DiagnosisConfig(eps_linf=3 / 255, steps=7, seed=2, sparsity_weight=0.5)
    assert BASELINES.names() == ("pgd", "attributes", "random_attributes_pgd", "sia")
    assert all(entry.label and entry.description for entry in BASELINES)
    attacks = {name: BASELINES.build(name, config=config) for name in BASELINES.names()}
    assert attacks["pgd"] == PGD(eps=3 / 255, norm="linf", steps=7, seed=2)
    assert attacks["attributes"].eps_linf == 0.0 and attacks["attributes"].sparsity_weight == 0.5
    assert attacks["random_attributes_pgd"].random_init and not attacks["random_attributes_pgd"].optimize_attributes
    assert attacks["sia"] == SemanticAttack(steps=7, eps_linf=3 / 255, sparsity_weight=0.5, seed=2)


BAD_VALUES = [{"n": 0}, {"n": -5}, {"n": 2.5}, {"eps_linf": -1 / 255}, {"eps_linf": float("nan")}, {"steps": 0},
              {"sensitivity_steps": 0}, {"sparsity_weight": -0.1}, {"batch_size": 0}, {"seed": 1.5},
              {"attributes": ()}, {"attributes": ("brightness", "sparkle")}, {"attributes": "brightness"}]


@pytest.mark.parametrize("options", BAD_VALUES, ids=str)
def test_the_config_refuses_bad_values(options: dict):
    with pytest.raises(ConfigError):
        DiagnosisConfig(**options)


def test_the_default_config_passes_its_own_checks_and_keeps_a_chosen_attribute():
    assert DiagnosisConfig().attributes is None  # None: every attribute of the data's kind
    assert DiagnosisConfig(attributes=("brightness",)).attributes == ("brightness",)


def test_a_model_that_gets_nothing_right_is_told_so():
    data = _near_boundary_dataset(8)
    wrong = ImageDataset("wrong", data.images, 1 - brightness_model().logits(data.images).argmax(1), data.class_names)
    with pytest.raises(SiaError, match="none of the 8 images"):
        diagnose(brightness_model(), wrong, DiagnosisConfig(n=8, steps=2))


def test_pgd_is_also_run_at_the_radius_that_matches_sias_mean_ssim():
    model, data = brightness_model(), _near_boundary_dataset()
    config = DiagnosisConfig(n=24, eps_linf=4 / 255, steps=20)
    report = diagnose(model, data, config)
    sia_ssim = float(report.attack_ssim_aligned["sia"].mean())
    matched_ssim = float(report.matched_pgd_ssim.mean())
    assert report.matched_pgd_eps is not None and report.matched_pgd_eps > 4 / 255  # PGD at 4/255 is far closer
    assert len(report.matched_pgd_success) == report.n == len(report.matched_pgd_ssim)
    # the radius found gives images at most as close as SIA's, and within the tolerance of its SSIM
    assert sia_ssim - MATCH_TOLERANCE <= matched_ssim <= sia_ssim
    # what the report holds is PGD at that radius, recomputed here
    x, y = data.images[report.sample_indices], data.labels[report.sample_indices]
    again = PGD(eps=report.matched_pgd_eps, norm="linf", steps=config.steps, seed=config.seed)(model, x, y)
    assert torch.equal(again.success, report.matched_pgd_success)
    torch.testing.assert_close(again.ssim, report.matched_pgd_ssim)
    assert report.success_rate["pgd"] <= float(report.matched_pgd_success.float().mean())  # a larger radius


@pytest.mark.parametrize("exponent", [1.0, 2.0, 3.0])
def test_the_matched_radius_search_finds_a_power_law_crossing_in_few_runs(exponent: float, monkeypatch):
    """A stand-in PGD whose images' 1 − SSIM is 0.3·radius^exponent: the search lands in the band below the target
    within a few runs, from the budget's point alone."""
    import sia_core.diagnosis as diagnosis

    runs = []

    def fake_batches(attack, model, x, y, batch_size):
        runs.append(attack.eps)
        deficit = min(0.3 * attack.eps ** exponent, 1.0)
        return [type("Result", (), {"success": torch.zeros(len(x), dtype=torch.bool),
                                    "ssim": torch.full((len(x),), 1 - deficit)})()]

    monkeypatch.setattr(diagnosis, "_batched", fake_batches)
    config = DiagnosisConfig(eps_linf=2 / 255)
    budget_ssim = 1 - 0.3 * (2 / 255) ** exponent
    x, y = torch.zeros(4, 1, 2, 2), torch.zeros(4, dtype=torch.long)
    budget = (torch.zeros(4, dtype=torch.bool), torch.full((4,), budget_ssim))
    eps, _, similarity = diagnosis._pgd_at_matched_ssim(None, x, y, config, 0.8, budget)
    assert 0.8 - MATCH_TOLERANCE <= float(similarity.mean()) <= 0.8
    assert eps == pytest.approx((0.2 / 0.3) ** (1 / exponent), rel=0.05) and len(runs) <= 4, runs
    # the budget's own PGD is already as far as SIA's: it is the answer, with no run
    runs.clear()
    assert diagnosis._pgd_at_matched_ssim(None, x, y, config, 0.99, (torch.zeros(4, dtype=torch.bool),
                                                                     torch.full((4,), 0.95)))[0] == 2 / 255
    assert runs == []


def test_the_mean_ssim_of_successes_follows_the_geometry_choice():
    # the shipped CIFAR-10 diagnosis: SIA's turns and shifts lower plain SSIM, so undoing them raises the mean
    from sia_core.paths import PRECOMPUTED_DIR
    from sia_core.results_io import load_result

    report = load_result(PRECOMPUTED_DIR / "diagnosis-cifar10-standard.json.gz").result
    plain, undone = report.mean_ssim_of_successes(), report.mean_ssim_of_successes(aligned=True)
    fooled = report.attack_success["sia"]
    assert undone["sia"] == pytest.approx(float(report.attack_ssim_aligned["sia"][fooled].mean()))
    assert plain["sia"] == pytest.approx(float(report.attack_ssim["sia"][fooled].mean()))
    assert undone["sia"] > plain["sia"]
