"""The margin-consistency zoo: the sample-efficient sweep, one model's zoo entry against its margin study, the
report's round trip through JSON, the CLI, and configs that refuse bad values."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from sia_core.cli import main
from sia_core.results_io import decode, encode, load_result
from sia_core.data.base import ImageDataset
from sia_core.errors import ConfigError
from sia_core.margins import (InputMarginEstimator, ZooConfig, consistency, margin_study,
                              robust_accuracy_from_margins, sample_efficient_sweep, zoo_study)
from sia_core.models.registry import ModelCard
from sia_core.takeaways import zoo_takeaway
from tests.conftest import linear_wrapper

K, SIDE = 4, 4


def _linear_model(seed: int):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(K, SIDE * SIDE, generator=generator) * 0.5
    bias = torch.randn(K, generator=generator) * 0.1
    model = linear_wrapper(weight, bias, (1, SIDE, SIDE))
    card = ModelCard(id=f"linear-{seed}", dataset="toy", architecture="tiny-cnn", input_shape=(1, SIDE, SIDE),
                     class_names=tuple(f"c{i}" for i in range(K)), mean=(0.0,), std=(1.0,),
                     training={"recipe": "standard"},
                     evaluations=({"test_set": "toy", "n": 10, "clean_accuracy": 0.5, "robust_accuracy": 0.25,
                                   "attack": "pgd-linf", "eps": 0.05},), description="a linear model")
    return model, card


def _toy_set(n: int = 80) -> ImageDataset:
    generator = torch.Generator().manual_seed(3)
    images = torch.rand(n, 1, SIDE, SIDE, generator=generator) * 0.4 + 0.3
    labels = torch.randint(0, K, (n,), generator=generator)
    return ImageDataset("toy-test", images, labels, tuple(f"c{i}" for i in range(K)))


def test_the_sweep_draws_seeded_subsets_and_is_exact_for_a_consistent_score():
    generator = torch.Generator().manual_seed(1)
    margins = torch.rand(1000, generator=generator) * 0.1
    correct = torch.rand(1000, generator=generator) > 0.1
    truth = robust_accuracy_from_margins(margins, correct, 0.03)
    sweep = sample_efficient_sweep(margins * 50, correct, margins, 0.03, (20, 200), repeats=5, seed=0)
    assert list(sweep) == [20, 200] and all(len(values) == 5 for values in sweep.values())
    assert sweep == sample_efficient_sweep(margins * 50, correct, margins, 0.03, (20, 200), repeats=5, seed=0)
    assert max(abs(v - truth) for v in sweep[200]) < 0.03  # a consistent score: the threshold transfers
    # an inconsistent score (noise) cannot be read off: the estimate misses by far more
    noise = torch.rand(1000, generator=generator)
    noisy = sample_efficient_sweep(noise, correct, margins, 0.03, (200,), repeats=5, seed=0)
    assert sum(abs(v - truth) for v in noisy[200]) / 5 > 3 * sum(abs(v - truth) for v in sweep[200]) / 5


def test_a_zoo_entry_is_its_margin_study_and_survives_json():
    test_set = _toy_set()
    models = {card.id: (model, card) for model, card in (_linear_model(0), _linear_model(1))}
    config = ZooConfig(n=30, eps=0.02, subset_sizes=(10, 30), repeats=3, pseudo_fit_n=30, seed=0)
    report = zoo_study(models, test_set, None, config)
    assert [entry.model_id for entry in report.entries] == ["linear-0", "linear-1"]
    model, _ = models["linear-0"]
    study = margin_study(model, test_set.images[:30], test_set.labels[:30], eps=0.02,
                         estimator=InputMarginEstimator(norm="linf"))
    entry = report.entries[0]
    assert entry.input_margins == pytest.approx(study.input.margins.tolist(), abs=1e-5)
    assert entry.kendall_tau == pytest.approx(consistency(study.input.margins, study.scores.logit_margin)["kendall_tau"],
                                              abs=1e-6)
    assert entry.robust_accuracy == pytest.approx(robust_accuracy_from_margins(study.input.margins, study.correct, 0.02))
    assert entry.card_robust_accuracy == 0.25 and entry.recipe == "standard" and entry.description == "a linear model"
    assert entry.pseudo_fit_split == "test images 30..59 (no training split here)"
    assert entry.pseudo_kendall_tau_before == pytest.approx(entry.kendall_tau)
    # all 30 attacked: every repeat sees the whole set, so the estimate is the same each time
    assert len(set(entry.estimates[30])) == 1 and entry.estimate_error(30)[1] == pytest.approx(0.0, abs=1e-7)
    assert report.least_consistent.kendall_tau == min(e.kendall_tau for e in report.entries)
    text = json.dumps(encode(report), allow_nan=False)  # undefined figures are null, never NaN
    assert decode(json.loads(text)) == report
    summary = entry.summary()  # what the zoo plot reads: every number, none of the per-image lists
    assert {"input_margins", "logit_margins", "correct", "labels"}.isdisjoint(summary)
    assert summary == {key: value for key, value in asdict(entry).items() if key in summary}


def test_the_zoo_refuses_bad_configs_and_sets():
    for options in (dict(n=0), dict(norm="l1"), dict(eps=-0.1), dict(subset_sizes=()), dict(subset_sizes=(0,)),
                    dict(n=10, subset_sizes=(20,)), dict(repeats=0), dict(pseudo_fit_n=0),
                    dict(pseudo_source="pixels")):
        with pytest.raises(ConfigError):
            ZooConfig(**options)
    model, card = _linear_model(0)
    with pytest.raises(ConfigError, match="asks for 100 test images"):
        zoo_study({card.id: (model, card)}, _toy_set(80), None, ZooConfig(n=100, subset_sizes=(10,)))
    with pytest.raises(ConfigError, match="at least one model"):
        zoo_study({}, _toy_set(80), None, ZooConfig(n=10, subset_sizes=(10,)))


def test_the_takeaway_says_whether_the_pseudo_margin_rescues_the_weakest():
    rescued = zoo_takeaway(9, "fmnist-x", 0.31, 0.57, (0.31, 0.8), (100, 0.012))
    assert "fmnist-x (τ = 0.31)" in rescued and "within 1.2 points" in rescued
    assert "gives τ = 0.57 on it (one fit, without an interval, so not a verdict)" in rescued
    assert "τ = 0.30 on it, about the same (one fit, without an interval, so not a verdict)" in zoo_takeaway(
        9, "fmnist-x", 0.31, 0.30, (0.31, 0.8), (100, 0.012))
    assert "τ = 0.20 on it, lower (one fit" in zoo_takeaway(9, "fmnist-x", 0.31, 0.20, (0.2, 0.8), (100, 0.012))


def test_zoo_cli_prints_the_figures_without_the_arrays(capsys, tmp_path):
    out = tmp_path / "zoo.json.gz"
    code = main(["zoo", "--models", "fmnist-standard,fmnist-robust", "--data", "fashion-mnist-subset", "--n", "40",
                 "--subset-sizes", "10,20", "--repeats", "2", "--pseudo-fit", "30", "--out", str(out), "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert [m["model_id"] for m in printed["models"]] == ["fmnist-standard", "fmnist-robust"]
    assert printed["least_consistent"] in ("fmnist-standard", "fmnist-robust")
    assert "input_margins" not in printed["models"][0] and printed["config"]["subset_sizes"] == [10, 20]
    stored = load_result(out)
    assert stored.command.startswith("python -m sia_core zoo") and len(stored.result.entries[0].labels) == 40
    assert main(["zoo", "--subset-sizes", "ten", "--json"]) == 2


def test_the_zoo_axis_is_autoattack_where_a_card_has_it_and_says_so_where_not():
    from sia_app.zoo_view import on_autoattack_axis
    from sia_core.figures import zoo_figure

    base = {"recipe": "r", "clean_accuracy": 0.9, "kendall_tau": 0.5, "pseudo_kendall_tau_after": 0.6, "auroc": 0.8}
    points = [{**base, "model_id": "a", "robust_accuracy": 0.70}, {**base, "model_id": "b", "robust_accuracy": 0.40}]
    moved = on_autoattack_axis(points, {"a": {"robust_accuracy": 0.66, "n": 500}})
    assert moved[0]["robust_accuracy"] == 0.66 and moved[0]["axis"] == "AutoAttack"
    assert moved[0]["margin_robust_accuracy"] == 0.70
    assert moved[1]["robust_accuracy"] == 0.40 and moved[1]["axis"] == "margin search"
    figure = zoo_figure(moved, [], score="kendall_tau")
    assert figure.layout.xaxis.title.text == "robust accuracy (AutoAttack; squares: our margin search)"
    ours = next(trace for trace in figure.data if trace.name == "ours")
    assert list(ours.marker.symbol) == ["circle", "square"] and list(ours.x) == [0.66, 0.40]
    all_aa = on_autoattack_axis(points, {"a": {"robust_accuracy": 0.66, "n": 500},
                                         "b": {"robust_accuracy": 0.3, "n": 500}})
    assert zoo_figure(all_aa, [], score="auroc").layout.xaxis.title.text == "robust accuracy (AutoAttack)"


def test_the_estimate_figure_ticks_its_log_axis_at_the_sizes_measured():
    from sia_core.figures import estimate_error_figure

    figure = estimate_error_figure({"a": {10: (0.05, 0.01), 100: (0.02, 0.005), 1000: (0.01, 0.001)},
                                    "b": {10: (0.04, 0.01), 30: (0.03, 0.01)}})
    assert figure.layout.xaxis.type == "log"
    assert list(figure.layout.xaxis.tickvals) == [10, 30, 100, 1000]
    assert list(figure.layout.xaxis.ticktext) == ["10", "30", "100", "1,000"]


def test_the_zoo_takeaway_says_over_which_models_it_averaged_the_estimates_error():
    from sia_core.takeaways import zoo_takeaway

    said = zoo_takeaway(9, "fmnist-x", 0.5, 0.55, (0.5, 0.8), (100, 0.037), robust_models=6)
    assert "within 3.7 points on average over the 6 robust models (at least 20% robust accuracy)." in said
    assert zoo_takeaway(9, "fmnist-x", 0.5, 0.55, (0.5, 0.8), (100, 0.012)).endswith("1.2 points on average.")
