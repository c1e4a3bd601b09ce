"""SIA's applications: the long-tailed builder, the re-balancing methods, the imbalance study and the transfer
table do what they claim."""

from __future__ import annotations

import json

import pytest
import torch

from sia_core.cli import main
from sia_core.results_io import decode, encode
from sia_core.data.base import ImageDataset
from sia_core.data.catalog import load_dataset
from sia_core.errors import ConfigError, DataError
from sia_core.models.registry import load_model
from sia_core.robustify import (IMBALANCE_METHODS, ImbalanceConfig, TransferConfig, class_counts,
                                inverse_frequency_weights, long_tailed, long_tailed_counts, oversampled,
                                run_imbalance_study, transfer_table, with_minority_variants)
from sia_core.robustify.imbalance import TrainingPlan


def _balanced(per_class: int = 40, classes: int = 4, size: int = 8) -> ImageDataset:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(classes).repeat_interleave(per_class)
    images = (labels.view(-1, 1, 1, 1).float() / classes + 0.1 * torch.rand(len(labels), 1, size, size,
                                                                               generator=generator)).clamp(0, 1)
    return ImageDataset("toy", images, labels, tuple(f"c{i}" for i in range(classes)))


def test_the_exponential_profile_has_the_exact_counts():
    assert long_tailed_counts(6000, 10, 100) == [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]
    assert long_tailed_counts(1000, 10, 10)[0] == 1000 and long_tailed_counts(1000, 10, 10)[-1] == 100
    assert long_tailed_counts(50, 3, 1) == [50, 50, 50]
    data = _balanced(per_class=40)
    tail = long_tailed(data, rho=8, n_max=40, seed=1)
    assert class_counts(tail) == long_tailed_counts(40, 4, 8) == [40, 20, 10, 5]
    # another seed draws other images of each class, in the same numbers
    other = long_tailed(data, rho=8, n_max=40, seed=2)
    assert class_counts(other) == class_counts(tail) and not torch.equal(other.images, tail.images)
    with pytest.raises(DataError, match="too few images"):
        long_tailed(data, rho=8, n_max=41)
    with pytest.raises(ConfigError):
        long_tailed_counts(10, 4, 0.5)


def test_reweighting_weights_each_class_by_its_inverse_frequency():
    counts = [40, 20, 10, 5]
    weights = inverse_frequency_weights(counts)
    assert weights == pytest.approx([75 / 160, 75 / 80, 75 / 40, 75 / 20])
    # every class carries the same total weight, and the mean weight per image is 1
    assert [c * w for c, w in zip(counts, weights)] == pytest.approx([75 / 4] * 4)
    assert sum(c * w for c, w in zip(counts, weights)) == pytest.approx(sum(counts))
    tail = long_tailed(_balanced(), rho=8, n_max=40)
    plan: TrainingPlan = IMBALANCE_METHODS.build("reweight", long_tail=tail, config=ImbalanceConfig(), seed=0, added={})
    assert plan.class_weights == pytest.approx(inverse_frequency_weights(class_counts(tail)))
    assert plan.train_set is tail and plan.refresh is None


def test_oversampling_balances_the_counts_with_the_classes_own_images():
    tail = long_tailed(_balanced(), rho=8, n_max=40)
    balanced = oversampled(tail, seed=0)
    assert class_counts(balanced) == [40, 40, 40, 40]
    # the smallest class (5 images) appears 8 times each: only its own images, each exactly as often
    smallest = balanced.images[balanced.labels == 3].flatten(1)
    originals = tail.images[tail.labels == 3].flatten(1)
    matches = (smallest[:, None, :] == originals[None, :, :]).all(-1)
    assert matches.any(1).all() and matches.sum(0).tolist() == [8] * 5


def test_minority_variants_fill_every_class_up_to_the_majority():
    tail = long_tailed(_balanced(), rho=8, n_max=40)
    calls = []

    def brighter(images, label, round_index):
        calls.append((label, len(images), round_index))
        return (images + 0.01 * (round_index + 1)).clamp(0, 1)
    balanced, added = with_minority_variants(tail, brighter)
    assert class_counts(balanced) == [40, 40, 40, 40] and int(added.sum()) == 160 - len(tail)
    assert torch.equal(balanced.labels[added], torch.tensor([1] * 20 + [2] * 30 + [3] * 35))
    assert (3, 5, 6) in calls and (1, 20, 0) in calls  # class 3: seven rounds of its 5 images; class 1: one round


def test_the_imbalance_study_reports_every_method_and_seed():
    train_set, test_set = _balanced(per_class=60), _balanced(per_class=20)
    config = ImbalanceConfig(rho=10, n_max=60, seeds=2, epochs=2, batch_size=32, architecture="mlp", sia_steps=2)
    report = run_imbalance_study(train_set, test_set, config)
    assert [(run.method, run.seed) for run in report.runs] == [(m, s) for s in range(2) for m in config.methods]
    assert report.minority_classes == (2, 3) and list(report.counts) == long_tailed_counts(60, 4, 10)
    for run in report.runs:
        assert len(run.per_class_accuracy) == 4 and 0 <= run.balanced_accuracy <= 1
        assert run.balanced_accuracy == pytest.approx(sum(run.per_class_accuracy) / 4)
        assert run.minority_accuracy == pytest.approx(sum(run.per_class_accuracy[2:]) / 2)
    # the augmenting methods added images of the minority classes only, and kept a few to show
    assert set(report.samples) == {"random-attributes", "sia"}
    assert set(report.samples["sia"]["labels"].tolist()) == {1, 2, 3}
    summary = {row.method: row for row in report.summary()}
    assert summary["plain"].seeds == 2 and len(summary["sia"].per_class_accuracy_mean) == 4
    json.dumps(report.to_dict())
    # the same seed, the same method: the same numbers (no global generator involved)
    again = run_imbalance_study(train_set, test_set, ImbalanceConfig(**{**config.__dict__, "methods": ("plain",),
                                                                        "seeds": 1}))
    assert again.runs[0].per_class_accuracy == report.runs[0].per_class_accuracy


def test_the_transfer_table_scores_each_model_against_each_attack():
    data = load_dataset("fashion-mnist-subset")
    models = {"fmnist-standard": (load_model("fmnist-standard"), "standard"),
              "fmnist-robust": (load_model("fmnist-robust"), "pgd")}
    config = TransferConfig.for_dataset("fashion-mnist-subset", n=24, steps=5, sia_steps=5)
    assert (config.eps_linf, config.eps_l2) == (0.1, 1.5) and TransferConfig.for_dataset("shapes").eps_linf == 8 / 255
    table = transfer_table(models, data, config)
    assert [row.model for row in table.rows] == list(models) and table.n == 24
    for row in table.rows:
        assert set(row.cells) == set(table.columns)
        for cell in row.cells.values():
            assert 0 <= cell.robust_accuracy <= row.clean_accuracy and 0 < cell.mean_ssim <= 1
    rows = {row.model: row for row in table.rows}
    # PGD training is what the L∞ columns measure: the robust model must beat the standard one there
    assert rows["fmnist-robust"].cells["pgd-linf"].robust_accuracy > rows["fmnist-standard"].cells["pgd-linf"].robust_accuracy + 0.3
    # PGD is at least as strong as its own first step
    for row in table.rows:
        assert row.cells["pgd-linf"].robust_accuracy <= row.cells["fgsm"].robust_accuracy + 1 / 24
    restored = decode(json.loads(json.dumps(encode(table))))  # saved and read back as the type it is
    assert restored == table and table.budgets()["fgsm"] == "L∞ ε = 25.5/255"


def test_the_cli_prints_the_transfer_table_as_json(capsys):
    assert main(["robustify", "transfer", "--models", "fmnist-standard", "--data", "fashion-mnist-subset", "--n", "8",
                 "--columns", "fgsm,cw-l2", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["columns"] == ["fgsm", "cw-l2"] and table["rows"][0]["model"] == "fmnist-standard"
    assert set(table["rows"][0]) >= {"clean_accuracy", "fgsm_accuracy", "cw-l2_accuracy", "fgsm_ssim", "cw-l2_ssim"}
    assert main(["robustify", "transfer", "--models", "fmnist-standard", "--columns", "magic", "--n", "4"]) == 2
    assert "Unknown transfer column 'magic'" in capsys.readouterr().err
