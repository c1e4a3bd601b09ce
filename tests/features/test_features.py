"""Constructed datasets: the KINDS registry, exact relabelling, targeted PGD that reaches its targets inside the
ε-ball, representation matching that lowers the error, saved sets that round-trip and resume, training whose
robust accuracy at ε = 0 is its clean accuracy, the transfer study, and configs that refuse bad values."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from sia_core.data.base import ImageDataset
from sia_core.errors import ConfigError, DataError
from sia_core.features import (KINDS, ConstructedSet, ConstructionConfig, build_constructed_set, relabel_targets,
                               seed_mean_points, train_on_constructed, transfer_by_radius, transfer_runs,
                               transfer_study, FeatureTrainingConfig, FeatureTransferConfig)
from sia_core.features.build import representation_error_curve
from sia_core.features.constructed import FORMAT_VERSION
from tests.conftest import make_wrapper


def _levels(count: int, seed: int) -> ImageDataset:
    """Four classes told apart by mean intensity (0, 0.25, 0.5, 0.75) plus a little noise: separable."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 4
    images = (labels.float().view(-1, 1, 1, 1) / 4 + 0.1 * torch.rand(count, 1, 8, 8, generator=generator)).clamp(0, 1)
    return ImageDataset("levels", images, labels, ("a", "b", "c", "d"))


@pytest.fixture(scope="module")
def tiny_train() -> ImageDataset:
    return _levels(40, seed=0)


@pytest.fixture(scope="module")
def tiny_model():
    return make_wrapper(channels=1, size=8, classes=4, seed=3, architecture="mlp")


@pytest.fixture(scope="module")
def separable():
    """A model trained to near-perfect accuracy on the separable levels set, and that set."""
    from sia_core.training import TrainConfig, train

    data = _levels(400, seed=1)
    source = make_wrapper(channels=1, size=8, classes=4, seed=5, architecture="mlp")
    train(source, data, TrainConfig(epochs=30))
    return source, data


def test_kinds_registry_names_labels_and_the_papers_defaults():
    assert KINDS.names() == ("d_rand", "d_det", "d_r", "d_nr")
    assert KINDS.labels() == {"d_rand": "D̂_rand", "d_det": "D̂_det", "d_r": "D̂_R", "d_nr": "D̂_NR"}
    assert KINDS.build("d_det", n=10) == ConstructionConfig(kind="d_det", n=10, eps_l2=0.5, steps=100, step_size=0.1)
    assert KINDS.build("d_r").steps == 1000 and KINDS["d_r"].traits["source"] == "robust"
    assert [entry.traits["relabel"] is None for entry in KINDS] == [False, False, True, True]
    with pytest.raises(ConfigError, match="choose one of d_rand, d_det, d_r, d_nr"):
        KINDS["d"]  # the original set is a row label on the page, not a kind


def test_relabelling_is_exact():
    labels = torch.tensor([0, 1, 2, 3, 3])
    assert relabel_targets(labels, "d_det", 4, seed=0).tolist() == [1, 2, 3, 0, 0]
    first, second = relabel_targets(labels, "d_rand", 4, seed=5), relabel_targets(labels, "d_rand", 4, seed=5)
    assert torch.equal(first, second) and int(first.min()) >= 0 and int(first.max()) < 4
    assert not torch.equal(relabel_targets(torch.zeros(50, dtype=torch.long), "d_rand", 4, seed=5),
                           relabel_targets(torch.zeros(50, dtype=torch.long), "d_rand", 4, seed=6))
    with pytest.raises(ConfigError, match="not a relabelled set"):
        relabel_targets(labels, "d_nr", 4, seed=0)


@pytest.mark.parametrize("kind", ["d_det", "d_rand"])
def test_relabelled_sets_reach_their_targets_inside_the_ball(separable, kind):
    source, data = separable
    config = ConstructionConfig(kind=kind, n=40, eps_l2=4.0, steps=30, step_size=0.3, batch_size=16)
    built = build_constructed_set(source, data, config)
    assert len(built) == 40 and built.images.min() >= 0 and built.images.max() <= 1
    sources = data.images[built.source_indices]
    assert torch.all((built.images - sources).flatten(1).norm(dim=1) <= 4.0 + 1e-5)
    assert torch.equal(built.original_labels, data.labels[built.source_indices])
    if kind == "d_det":
        assert torch.equal(built.labels, (built.original_labels + 1) % 4)
    assert torch.equal(built.labels, relabel_targets(built.original_labels, kind, 4, seed=0))
    # an L2 step of 4 moves an 8x8 image's mean by up to 0.5: any other level is reachable, and the model follows
    predicted = source.logits(built.images).argmax(1)
    assert built.metric["targeted_success_rate"] == pytest.approx(float((predicted == built.labels).float().mean()))
    assert built.metric["targeted_success_rate"] > 0.9
    tight = build_constructed_set(source, data, ConstructionConfig(kind=kind, n=40, eps_l2=0.01, steps=20, batch_size=16))
    # a 0.01 ball cannot cross a 0.25 intensity gap: only targets the model already predicts count as reached
    already = source.logits(data.images[tight.source_indices]).argmax(1) == tight.labels
    assert tight.metric["targeted_success_rate"] == pytest.approx(float(already.float().mean()), abs=0.05)


@pytest.mark.parametrize("kind", ["d_r", "d_nr"])
def test_representation_matching_lowers_the_error_and_starts_elsewhere(tiny_model, tiny_train, kind):
    built = build_constructed_set(tiny_model, tiny_train, ConstructionConfig(kind=kind, n=20, steps=60, step_size=0.05))
    assert built.metric["relative_representation_error"] < 0.5 * built.metric["relative_representation_error_at_start"]
    assert torch.all(built.start_indices != built.source_indices)  # a random *other* image
    assert torch.equal(built.labels, built.original_labels)        # D_R / D_NR keep the source label
    assert built.images.min() >= 0 and built.images.max() <= 1


def test_saved_sets_round_trip_and_resume(tiny_model, tiny_train, tmp_path):
    path = tmp_path / "det.npz"
    config = ConstructionConfig(kind="d_det", n=20, eps_l2=0.5, steps=5, batch_size=10)
    built = build_constructed_set(tiny_model, tiny_train, config, out=path)
    loaded = ConstructedSet.load(path)
    assert loaded.config == config and loaded.source_model == built.source_model
    assert torch.allclose(loaded.images, built.images, atol=1e-3)  # stored as float16
    assert torch.equal(loaded.labels, built.labels) and torch.equal(loaded.source_indices, built.source_indices)
    calls = []
    resumed = build_constructed_set(tiny_model, tiny_train, config, out=path, progress=lambda *a: calls.append(a))
    assert calls == [] and torch.allclose(resumed.images, loaded.images)  # nothing left to build


def test_the_reached_flags_survive_saving_and_cutting(separable, tmp_path):
    source, data = separable
    every = build_constructed_set(source, data, ConstructionConfig(kind="d_rand", n=40, eps_l2=0.6, steps=10,
                                                                   step_size=0.1), out=tmp_path / "r.npz")
    loaded = ConstructedSet.load(tmp_path / "r.npz")
    assert torch.equal(loaded.reached, every.reached) and torch.equal(loaded.head(7).reached, every.reached[:7])
    assert len(loaded.head(7)) == 7 and torch.equal(loaded.head(7).source_indices, every.source_indices[:7])


def test_bad_files_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(3))
    with pytest.raises(DataError, match="not a constructed dataset"):
        ConstructedSet.load(bad)
    with pytest.raises(ConfigError, match="Unknown constructed-set kind 'd_x'"):
        ConstructionConfig(kind="d_x")



def _saved_with_meta(path, meta) -> None:
    arrays = {key: np.zeros(2, dtype=np.int64) for key in ("labels", "original_labels", "source_indices",
                                                             "start_indices")}
    np.savez(path, images=np.zeros((2, 1, 4, 4), np.float16), meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
             **arrays)


def test_any_broken_file_is_a_clear_error_never_a_traceback(tmp_path):
    # a visitor names the file: empty, not a zip, a JSON list, a config key this version lacks
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    _saved_with_meta(tmp_path / "list.npz", [1, 2])
    _saved_with_meta(tmp_path / "key.npz", {"format": FORMAT_VERSION, "config": {"kind": "d_det", "colour": 3},
                                            "source_model": "m", "class_names": ["a", "b"]})
    for name in ("empty", "corrupt", "list", "key"):
        with pytest.raises(DataError):
            ConstructedSet.load(tmp_path / f"{name}.npz")


@pytest.mark.parametrize("options", [dict(kind="d"), dict(n=0), dict(n=-5), dict(n=2.5), dict(eps_l2=0.0),
                                     dict(eps_l2=-1.0), dict(steps=-1), dict(step_size=0.0), dict(batch_size=0),
                                     dict(seed=1.5), dict(keep="some"), dict(kind="d_r", keep="successful")])
def test_construction_config_refuses_bad_values(options):
    with pytest.raises(ConfigError):
        ConstructionConfig(**{"kind": "d_det", **options})


def test_training_on_a_constructed_set_reports_original_test_accuracy(separable):
    source, data = separable
    built = build_constructed_set(source, data, ConstructionConfig(kind="d_nr", n=80, steps=20))
    test_set = _levels(60, seed=7)
    model, result = train_on_constructed(built.as_dataset(), test_set, FeatureTrainingConfig(
        architecture="mlp", epochs=3, eval_eps_l2=0.0, eval_steps=3, eval_n=None), kind="d_nr")
    assert result.n_train == 80 and len(result.epoch_test_accuracy) == len(result.epoch_train_accuracy) == 3
    assert model.input_shape == (1, 8, 8) and result.relabelled_test_accuracy is None
    clean = float((model.logits(test_set.images).argmax(1) == test_set.labels).float().mean())
    assert result.test_accuracy == clean
    assert result.robust_accuracy == result.test_accuracy  # a radius-0 attack changes nothing
    assert result.epoch_test_accuracy[-1] == clean  # the curve's last point is the final model on these 60 images
    det = build_constructed_set(source, data, ConstructionConfig(kind="d_det", n=40, eps_l2=0.5, steps=5))
    det_model, det_result = train_on_constructed(det.as_dataset(), test_set, FeatureTrainingConfig(
        architecture="mlp", epochs=1, eval_eps_l2=0.5, eval_steps=3, eval_n=20), kind="d_det")
    predictions = det_model.logits(test_set.images).argmax(1)
    # against the relabelling (y + 1) mod C on every test image, and a prediction can match y or y + 1, not both
    relabelled = float((predictions == (test_set.labels + 1) % test_set.num_classes).float().mean())
    assert det_result.relabelled_test_accuracy == relabelled and det_result.eps == 0.5
    assert det_result.relabelled_test_accuracy + det_result.test_accuracy <= 1.0


@pytest.mark.parametrize("options", [dict(architecture="resnet"), dict(epochs=0), dict(learning_rate=0.0),
                                     dict(eval_eps_l2=-0.1), dict(eval_steps=0), dict(eval_n=0)])
def test_training_refuses_bad_values(options):
    with pytest.raises(ConfigError):
        FeatureTrainingConfig(**{"architecture": "mlp", **options})


def test_training_refuses_an_unknown_kind(tiny_train):
    with pytest.raises(ConfigError):
        train_on_constructed(tiny_train, tiny_train, FeatureTrainingConfig(architecture="mlp"), kind="d_x")


def test_transfer_study_gives_one_point_per_architecture_and_grows_with_the_attack(separable):
    source, data = separable
    det = build_constructed_set(source, data, ConstructionConfig(kind="d_det", n=400, eps_l2=1.0, steps=10))
    kwargs = dict(architectures=("mlp", "tiny-cnn"), epochs=30, attack_steps=10, attack_n=100)
    weak = transfer_study(source, det, data, data, FeatureTransferConfig(attack_eps_l2=1e-4, sensitivity_eps_l2=(3.0,),
                                                                         **kwargs)).points
    strong = transfer_study(source, det, data, data, FeatureTransferConfig(attack_eps_l2=3.0, **kwargs)).points
    assert [p.architecture for p in weak] == ["mlp", "tiny-cnn"]
    for low, high in zip(weak, strong):
        assert low.standard_accuracy == high.standard_accuracy > 0.9  # same seed, same training: same model
        assert low.transfer_success == 0.0  # a 1e-4 step cannot flip a confident, correct decision
        assert high.transfer_success > 0.5  # an L2 step of 3 moves these images into another class's intensity
        assert low.accuracy_from_det == high.accuracy_from_det  # the D̂_det model does not depend on the attack
        # the further radius is the same attack (same seed) scored on the same model: it gives the strong study's rate
        assert low.transfer_success_by_eps == ((3.0, high.transfer_success),) and high.transfer_success_by_eps == ()
        # a prediction cannot be both y and (y + 1) mod C: the two accuracies of the D̂_det model add to at most 1
        assert 0 <= low.relabelled_accuracy_from_det <= 1 - low.accuracy_from_det
    with pytest.raises(DataError, match="trains on D̂_det"):
        transfer_study(source, build_constructed_set(source, data, ConstructionConfig(kind="d_nr", n=8, steps=2)),
                       data, data, FeatureTransferConfig(architectures=("mlp",)))
    for options in (dict(architectures=()), dict(architectures=("resnet",)), dict(epochs=0), dict(attack_eps_l2=-1.0),
                    dict(attack_steps=0), dict(attack_n=0), dict(sensitivity_eps_l2=(0.5, -1.0))):
        with pytest.raises(ConfigError):
            FeatureTransferConfig(**{"architectures": ("mlp",), **options})


def test_transfer_by_radius_averages_the_seeds_at_every_radius_in_order():
    def run(seed: int, headline: float, further: list) -> dict:
        return {"seed": seed, "source": "s", "n_train": 100, "config": {"attack_eps_l2": 0.5, "seed": seed},
                "points": [{"architecture": "mlp", "transfer_success": headline, "transfer_success_by_eps": further,
                            "accuracy_from_det": headline / 2, "standard_accuracy": 0.9}]}

    seed0 = {**run(0, 0.2, [[2.0, 0.9], [0.25, 0.1]]), "other_seeds": [run(1, 0.4, [[2.0, 0.7], [0.25, 0.3]])]}
    curve = transfer_by_radius(transfer_runs(seed0))["mlp"]
    assert [eps for eps, _ in curve] == [0.25, 0.5, 2.0]
    assert [rate for _, rate in curve] == pytest.approx([0.2, 0.3, 0.8])
    mean = seed_mean_points(transfer_runs(seed0))[0]
    assert mean["accuracy_from_det"] == pytest.approx(0.15) and mean["transfer_success"] == pytest.approx(0.3)
    # a seed that trained other architectures, or from another source, is not averaged in
    for otherwise in ({"points": [{"architecture": "vgg-slim"}]}, {"source": "another"}):
        mismatched = {**seed0, "other_seeds": [{**run(1, 0.4, []), **otherwise}]}
        assert transfer_runs(mismatched) == [mismatched]


def test_the_transfer_scatter_marks_each_seed_with_its_own_shape_beside_the_mean():
    from sia_core.figures import transfer_scatter

    def points(shift: float) -> list[dict]:
        return [{"architecture": name, "accuracy_from_det": 0.1 + shift, "transfer_success": 0.2 + shift}
                for name in ("mlp", "tiny-cnn")]

    figure = transfer_scatter(points(0.0), title="t", seeds={0: points(-0.01), 1: points(0.01)}, chance=0.1)
    ties, mean, *seeds = figure.data
    assert list(mean.x) == [0.1, 0.1] and list(mean.text) == ["mlp", "tiny-cnn"]
    assert [trace.name for trace in seeds] == ["seed 0", "seed 1"]
    assert len({trace.marker.symbol for trace in seeds}) == 2  # the legend tells the seeds apart
    # each seed's point tied to its architecture's mean (an unlabelled hollow marker is placed), not in the legend
    assert list(ties.x[:3]) == [0.1, pytest.approx(0.09), None] and not ties.showlegend and ties.mode == "lines"
    assert [shape.x0 for shape in figure.layout.shapes] == [0.1]  # chance, dashed
    # each name beside its mean, on the side away from its seeds' markers: with the seeds above and below, aside
    upright = [{**point, "transfer_success": point["transfer_success"] + shift} for shift in (-0.05, 0.05)
               for point in points(0.0)[:1]]
    apart = transfer_scatter(points(0.0)[:1], title="t", seeds={0: upright[:1], 1: upright[1:]})
    assert [(note.text, note.yshift, note.xshift != 0) for note in apart.layout.annotations] == [("mlp", 0, True)]
    alone = transfer_scatter(points(0.0), title="t")  # one seed: its points, no legend, no ties
    assert len(alone.data) == 1 and not alone.data[0].showlegend and not alone.layout.shapes


def test_d_rand_targets_another_class_uniformly():
    labels = torch.arange(10).repeat(500)
    targets = relabel_targets(labels, "d_rand", 10, seed=3)
    assert not (targets == labels).any()  # t != y, as the paper builds it
    counts = torch.bincount((targets - labels) % 10, minlength=10)
    assert counts[0] == 0 and counts[1:].min() > 450 and counts[1:].max() < 660  # each other class about 1 in 9


def test_keeping_successes_keeps_exactly_the_images_that_reach_their_target(separable, tmp_path):
    source, data = separable
    # a radius that reaches some targets and not others: 0.6 moves an 8x8 image's mean by up to 0.075
    config = ConstructionConfig(kind="d_det", n=60, eps_l2=0.6, steps=10, step_size=0.1, batch_size=16)
    every = build_constructed_set(source, data, config)
    kept = build_constructed_set(source, data, dataclasses.replace(config, keep="successful"), out=tmp_path / "k.npz")
    reached = source.logits(every.images).argmax(1) == every.labels
    assert 0 < int(reached.sum()) < len(every)  # the case the option is for
    assert len(kept) == int(reached.sum()) == kept.metric["kept"]
    assert kept.metric["targeted_success_rate"] == pytest.approx(every.metric["targeted_success_rate"])
    assert torch.equal(kept.source_indices, every.source_indices[reached])
    assert torch.equal(kept.labels, every.labels[reached])
    assert bool((source.logits(kept.images).argmax(1) == kept.labels).all())
    calls = []  # the finished (filtered) file is returned as it is, not rebuilt from its shorter length
    again = build_constructed_set(source, data, dataclasses.replace(config, keep="successful"), out=tmp_path / "k.npz",
                                  progress=lambda *a: calls.append(a))
    assert calls == [] and len(again) == len(kept)


@pytest.mark.parametrize("kind", ["d_det", "d_rand"])
def test_success_by_class_counts_every_attempt_once_whether_the_set_kept_all_or_the_successes(separable, kind):
    from sia_core.features.build import build_plan, targeted_success_by_class

    source, data = separable
    config = ConstructionConfig(kind=kind, n=60, eps_l2=0.6, steps=10, step_size=0.1, batch_size=16)
    every = build_constructed_set(source, data, config)
    reached = source.logits(every.images).argmax(1) == every.labels
    assert torch.equal(every.reached, reached)  # a set that keeps every attempt records which reached
    kept = build_constructed_set(source, data, dataclasses.replace(config, keep="successful"))
    assert kept.reached is None  # every image it holds reached
    from_flags, from_kept = targeted_success_by_class(data, every), targeted_success_by_class(data, kept)
    assert from_flags == from_kept  # the plan says which attempts the kept set lacks
    assert [row.source_class for row in from_kept] == list(data.class_names)
    true = data.labels[build_plan(data, config).order]
    assert [row.attempts for row in from_kept] == torch.bincount(true, minlength=4).tolist()
    assert [row.reached for row in from_kept] == torch.bincount(true[reached], minlength=4).tolist()
    assert sum(row.reached for row in from_kept) == kept.metric["kept"]
    # D̂_det sends every image of a class to the next class; D̂_rand spreads them over the others
    targets = [row.target_class for row in from_kept]
    assert targets == (["b", "c", "d", "a"] if kind == "d_det" else [None] * 4)
    row = from_kept[0].to_dict()
    assert row["rate_ci95"][0] <= row["rate"] <= row["rate_ci95"][1]


def test_success_by_class_refuses_a_set_from_another_split_or_kind(separable, tiny_model, tiny_train):
    from sia_core.features.build import targeted_success_by_class

    source, data = separable
    kept = build_constructed_set(source, data, ConstructionConfig(kind="d_det", n=60, eps_l2=0.6, steps=10,
                                                                  step_size=0.1, keep="successful"))
    with pytest.raises(DataError, match="does not match"):
        targeted_success_by_class(_levels(400, seed=2).subset(slice(0, 200)), kept)
    every = build_constructed_set(source, data, ConstructionConfig(kind="d_det", n=60, eps_l2=0.6, steps=10,
                                                                   step_size=0.1))
    with pytest.raises(DataError, match="does not match"):
        targeted_success_by_class(_levels(400, seed=2).subset(slice(0, 200)), every)
    with pytest.raises(DataError, match="saved without the flags"):  # a set saved before they were recorded
        targeted_success_by_class(data, dataclasses.replace(every, reached=None))
    with pytest.raises(ConfigError):
        targeted_success_by_class(tiny_train, build_constructed_set(tiny_model, tiny_train,
                                                                    ConstructionConfig(kind="d_nr", n=4, steps=2)))


def test_the_error_curve_starts_at_the_starting_error_and_ends_at_the_built_sets(tiny_model, tiny_train):
    config = ConstructionConfig(kind="d_nr", n=12, steps=30, step_size=0.05)
    steps, errors = representation_error_curve(tiny_model, tiny_train, config, n=12, every=10)
    built = build_constructed_set(tiny_model, tiny_train, config)
    assert steps == (0, 10, 20, 30)
    assert errors[0] == pytest.approx(built.metric["relative_representation_error_at_start"], rel=1e-5)
    # segments of normalized steps carry no state: three runs of 10 equal one run of 30
    assert errors[-1] == pytest.approx(built.metric["relative_representation_error"], rel=1e-4)
    assert errors[-1] < errors[0]
    with pytest.raises(ConfigError):
        representation_error_curve(tiny_model, tiny_train, ConstructionConfig(kind="d_det", n=4), n=4)


def test_scores_carry_intervals_that_hold_the_value(separable):
    source, data = separable
    test_set = _levels(60, seed=7)
    _, result = train_on_constructed(data.subset(slice(0, 80)), test_set, FeatureTrainingConfig(
        architecture="mlp", epochs=1, eval_eps_l2=0.3, eval_steps=3, eval_n=30), kind="d")
    assert result.test_n == 60 and result.robust_n == 30 and result.kind == "d"
    for value, (low, high) in ((result.test_accuracy, result.test_accuracy_ci95),
                               (result.robust_accuracy, result.robust_accuracy_ci95)):
        assert low <= value <= high and high - low < 0.5
