"""RoA maps, region overlap and neutralization: known answers, and the study on the shipped model."""

from __future__ import annotations

import pytest
import torch

from sia_core.data.base import ImageDataset
from sia_core.data.catalog import load_dataset
from sia_core.errors import ConfigError
from sia_core.models.registry import load_model
from sia_core.regions.attack_maps import ROA_METHODS, EffectWeightedMap, LocalizedAttackMap, MinimalPerturbationMap
from sia_core.regions.neutralization import (FILLS, MASK_KINDS, NeutralizationConfig, NeutralizationRow,
                                             NeutralizedClassifier, RegionsReport, fill_images, neutralization_study)
from sia_core.regions.overlap import (Zone, dice, energy_inside, iou, normalize_maps, overlap_metrics, spearman,
                                      top_fraction_mask, zones)
from sia_core.regions.panel import region_panel
from tests.conftest import linear_wrapper

PATCH = (slice(4, 8), slice(8, 12))  # aligned with the localized map's 4-pixel grid


def patch_reader() -> "torch.nn.Module":
    """Two classes on 1x12x12 images; the logits depend only on a 4x4 patch at rows 4..7, cols 8..11.
    Small weights keep the softmax away from saturation, so loss gains stay measurable."""
    weight = torch.zeros(2, 1, 12, 12)
    weight[0, 0, PATCH[0], PATCH[1]] = 0.1
    weight[1, 0, PATCH[0], PATCH[1]] = -0.1
    return linear_wrapper(weight.flatten(1), torch.zeros(2), (1, 12, 12))


def _inside_patch() -> torch.Tensor:
    mask = torch.zeros(12, 12, dtype=torch.bool)
    mask[PATCH] = True
    return mask


@pytest.mark.parametrize("method", [EffectWeightedMap(eps=0.1, steps=5), MinimalPerturbationMap(),
                                    LocalizedAttackMap(patch_size=4, eps=0.1, steps=5)], ids=lambda m: type(m).__name__)
def test_attack_maps_land_on_the_only_patch_the_model_reads(method):
    model = patch_reader()
    images = torch.rand(3, 1, 12, 12, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    labels = model.logits(images).argmax(1)
    maps = method(model, images, labels).maps
    inside = _inside_patch()
    assert maps.shape == (3, 12, 12) and torch.all(maps >= 0)
    assert torch.all(maps[:, ~inside] <= 1e-6)
    assert torch.all(maps[:, inside].sum(1) > 0)


def test_top_fraction_masks_have_exact_area_and_pick_the_largest():
    maps = torch.arange(100.0).view(1, 10, 10)
    mask = top_fraction_mask(maps, 0.2)
    assert int(mask.sum()) == 20 and bool(mask.view(-1)[80:].all())
    assert int(top_fraction_mask(maps, 0.0).sum()) == 0


def test_iou_dice_and_zones_of_known_masks():
    a = torch.zeros(1, 4, 4, dtype=torch.bool)
    b = torch.zeros(1, 4, 4, dtype=torch.bool)
    a[0, :2, :] = True          # 8 pixels
    b[0, 1:3, :] = True         # 8 pixels, 4 shared
    assert float(iou(a, b)) == pytest.approx(4 / 12)
    assert float(dice(a, b)) == pytest.approx(2 * 4 / 16)
    zone = zones(a, b)[0]
    assert int((zone == Zone.BOTH).sum()) == 4 and int((zone == Zone.IMPORTANT_ONLY).sum()) == 4
    assert int((zone == Zone.ATTACKED_ONLY).sum()) == 4 and int((zone == Zone.NEITHER).sum()) == 4
    empty = torch.zeros(1, 4, 4, dtype=torch.bool)
    assert float(iou(empty, empty)) == 1.0 and float(dice(empty, empty)) == 1.0


def test_energy_share_and_spearman():
    attack = torch.zeros(1, 2, 2)
    attack[0, 0, 0], attack[0, 1, 1] = 3.0, 1.0
    roi = torch.zeros(1, 2, 2, dtype=torch.bool)
    roi[0, 0, 0] = True
    assert float(energy_inside(attack, roi)) == pytest.approx(0.75)
    ramp = torch.arange(16.0).view(1, 4, 4)
    assert float(spearman(ramp, ramp ** 3)) == pytest.approx(1.0)
    assert float(spearman(ramp, -ramp)) == pytest.approx(-1.0)
    assert float(spearman(ramp, torch.ones(1, 4, 4))) == 0.0
    normalized = normalize_maps(ramp)
    assert float(normalized.min()) == 0.0 and float(normalized.max()) == 1.0
    metrics = overlap_metrics(ramp, ramp, 0.25)
    assert metrics.means()["iou"] == 1.0


def test_fill_images_and_the_defended_pipeline():
    images = torch.full((2, 3, 4, 4), 0.8)
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[:, 0, 0] = True
    zero = fill_images(images, masks, "zero")
    assert float(zero[0, :, 0, 0].sum()) == 0.0 and float(zero[0, :, 1, 1].min()) == pytest.approx(0.8)
    mean = fill_images(images, masks, "mean", torch.tensor([0.1, 0.2, 0.3]))
    assert mean[1, :, 0, 0].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert torch.allclose(fill_images(images, masks, "blur"), images)  # blurring a constant image changes nothing
    with pytest.raises(ConfigError, match="needs the dataset's per-channel mean"):
        fill_images(images, masks, "mean")
    with pytest.raises(ConfigError, match="zero, mean, blur"):
        fill_images(images, masks, "purple")
    model = patch_reader()
    everything = NeutralizedClassifier(model, lambda x: torch.ones(len(x), 12, 12, dtype=torch.bool), "zero", None)
    logits = everything(torch.rand(2, 1, 12, 12))
    assert torch.allclose(logits, torch.zeros_like(logits))  # all pixels blanked: the linear model sees nothing


def test_region_panel_on_the_shipped_model():
    model = load_model("fmnist-standard")
    data = load_dataset("fashion-mnist-subset")
    panel = region_panel(model, data.images[:1], int(data.labels[0]), fraction=0.2)
    assert panel.importance.shape == panel.attack.shape == panel.zones.shape == (28, 28)
    assert int((panel.zones == Zone.BOTH).sum() + (panel.zones == Zone.IMPORTANT_ONLY).sum()) == round(0.2 * 784)
    with pytest.raises(ConfigError, match="Unknown RoA method"):
        region_panel(model, data.images[:1], int(data.labels[0]), roa_method="saliency")
    with pytest.raises(ConfigError, match="fraction"):
        region_panel(model, data.images[:1], int(data.labels[0]), fraction=1.5)


def test_neutralizing_roa_minus_roi_beats_a_random_mask_on_fmnist_standard():
    """Issue 4's claim, measured: the oracle RoA \\ RoI mask recovers more adversarial accuracy than a random
    mask of equal area, and blanking the RoI costs more clean accuracy than blanking RoA \\ RoI."""
    report = neutralization_study(load_model("fmnist-standard"), load_dataset("fashion-mnist-subset"),
                                  NeutralizationConfig(n=128, n_fit=128, seed=0))
    rows = {row.mask: row for row in report.rows}
    assert rows["oracle"].mean_area == pytest.approx(rows["random"].mean_area)
    # the deployable masks' control blanks as much as they do: q of each image
    assert rows["random_q"].mean_area == pytest.approx(rows["dataset"].mean_area) == pytest.approx(0.2, abs=0.01)
    assert rows["oracle"].adversarial_accuracy_after > rows["random"].adversarial_accuracy_after + 0.1
    assert rows["oracle"].adversarial_accuracy_after > rows["oracle"].adversarial_accuracy_before + 0.2
    assert rows["roi"].clean_accuracy_after < rows["oracle"].clean_accuracy_after - 0.2
    # the curve's point at the table's fraction is the table's row, for every mask kind
    at_table = NeutralizationConfig().curve_fractions.index(report.fraction)
    for kind, row in rows.items():
        assert report.curve[kind][at_table] == pytest.approx((row.mean_area, row.adversarial_accuracy_after))
        # each image's result ships, for a paired interval against the control: it averages to the rate
        assert len(row.adversarial_correct_after) == report.n
        assert sum(row.adversarial_correct_after) / report.n == pytest.approx(row.adversarial_accuracy_after)
        assert "adversarial_correct_after" not in row.to_dict()
    assert report.overlap_means["iou"] == pytest.approx(float(report.iou_per_image.mean()))


def boundary_reader() -> "torch.nn.Module":
    """Two classes on 1x12x12 images: class 0 when the 4x4 patch is brighter than 0.5 on average, else class 1.
    A black image reads as class 1."""
    weight = torch.zeros(2, 1, 12, 12)
    weight[0, 0, PATCH[0], PATCH[1]] = 0.1
    weight[1, 0, PATCH[0], PATCH[1]] = -0.1
    return linear_wrapper(weight.flatten(1), torch.tensor([-0.8, 0.8]), (1, 12, 12))


def _boundary_dataset(n: int = 64) -> ImageDataset:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(n, 1, 12, 12, generator=generator)
    labels = boundary_reader().logits(images).argmax(1)
    labels[:8] = 1 - labels[:8]  # a few mislabelled images, so clean accuracy is not trivially 1
    return ImageDataset("boundary", images, labels, ("bright", "dark"))


def _study(fraction: float) -> tuple[RegionsReport, dict[str, NeutralizationRow]]:
    config = NeutralizationConfig(n=32, n_fit=32, fraction=fraction, eps_linf=0.1, curve_fractions=(fraction,))
    report = neutralization_study(boundary_reader(), _boundary_dataset(), config)
    return report, {row.mask: row for row in report.rows}


def test_masks_of_every_pixel_leave_only_what_the_fill_image_says():
    """At q = 100% the dataset, class and RoI masks blank the whole image: the model sees black and says class 1,
    whatever the input, attacked or not; the oracle RoA minus RoI is then empty and changes nothing."""
    report, rows = _study(1.0)
    data = _boundary_dataset()
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    evaluation_labels = data.labels[order[32:64]]
    all_black_accuracy = float((evaluation_labels == 1).float().mean())
    for kind in ("dataset", "class", "roi", "random_q"):
        assert rows[kind].mean_area == 1.0
        assert rows[kind].adversarial_accuracy_after == pytest.approx(all_black_accuracy)
        assert rows[kind].clean_accuracy_after == pytest.approx(all_black_accuracy)
        assert rows[kind].adaptive_accuracy == pytest.approx(all_black_accuracy)  # nothing left to attack
    for kind in ("oracle", "random"):
        assert rows[kind].mean_area == 0.0
        assert rows[kind].adversarial_accuracy_after == rows[kind].adversarial_accuracy_before
        assert rows[kind].clean_accuracy_after == rows[kind].clean_accuracy_before
    assert report.overlap_means["iou"] == 1.0 and bool(torch.all(report.iou_per_image == 1.0))
    assert rows["oracle"].adversarial_accuracy_before < rows["oracle"].clean_accuracy_before  # the attack bites


def test_masks_of_no_pixel_change_nothing_and_the_adaptive_attack_is_the_plain_one():
    _, rows = _study(0.001)  # 0.001 of 144 pixels rounds to none
    for row in rows.values():
        assert row.mean_area == 0.0
        assert row.adversarial_accuracy_after == row.adversarial_accuracy_before
        assert row.clean_accuracy_after == row.clean_accuracy_before
        # an empty mask makes the defended pipeline the bare model: the same seeded PGD finds the same images
        assert row.adaptive_accuracy == row.adversarial_accuracy_before


def test_the_registries_name_every_method_fill_and_mask_kind():
    assert ROA_METHODS.names() == ("effect_weighted", "minimal_perturbation", "localized")
    assert ROA_METHODS.build("localized", patch_size=7) == LocalizedAttackMap(patch_size=7)
    assert ROA_METHODS.build("effect_weighted") == EffectWeightedMap()
    assert ROA_METHODS.build("minimal_perturbation") == MinimalPerturbationMap()
    assert FILLS.names() == ("zero", "mean", "blur")
    assert MASK_KINDS.names() == ("oracle", "dataset", "class", "random", "random_q", "roi")
    for registry in (ROA_METHODS, FILLS, MASK_KINDS):
        assert all(entry.label and entry.description for entry in registry)


BAD_CONFIGS = [
    (EffectWeightedMap, {"eps": -0.1}), (EffectWeightedMap, {"steps": -1}), (EffectWeightedMap, {"steps": 2.5}),
    (EffectWeightedMap, {"seed": None}),
    (MinimalPerturbationMap, {"steps": 0}), (MinimalPerturbationMap, {"overshoot": -0.5}),
    (LocalizedAttackMap, {"patch_size": 0}), (LocalizedAttackMap, {"patch_size": -4}),
    (LocalizedAttackMap, {"eps": -1.0}), (LocalizedAttackMap, {"steps": -1}),
    (NeutralizationConfig, {"n": 0}), (NeutralizationConfig, {"n": -5}), (NeutralizationConfig, {"n_fit": 0}),
    (NeutralizationConfig, {"fraction": 0.0}), (NeutralizationConfig, {"fraction": 3.0}),
    (NeutralizationConfig, {"fraction": float("nan")}), (NeutralizationConfig, {"fill": "purple"}),
    (NeutralizationConfig, {"eps_linf": -1 / 255}), (NeutralizationConfig, {"attack_steps": -1}),
    (NeutralizationConfig, {"curve_fractions": (0.1, 1.5)}), (NeutralizationConfig, {"curve_fractions": (0.0,)}),
    (NeutralizationConfig, {"seed": "0"}),
]


@pytest.mark.parametrize("config, options", BAD_CONFIGS, ids=lambda value: str(value))
def test_configs_refuse_bad_values(config: type, options: dict) -> None:
    with pytest.raises(ConfigError):
        config(**options)


def test_a_dataset_too_small_for_the_held_out_split_is_refused():
    with pytest.raises(ConfigError, match="n_fit"):
        neutralization_study(boundary_reader(), _boundary_dataset(16), NeutralizationConfig(n=8, n_fit=16))


def test_the_region_panel_reports_its_two_maps_as_they_finish():
    model = load_model("fmnist-standard")
    data = load_dataset("fashion-mnist-subset", n=2)
    heard = []
    region_panel(model, data.images[:1], int(data.labels[0]), progress=lambda step, total, info: heard.append(
        (step, total, info["stage"])))
    assert [(step, total) for step, total, _ in heard] == [(0, 2), (1, 2), (2, 2)]
    assert "RoI" in heard[0][2] and "RoA" in heard[1][2]
