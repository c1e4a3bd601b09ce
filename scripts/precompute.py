"""Precompute what each page shows the moment it opens, for the shipped Fashion-MNIST models on the embedded
subset, with the pages' default settings; the pages label it "precomputed by <command> on <date>" and recompute
live on a click. Re-run after retraining a model:

    .venv/bin/python scripts/precompute.py            # writes assets/precomputed/*.json.gz
    .venv/bin/python scripts/precompute.py features   # the features page's results only
    .venv/bin/python scripts/precompute.py diagnosis  # any of the lenses in LENSES, alone or together
    .venv/bin/python scripts/precompute.py transfer imbalance  # the robustify page's two tables
    .venv/bin/python scripts/precompute.py transfer-shapes     # one world's transfer table
    torchrun --nproc-per-node 2 scripts/precompute.py transfer-cifar10  # its attacks sharded over 2 processes
    .venv/bin/python scripts/precompute.py zoo                 # the margins page's zoos (FMNIST: about 25 min)
    .venv/bin/python scripts/precompute.py zoo-cifar10         # one world's zoo
    torchrun --nproc-per-node 2 scripts/precompute.py zoo      # the same, its images sharded over 2 processes
    .venv/bin/python scripts/precompute.py cifar10             # the CIFAR-10 world's pages and its study summary
                                                               # (bash scripts/cifar10_study.sh; about an hour)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sia_core.data.catalog import load_dataset  # noqa: E402
from sia_core.attacks.pgd import PGD  # noqa: E402
from sia_core.diagnosis import DiagnosisConfig, diagnose  # noqa: E402
from sia_core.evaluation import evaluate  # noqa: E402
from sia_core.distributed import init_from_environment, shutdown  # noqa: E402
from sia_core.errors import SiaError  # noqa: E402
from sia_core.features import KINDS, PAPER_CIFAR10, build_constructed_set, train_on_constructed  # noqa: E402
from sia_core.features.training import fresh_model  # noqa: E402
from sia_core.margins import PAPER_ZOO, ZOO_MODELS, InputMarginEstimator, ZooConfig, margin_study, zoo_study  # noqa: E402
from sia_core.models.registry import load_model_and_card  # noqa: E402
from sia_core.models.registry import load_model  # noqa: E402
from sia_core.paths import PRECOMPUTED_DIR  # noqa: E402
from sia_core.regions.fills import FILLS  # noqa: E402
from sia_core.regions.neutralization import NeutralizationConfig, neutralization_study  # noqa: E402
from sia_core.results_io import load_results, save_results  # noqa: E402
from sia_core.robustify import ImbalanceConfig, TransferConfig, run_imbalance_study, transfer_table  # noqa: E402
from sia_core.semantics import applicable_attributes  # noqa: E402
from sia_core.training import TrainConfig, train  # noqa: E402

COMMAND = "python scripts/precompute.py"
DATASET = "fashion-mnist-subset"
DATASET_KEY = f"{DATASET}|None|None"  # the sidebar's key for the embedded subset
MODELS = ("fmnist-standard", "fmnist-robust")
MARGINS_N, MARGINS_NORM = 300, "linf"  # the margins page's defaults
# the features page's defaults: build N 1,000 with 50 steps (L2 radius 2.0), train 5 epochs, attack 500 at 0.5
FEATURE_SOURCES = {"d_det": "fmnist-standard", "d_r": "fmnist-robust"}
FEATURE_BUILD = {"n": 1000, "steps": 50, "eps": 2.0}
FEATURE_TRAINING = {"epochs": 5, "eval_eps": 0.5, "eval_n": 500}
PREVIEW = 8  # images kept of each set: the page's grid shows eight
# the robustify page: one transfer table per world (rows: standard, PGD-AT, SIA-AT, the random-attribute control),
# 1,000 test images per cell; the imbalance study at ρ = 100 on Fashion-MNIST, 3 seeds
TRANSFER_WORLDS = {"fashion-mnist": ("fmnist-standard", "fmnist-robust", "fmnist-sia-at", "fmnist-random-attributes"),
                   "shapes": ("shapes-standard", "shapes-robust", "shapes-sia-at", "shapes-random-attributes"),
                   "cifar10": ("cifar10-standard", "cifar10-robust", "cifar10-sia-at")}
TRANSFER_TEST_SETS = {"cifar10": "cifar10-subset"}  # the embedded exact-pixel images (else the world's test split)
TRANSFER_N = 1000
IMBALANCE = {"rho": 100.0, "n_max": 1000, "seeds": 3, "epochs": 20}
# "transfer" runs every world; "transfer-<world>" one of them
# each zoo world: its embedded test set, its training split (the pseudo-margin's held-out images) and its settings;
# CIFAR-10 at the paper's L-inf 8/255, on half the embedded subset (a bigger network: the margins cost more)
ZOO_WORLDS = {
    "fashion-mnist": ("fashion-mnist-subset", ("fashion-mnist", None),
                      ZooConfig(n=1000, eps=0.1, subset_sizes=(25, 50, 100, 200, 500), repeats=10, pseudo_fit_n=500)),
    "cifar10": ("cifar10-subset", ("cifar10", Path(__file__).resolve().parents[2] / "shared/data/cifar10-jpg"),
                ZooConfig(n=500, eps=8 / 255, subset_sizes=(25, 50, 100, 200), repeats=10, pseudo_fit_n=500)),
}
# the CIFAR-10 world: the same pages on the embedded CIFAR-10 test subset, at the papers' settings where a paper
# has one. Features (Ilyas et al. 2019, CIFAR-10): D̂_det / D̂_rand by targeted L2 PGD at eps 0.5 (100 steps of 0.1)
# from the standard model, D̂_R by 200 normalized steps of 0.1 (the paper: 1,000) from the robust one, on N training
# images; a fresh resnet9-slim trains on each (and, as the scale's baseline "D", on the same N original images) and
# is scored on the embedded exact-pixel test images at L2 0.25 and 0.5 (Table 7's columns). The regions study runs
# every fill on the standard model. The summary puts each study beside the papers' numbers.
CIFAR10_DATASET = "cifar10-subset"
CIFAR10_MODELS = ("cifar10-standard", "cifar10-robust")
CIFAR10_TRAIN = ZOO_WORLDS["cifar10"][1]
CIFAR10_FEATURE_SOURCES = {"d_det": "cifar10-standard", "d_rand": "cifar10-standard", "d_r": "cifar10-robust"}
CIFAR10_FEATURE_BUILD = {"d_det": {"n": 2000, "steps": 100, "eps": 0.5}, "d_rand": {"n": 2000, "steps": 100, "eps": 0.5},
                         "d_r": {"n": 2000, "steps": 200}}
CIFAR10_FEATURE_TRAINING = {"architecture": "resnet9-slim", "epochs": 20, "eval_eps": 0.25, "eval_n": 500}
CIFAR10_EXTRA_EPS = 0.5  # Table 7's second robust column
CIFAR10_MARGINS_EPS = 8 / 255  # the margins paper's CIFAR-10 budget
CIFAR10_LENSES = ("cifar10-diagnosis", "cifar10-margins", "cifar10-regions", "cifar10-features", "cifar10-summary")
LENSES = ("features", "diagnosis", "regions", "margins", "transfer", *(f"transfer-{w}" for w in TRANSFER_WORLDS),
          "imbalance", "zoo", *(f"zoo-{w}" for w in ZOO_WORLDS), "cifar10", *CIFAR10_LENSES)


def _save(kind: str, model_id: str, config, result, started: float, dataset_key: str = DATASET_KEY) -> None:
    save_results(PRECOMPUTED_DIR / f"{kind}-{model_id}.json.gz", {
        "kind": kind, "model": model_id, "dataset_key": dataset_key, "config": config, "result": result,
        "command": COMMAND, "created": time.strftime("%Y-%m-%d"), "seconds": round(time.perf_counter() - started, 1)})
    print(f"{kind} {model_id}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def main(only: tuple[str, ...]) -> None:
    """Every lens's results, or only the lenses named (the others' files are left as they are)."""
    def wanted(lens: str) -> bool:
        return not only or lens in only

    worlds = [world for world in TRANSFER_WORLDS if wanted("transfer") or wanted(f"transfer-{world}")]
    if worlds:
        transfer(worlds)
    if wanted("imbalance"):
        imbalance()
    for world in ZOO_WORLDS:
        if wanted("zoo") or wanted(f"zoo-{world}"):
            zoo(world)
    cifar10 = [lens.removeprefix("cifar10-") for lens in CIFAR10_LENSES if wanted("cifar10") or wanted(lens)]
    if cifar10:
        cifar10_world(cifar10)
    if only and not any(wanted(lens) for lens in ("features", "diagnosis", "regions", "margins")):
        return
    dataset = load_dataset(DATASET)
    if wanted("features"):
        features(dataset)
    page_results(dataset, DATASET_KEY, MODELS, [lens for lens in ("diagnosis", "regions", "margins") if wanted(lens)])


def page_results(dataset, dataset_key: str, model_ids, lenses, fills: dict[str, tuple[str, ...]] | None = None) -> None:
    """The diagnosis, regions and margins pages' results at their default settings, for each model; `fills` names
    the models whose regions study also runs with every other fill (saved together as "regions-fills")."""
    def wanted(lens: str) -> bool:
        return lens in lenses

    def _save_here(kind, model_id, config, result, started):
        _save(kind, model_id, config, result, started, dataset_key)

    for model_id in model_ids:
        model = load_model(model_id)
        if wanted("diagnosis"):
            started = time.perf_counter()
            # the diagnosis page's defaults: N 256, 2/255, 30 steps, every attribute that applies, seed 0
            config = DiagnosisConfig(n=256, eps_img=2.0 / 255, steps=30, seed=0,
                                     attributes=tuple(a.name for a in applicable_attributes(model.input_shape[0])))
            report = diagnose(model, dataset, config)
            _save_here("diagnosis", model_id, config, dataclasses.replace(report, joint=None), started)

        if wanted("regions"):
            started = time.perf_counter()
            config = NeutralizationConfig(n=256, n_fit=256, fraction=0.2, eps=8.0 / 255, fill="zero")
            report = neutralization_study(model, dataset, config)
            _save_here("regions", model_id, config, report, started)
            if model_id in (fills or {}):
                reports = {config.fill: report.to_dict()}
                for fill in fills[model_id]:
                    reports[fill] = neutralization_study(model, dataset, dataclasses.replace(config, fill=fill)).to_dict()
                _save_here("regions-fills", model_id, dataclasses.asdict(config), reports, started)

        if wanted("margins"):
            started = time.perf_counter()
            study = margin_study(model, dataset.images[:MARGINS_N], dataset.labels[:MARGINS_N], norm=MARGINS_NORM,
                                 estimator=InputMarginEstimator(norm=MARGINS_NORM), dataset=dataset.name)
            # without the images at the margin (the page finds the one it shows again): 3 KB per CIFAR-10 image
            _save_here("margins", model_id, {"n": MARGINS_N, "norm": MARGINS_NORM}, study.without_adversarial_images(),
                       started)


def cifar10_world(lenses: list[str]) -> None:
    """The CIFAR-10 world's page results on the embedded test subset, the features study on the training split,
    and the summary beside the papers' numbers (`lenses`: diagnosis, margins, regions, features, summary)."""
    dataset = load_dataset(CIFAR10_DATASET)
    dataset_key = f"{CIFAR10_DATASET}|None|None"
    page_results(dataset, dataset_key, CIFAR10_MODELS, lenses,
                 fills={"cifar10-standard": tuple(f for f in FILLS.names() if f != "zero")})
    if "features" in lenses:
        cifar10_features(dataset, dataset_key)
    if "summary" in lenses:
        cifar10_summary(dataset_key)


def cifar10_features(test_set, dataset_key: str) -> None:
    """D̂_det, D̂_rand and D̂_R at the paper's settings (see CIFAR10_FEATURE_BUILD), a fresh model trained on each
    and on the same number of original images; the page keeps the first images of each set for its grid."""
    try:
        train_set = load_dataset(CIFAR10_TRAIN[0], "train", root=CIFAR10_TRAIN[1])
    except SiaError as error:
        print(f"cifar10 features skipped: {error}", file=sys.stderr)
        return
    started = time.perf_counter()
    training_options = CIFAR10_FEATURE_TRAINING
    extra = PGD(eps=CIFAR10_EXTRA_EPS, norm="l2", steps=20, seed=0)
    sets, training, counts, robust_extra, seconds = {}, {}, {}, {}, {}
    for kind, model_id in CIFAR10_FEATURE_SOURCES.items():
        step = time.perf_counter()
        built = build_constructed_set(load_model(model_id), train_set, KINDS.build(kind, **CIFAR10_FEATURE_BUILD[kind]),
                                      progress=_progress(f"build {kind}"))
        seconds[f"build {kind}"] = round(time.perf_counter() - step, 1)
        step = time.perf_counter()
        model, training[kind] = train_on_constructed(built.as_dataset(), test_set, kind=kind, **training_options,
                                                     progress=_progress(f"train {kind}"))
        robust_extra[kind] = evaluate(model, test_set, attack=extra, n=training_options["eval_n"]).robust_accuracy
        seconds[f"train {kind}"] = round(time.perf_counter() - step, 1)
        sets[kind] = preview(built)
        counts[kind] = len(built)
    # the scale's own "D": the same network and schedule on the first N original training images
    step = time.perf_counter()
    n = CIFAR10_FEATURE_BUILD["d_det"]["n"]
    baseline = fresh_model("trained-on-d", training_options["architecture"], test_set)
    train(baseline, train_set.subset(slice(0, n)), TrainConfig(epochs=training_options["epochs"], learning_rate=2e-3,
                                                                seed=0), progress=_progress("train d"))
    eval_n = training_options["eval_n"]
    baseline_result = {
        "n_train": n, "test_accuracy": evaluate(baseline, test_set).clean_accuracy,
        "robust_accuracy": evaluate(baseline, test_set, n=eval_n, attack=PGD(
            eps=training_options["eval_eps"], norm="l2", steps=20, seed=0)).robust_accuracy,
        "robust_accuracy_extra": evaluate(baseline, test_set, attack=extra, n=eval_n).robust_accuracy}
    seconds["train d"] = round(time.perf_counter() - step, 1)
    config = {"build": CIFAR10_FEATURE_BUILD, "sources": CIFAR10_FEATURE_SOURCES, **training_options,
              "extra_eval_eps": CIFAR10_EXTRA_EPS}
    _save("features", "cifar10-standard", config, {
        "sets": sets, "training": training, "counts": counts, "robust_accuracy_extra": robust_extra,
        "baseline": baseline_result, "seconds": seconds}, started, dataset_key)


def features(dataset) -> None:
    """Two constructed sets (D̂_det from the standard model, D̂_R from the robust one) built from the Fashion-MNIST
    training split, and a fresh model trained on each; only the first images of each set are kept, for the grid."""
    try:
        train_set = load_dataset("fashion-mnist", "train")
    except SiaError as error:
        print(f"features skipped: {error}", file=sys.stderr)
        return
    started = time.perf_counter()
    sets, training, counts = {}, {}, {}
    for kind, model_id in FEATURE_SOURCES.items():
        built = build_constructed_set(load_model(model_id), train_set, KINDS.build(kind, **FEATURE_BUILD))
        _, training[kind] = train_on_constructed(built.as_dataset(), dataset, kind=kind, **FEATURE_TRAINING)
        sets[kind] = preview(built)
        counts[kind] = len(built)
    _save("features", "fmnist-standard", {**FEATURE_BUILD, **FEATURE_TRAINING},
          {"sets": sets, "training": training, "counts": counts}, started)


def cifar10_summary(dataset_key: str) -> None:
    """assets/precomputed/cifar10-study.json: the four studies' headline numbers from the files above, each beside
    the paper's (labelled "paper"), and the models' cards; a file that is missing is reported as missing."""
    def stored(kind: str, model_id: str):
        found = PRECOMPUTED_DIR / f"{kind}-{model_id}.json.gz"
        if not found.is_file():
            return None
        payload = load_results(found)
        return payload if payload["dataset_key"] == dataset_key else None

    summary: dict = {"command": "bash scripts/cifar10_study.sh", "created": time.strftime("%Y-%m-%d"),
                     "dataset": CIFAR10_DATASET, "models": {}, "features": None, "margins": None, "regions": None,
                     "diagnosis": None}
    for model_id in (*CIFAR10_MODELS, "cifar10-sia-at"):
        try:
            summary["models"][model_id] = load_model_and_card(model_id).card.evaluations
        except SiaError:
            summary["models"][model_id] = None  # not trained (yet)
    if (features_run := stored("features", "cifar10-standard")) is not None:
        result = features_run["result"]
        rows = [{"set": "d", "n_train": result["baseline"]["n_train"], "source": None, "metric": {},
                 "test_accuracy": result["baseline"]["test_accuracy"],
                 "robust_accuracy_l2_0.25": result["baseline"]["robust_accuracy"],
                 "robust_accuracy_l2_0.5": result["baseline"]["robust_accuracy_extra"], "paper": PAPER_CIFAR10["d"]}]
        for kind, training in result["training"].items():
            rows.append({"set": kind, "n_train": training.n_train, "source": CIFAR10_FEATURE_SOURCES[kind],
                         "metric": result["sets"][kind].metric, "test_accuracy": training.test_accuracy,
                         "robust_accuracy_l2_0.25": training.robust_accuracy,
                         "robust_accuracy_l2_0.5": result["robust_accuracy_extra"][kind],
                         "relabelled_test_accuracy": training.relabelled_test_accuracy, "paper": PAPER_CIFAR10[kind]})
        summary["features"] = {"config": features_run["config"], "rows": rows, "seconds": result["seconds"]}
    margins = {model_id: found["result"].summary(eps=CIFAR10_MARGINS_EPS).to_dict()
               for model_id in CIFAR10_MODELS for found in [stored("margins", model_id)] if found is not None}
    zoo_file = PRECOMPUTED_DIR / "zoo-cifar10.json.gz"
    zoo_entries = {}
    if zoo_file.is_file():  # the zoo's bigger sample (500 images) with the pseudo-margin, at the same eps
        zoo_result = load_results(zoo_file)["result"]
        zoo_entries = {entry["model_id"]: {key: value for key, value in entry.items() if key not in (
            "input_margins", "logit_margins", "correct", "labels", "estimates")} | {"n": zoo_result["config"]["n"]}
            for entry in zoo_result["entries"]}
    if margins or zoo_entries:
        summary["margins"] = {"eps": CIFAR10_MARGINS_EPS, "norm": MARGINS_NORM, "ours": margins,
                              "zoo": zoo_entries, "paper": list(PAPER_ZOO)}
    if (fills := stored("regions-fills", "cifar10-standard")) is not None:
        summary["regions"] = {"model": "cifar10-standard", "config": fills["config"], "fills": fills["result"]}
    diagnoses = {model_id: found["result"].to_dict()
                 for model_id in CIFAR10_MODELS for found in [stored("diagnosis", model_id)] if found is not None}
    if diagnoses:
        summary["diagnosis"] = diagnoses
    path = PRECOMPUTED_DIR / "cifar10-study.json"
    path.write_text(json.dumps(_json_safe(summary), indent=1, allow_nan=False) + "\n")
    print(f"wrote {path}", file=sys.stderr)


def _json_safe(value):
    """Plain JSON: tensors and numbers as floats, undefined figures (an AUROC with one class) as null."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, torch.Tensor):
        return _json_safe(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def preview(built):
    """The first PREVIEW images of a constructed set, for the page's grid, in float16 (a grid of 8-bit pixels needs
    no more: 3 KB instead of 12 KB per CIFAR-10 image)."""
    kept = {name: getattr(built, name)[:PREVIEW] for name in (
        "labels", "original_labels", "source_indices", "start_indices")}
    return dataclasses.replace(built, images=built.images[:PREVIEW].half(), **kept)


def transfer(worlds) -> None:
    """The transfer table of each world on the first 1,000 test images (Fashion-MNIST's full test split from the
    Debian package; Shapes' generated one; CIFAR-10's embedded 972 exact-pixel images)."""
    shard = init_from_environment()  # under torchrun each attack's batches are shared; rank 0 writes the file
    try:
        for world in worlds:
            model_ids = TRANSFER_WORLDS[world]
            started = time.perf_counter()
            test_set = load_dataset(TRANSFER_TEST_SETS.get(world, world), "test")
            config = TransferConfig.for_dataset(world, n=TRANSFER_N)
            models = {model_id: (loaded.model, loaded.card.training["recipe"])
                      for model_id in model_ids for loaded in [load_model_and_card(model_id)]}
            table = transfer_table(models, test_set, config,
                                   progress=_progress(f"transfer {world}") if shard.is_main else None)
            if shard.is_main:
                _save("transfer", world, dataclasses.asdict(config), table.to_dict(), started)
    finally:
        shutdown()


def imbalance() -> None:
    """The imbalance study on Fashion-MNIST's training split, scored on its full test split, with the added images
    each augmentation made (a few per minority class, seed 0)."""
    started = time.perf_counter()
    config = ImbalanceConfig(**IMBALANCE)
    report = run_imbalance_study(load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test"), config,
                                 progress=_progress("imbalance"))
    _save("imbalance", "fashion-mnist", IMBALANCE, {**report.to_dict(), "samples": report.samples}, started)


def zoo(world: str) -> None:
    """A world's zoo on its embedded test subset (Fashion-MNIST: the first 1,000 images at L-inf 0.1; CIFAR-10: the
    first 500 at 8/255); the pseudo-margin learns from 500 training images. Under torchrun the input margins are
    sharded and rank 0 writes the file."""
    test_name, (train_name, train_root), config = ZOO_WORLDS[world]
    shard = init_from_environment()
    try:
        started = time.perf_counter()
        models = {model_id: (loaded.model, loaded.card)
                  for model_id in ZOO_MODELS[world] for loaded in [load_model_and_card(model_id)]}
        try:
            train_set = load_dataset(train_name, "train", root=train_root)
        except SiaError:
            train_set = None  # the pseudo-margin learns from the test images after the first n instead
        report = zoo_study(models, load_dataset(test_name), train_set, config,
                           progress=_progress(f"zoo {world}") if shard.is_main else None)
        if shard.is_main:
            _save("zoo", world, dataclasses.asdict(config), report.to_dict(), started)
    finally:
        shutdown()


def _progress(label: str):
    return lambda done, total, info: print(f"[{label}] {done}/{total} {info}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lenses", nargs="*", metavar="LENS",
                        help=f"only these lenses' results ({', '.join(LENSES)}); none = all")
    lenses = parser.parse_args().lenses
    if unknown := [lens for lens in lenses if lens not in LENSES]:  # choices= refuses an empty list with nargs="*"
        parser.error(f"unknown lens {', '.join(unknown)}; choose from {', '.join(LENSES)}")
    main(tuple(lenses))
