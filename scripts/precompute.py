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
    .venv/bin/python scripts/precompute.py imagenet            # the ImageNet world's diagnosis and margins
    .venv/bin/python scripts/precompute.py keypoints           # the keypoint worlds' diagnosis pages
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sia_core.claims import WorldResults, scorecard  # noqa: E402
from sia_core.diagnosis import WEIGHTED_DIAGNOSIS, DiagnosisConfig, diagnose  # noqa: E402
from sia_core.distributed import init_from_environment, shutdown  # noqa: E402
from sia_core.errors import SiaError  # noqa: E402
from sia_core.features import (KINDS, PAPER_CIFAR10, FeatureSetPlan, FeaturesBaseline, FeaturesStudyConfig,  # noqa: E402
                               FeaturesStudyReport, FeatureTrainingConfig, features_study)
from sia_core.margins import (PAPER_ZOO, ZOO_MODELS, InputMarginEstimator, ZooConfig, ZooEntry, ZooReport,  # noqa: E402
                              margin_study, zoo_study)
from sia_core.paths import PRECOMPUTED_DIR  # noqa: E402
from sia_core.regions.fills import FILLS  # noqa: E402
from sia_core.regions.neutralization import (FillComparison, NeutralizationConfig, NeutralizationRow,  # noqa: E402
                                            fill_comparison, neutralization_study)
from sia_core.resolve import resolve, resolve_group, test_split, training_split  # noqa: E402
from sia_core.results_io import SavedResult, decode, load_result, save_result  # noqa: E402
from sia_core.robustify import (ImbalanceConfig, ImbalanceReport, MethodRun, TransferCell, TransferConfig,  # noqa: E402
                                TransferRow, TransferTable, run_imbalance_study, transfer_table)
from sia_core.runtime import keep_freed_memory_for_reuse, one_thread  # noqa: E402
from sia_core.semantics import applicable_attributes  # noqa: E402

COMMAND = "python scripts/precompute.py"
DATASET = "fashion-mnist-subset"
DATASET_KEY = f"{DATASET}|None|None"  # the sidebar's key for the embedded subset
MODELS = ("fmnist-standard", "fmnist-robust")
MARGINS_N, MARGINS_NORM = 300, "linf"  # the margins page's defaults
# the features page's defaults: D̂_det from the standard model and D̂_R from the robust one, N 1,000 with 50 steps (L2
# radius 2.0), a fresh tiny-cnn trained 5 epochs on each, attacked on 500 test images at L2 0.5
FEATURES = FeaturesStudyConfig(
    sets=(FeatureSetPlan("fmnist-standard", KINDS.build("d_det", n=1000, steps=50, eps_l2=2.0)),
          FeatureSetPlan("fmnist-robust", KINDS.build("d_r", n=1000, steps=50, eps_l2=2.0))),
    training=FeatureTrainingConfig(epochs=5, eval_eps_l2=0.5, eval_n=500))
# the robustify page: one transfer table per world (rows: standard, PGD-AT, SIA-AT, the random-attribute control),
# 1,000 test images per cell; the imbalance study at ρ = 100 on Fashion-MNIST, 3 seeds
TRANSFER_WORLDS = {"fashion-mnist": ("fmnist-standard", "fmnist-robust", "fmnist-sia-at", "fmnist-random-attributes"),
                   "shapes": ("shapes-standard", "shapes-robust", "shapes-sia-at", "shapes-random-attributes"),
                   "cifar10": ("cifar10-standard", "cifar10-robust", "cifar10-sia-at", "cifar10-random-attributes")}
TRANSFER_TEST_SETS = {"cifar10": "cifar10-subset"}  # the embedded exact-pixel images (else the world's test split)
TRANSFER_N = 1000
IMBALANCE = {"rho": 100.0, "n_max": 1000, "seeds": 3, "epochs": 20}
# "transfer" runs every world; "transfer-<world>" one of them
# each zoo world: its embedded test set, its training split (the pseudo-margin's held-out images) and its settings;
# CIFAR-10 at the paper's L-inf 8/255, on half the embedded subset (a bigger network: the margins cost more)
CIFAR10_JPEG = os.environ.get("SIA_CIFAR10_DIR") or str(Path(__file__).resolve().parents[2] / "shared/data/cifar10-jpg")
ZOO_WORLDS = {
    "fashion-mnist": ("fashion-mnist-subset", "fashion-mnist",
                      ZooConfig(n=1000, eps=0.1, subset_sizes=(25, 50, 100, 200, 500), repeats=10, pseudo_fit_n=500)),
    "cifar10": ("cifar10-subset", f"cifar10:{CIFAR10_JPEG}",
                ZooConfig(n=500, eps=8 / 255, subset_sizes=(25, 50, 100, 200), repeats=10, pseudo_fit_n=500)),
}
# the CIFAR-10 world: the same pages on the embedded CIFAR-10 test subset, at the papers' budgets (ε) where a paper
# has one; the rest (N, steps, architecture, epochs) is our choice for a CPU. Features (Ilyas et al. 2019): D̂_det /
# D̂_rand by targeted L2 PGD at eps 0.5 (100 steps of 0.1, the paper's) from the standard model, D̂_R by 200
# normalized steps of 0.1 (the paper: 1,000) from the L2 adversarially trained one (cifar10-robust-l2, as the paper's
# source; before 2026-12-06 the L-inf FGSM-RS cifar10-robust), on N 2,000 training images; a fresh resnet9-slim
# trains 20 epochs on each (and, as the scale's baseline "D", on the same N original images) and is scored on the
# embedded exact-pixel test images at L2 0.25 and 0.5 (Table 7's columns). The regions study runs every fill on the
# standard model. The summary puts each study beside the papers' numbers.
CIFAR10_DATASET = "cifar10-subset"
CIFAR10_MODELS = ("cifar10-standard", "cifar10-robust")
CIFAR10_TRAIN = ZOO_WORLDS["cifar10"][1]
CIFAR10_FEATURES = FeaturesStudyConfig(
    sets=(FeatureSetPlan("cifar10-standard", KINDS.build("d_det", n=2000, steps=100, eps_l2=0.5)),
          FeatureSetPlan("cifar10-standard", KINDS.build("d_rand", n=2000, steps=100, eps_l2=0.5)),
          FeatureSetPlan("cifar10-robust-l2", KINDS.build("d_r", n=2000, steps=200))),
    training=FeatureTrainingConfig(architecture="resnet9-slim", epochs=20, eval_eps_l2=0.25, eval_n=500),
    extra_eval_eps_l2=0.5, baseline=True)  # Table 7's second robust column; the scale's own "D"
CIFAR10_MARGINS_EPS = 8 / 255  # the margins paper's CIFAR-10 budget
# the ImageNet world: efficientnet-lite0 on the embedded gallery (8 photos at 224 px), the diagnosis and margins
# pages at their defaults (every photo the model gets right: the unlabelled ones by construction)
IMAGENET_DATASET, IMAGENET_MODELS = "imagenet-photos", ("efficientnet-lite0",)
CIFAR10_LENSES = ("cifar10-diagnosis", "cifar10-margins", "cifar10-regions", "cifar10-features", "cifar10-summary")
LENSES = ("features", "diagnosis", "regions", "margins", "transfer", *(f"transfer-{w}" for w in TRANSFER_WORLDS),
          "imbalance", "zoo", *(f"zoo-{w}" for w in ZOO_WORLDS), "cifar10", *CIFAR10_LENSES, "claims",
          "claims-fashion-mnist", "claims-cifar10", "imagenet", "keypoints")
# the keypoint worlds' diagnosis pages at their defaults, keyed as the app keys them (its Shapes test set holds the
# first 2,000 images; the face photos' reference points are O-Net's own)
KEYPOINT_PAGES = (("shapes-keypoints", 2000, ("shapes-keypoints", "shapes-keypoints-spurious-hue")),
                  ("face-photos", None, ("mtcnn-onet",)))


def _save(kind: str, model_id: str, config, result, started: float, dataset_key: str = DATASET_KEY) -> None:
    save_result(PRECOMPUTED_DIR / f"{kind}-{model_id}.json.gz", SavedResult(
        kind=kind, model=model_id, dataset_key=dataset_key, config=config, result=result, command=COMMAND,
        created=time.strftime("%Y-%m-%d"), seconds=round(time.perf_counter() - started, 1)))
    print(f"{kind} {model_id}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def main(only: tuple[str, ...]) -> None:
    """Every lens's results, or only the lenses named (the others' files are left as they are)."""
    keep_freed_memory_for_reuse()  # fewer page faults per training and attack step
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
    if wanted("features"):
        features(DATASET, DATASET_KEY, FEATURES, "fashion-mnist")
    if wanted("imagenet"):
        page_results(IMAGENET_DATASET, f"{IMAGENET_DATASET}|None|None", IMAGENET_MODELS, ["diagnosis", "margins"])
    page_results(DATASET, DATASET_KEY, MODELS, [lens for lens in ("diagnosis", "regions", "margins") if wanted(lens)])
    if wanted("keypoints"):
        keypoint_pages()
    for world in CLAIM_WORLDS:  # last: the scorecards read the files written above
        if wanted("claims") or wanted(f"claims-{world}"):
            claims(world)


def keypoint_pages() -> None:
    """The diagnosis page's result at its defaults for each keypoint model, on the data the app gives it."""
    for dataset_spec, n, model_ids in KEYPOINT_PAGES:
        for model_id in model_ids:
            started = time.perf_counter()
            subject = resolve(model_id, dataset_spec, n=n)
            dataset_key = f"{dataset_spec}|None|{n}" + ("" if subject.test_set.keypoint_reference == "ground truth"
                                                        else f"|points:{model_id}")
            config = DiagnosisConfig(n=256, eps_linf=2.0 / 255, steps=30, seed=0, attributes=tuple(
                a.name for a in applicable_attributes(subject.model.input_shape[0])))
            report = diagnose(subject.model, subject.test_set, config)
            _save("diagnosis", model_id, config, dataclasses.replace(report, joint=None), started, dataset_key)


def page_results(dataset_spec: str, dataset_key: str, model_ids, lenses,
                 fills: dict[str, tuple[str, ...]] | None = None) -> None:
    """The diagnosis, regions and margins pages' results at their default settings, for each model; `fills` names
    the models whose regions study also runs with every other fill (saved together as "regions-fills")."""
    def save_here(kind, model_id, config, result, started):
        _save(kind, model_id, config, result, started, dataset_key)

    for model_id in model_ids if lenses else ():
        subject = resolve(model_id, dataset_spec)
        model, dataset = subject.model, subject.test_set
        if "diagnosis" in lenses:
            started = time.perf_counter()
            # the diagnosis page's defaults: N 256, 2/255, 30 steps, every attribute that applies, seed 0
            config = DiagnosisConfig(n=256, eps_linf=2.0 / 255, steps=30, seed=0,
                                     attributes=tuple(a.name for a in applicable_attributes(model.input_shape[0])))
            report = diagnose(model, dataset, config)
            save_here("diagnosis", model_id, config, dataclasses.replace(report, joint=None), started)
            if model_id.endswith("-standard"):  # the same with the joint attack's weights above zero
                started = time.perf_counter()
                weighted = dataclasses.replace(config, **WEIGHTED_DIAGNOSIS)
                report = diagnose(model, dataset, weighted)
                save_here("diagnosis-weighted", model_id, weighted, dataclasses.replace(report, joint=None), started)

        if "regions" in lenses:
            started = time.perf_counter()
            config = NeutralizationConfig(n=256, n_fit=256, fraction=0.2, eps_linf=8.0 / 255, fill="zero")
            report = neutralization_study(model, dataset, config)
            save_here("regions", model_id, config, report, started)
            if model_id in (fills or {}):
                comparison = fill_comparison(model, dataset, config, (config.fill, *fills[model_id]), done=report)
                save_here("regions-fills", model_id, config, comparison, started)

        if "margins" in lenses:
            started = time.perf_counter()
            study = margin_study(model, dataset.images[:MARGINS_N], dataset.labels[:MARGINS_N], norm=MARGINS_NORM,
                                 estimator=InputMarginEstimator(norm=MARGINS_NORM), dataset=dataset.name)
            # without the images at the margin (the page finds the one it shows again): 3 KB per CIFAR-10 image
            save_here("margins", model_id, {"n": MARGINS_N, "norm": MARGINS_NORM}, study.without_adversarial_images(),
                      started)


def cifar10_world(lenses: list[str]) -> None:
    """The CIFAR-10 world's page results on the embedded test subset, the features study on the training split,
    and the summary beside the papers' numbers (`lenses`: diagnosis, margins, regions, features, summary)."""
    dataset_key = f"{CIFAR10_DATASET}|None|None"
    page_results(CIFAR10_DATASET, dataset_key, CIFAR10_MODELS, lenses,
                 fills={"cifar10-standard": tuple(f for f in FILLS.names() if f != "zero")})
    if "features" in lenses:
        features(CIFAR10_DATASET, dataset_key, CIFAR10_FEATURES, CIFAR10_TRAIN)
    if "summary" in lenses:
        cifar10_summary(dataset_key)


def features(dataset_spec: str, dataset_key: str, config: FeaturesStudyConfig, train_spec: str) -> None:
    """The features study (`sia_core.features.features_study`) on the world's training split, scored on its
    embedded test subset; the file keeps the first images of each set for the page's grid."""
    first, group = resolve_group(tuple(dict.fromkeys(config.sources.values())), dataset_spec)
    train_set = training_split(train_spec, image_shape=first.model.input_shape)
    if train_set is None:
        print(f"features skipped: no training split for {train_spec}", file=sys.stderr)
        return
    started = time.perf_counter()
    with one_thread():
        report = features_study({loaded.card.id: loaded.model for loaded in group}, train_set, first.test_set, config,
                                progress=_progress("features"))
    _save("features", group[0].card.id, config, report, started, dataset_key)


def cifar10_summary(dataset_key: str) -> None:
    """assets/precomputed/cifar10-study.json: the four studies' headline numbers from the files above, each beside
    the paper's (labelled "paper"), and the models' cards; a file that is missing is reported as missing."""
    def stored(kind: str, model_id: str) -> SavedResult | None:
        found = PRECOMPUTED_DIR / f"{kind}-{model_id}.json.gz"
        if not found.is_file():
            return None
        saved = load_result(found)
        return saved if saved.dataset_key == dataset_key else None

    summary: dict = {"command": "bash scripts/cifar10_study.sh", "created": time.strftime("%Y-%m-%d"),
                     "dataset": CIFAR10_DATASET, "models": {}, "features": None, "margins": None, "regions": None,
                     "diagnosis": None}
    for model_id in (*CIFAR10_MODELS, "cifar10-sia-at"):
        try:
            summary["models"][model_id] = resolve(model_id, CIFAR10_DATASET, n=1).card.evaluations
        except SiaError:
            summary["models"][model_id] = None  # not trained (yet)
    if (features_run := stored("features", "cifar10-standard")) is not None:
        report = features_run.result
        baseline = report.baseline
        rows = [] if baseline is None else [{
            "set": "d", "n_train": baseline.n_train, "source": None, "metric": {},
            "test_accuracy": baseline.test_accuracy, "robust_accuracy_l2_0.25": baseline.robust_accuracy,
            "robust_accuracy_l2_0.5": baseline.robust_accuracy_extra, "paper": PAPER_CIFAR10["d"]}]
        for kind, training in report.training.items():
            rows.append({"set": kind, "n_train": training.n_train, "source": report.config.sources[kind],
                         "metric": report.previews[kind].metric, "test_accuracy": training.test_accuracy,
                         "robust_accuracy_l2_0.25": training.robust_accuracy,
                         "robust_accuracy_l2_0.5": report.robust_accuracy_extra.get(kind),
                         "relabelled_test_accuracy": training.relabelled_test_accuracy, "paper": PAPER_CIFAR10[kind]})
        summary["features"] = {"config": dataclasses.asdict(report.config), "rows": rows, "seconds": report.seconds}
    path = PRECOMPUTED_DIR / "cifar10-study.json"
    if (at_scale := _at_scale(_read_json(path))) is not None:
        # the study at scale (scripts/features_at_scale.py) is the headline; the page's small study stays beside it
        summary["features_page_study"], summary["features"] = summary["features"], at_scale
    margins = {model_id: dataclasses.asdict(found.result.summary(eps=CIFAR10_MARGINS_EPS))
               for model_id in CIFAR10_MODELS for found in [stored("margins", model_id)] if found is not None}
    zoo_file = PRECOMPUTED_DIR / "zoo-cifar10.json.gz"
    zoo_entries = {}
    if zoo_file.is_file():  # the zoo's bigger sample (500 images) with the pseudo-margin, at the same eps
        zoo_report = load_result(zoo_file).result
        zoo_entries = {entry.model_id: {key: value for key, value in entry.summary().items() if key != "estimates"}
                       | {"n": zoo_report.config.n} for entry in zoo_report.entries}
    if margins or zoo_entries:
        summary["margins"] = {"eps": CIFAR10_MARGINS_EPS, "norm": MARGINS_NORM, "ours": margins,
                              "zoo": zoo_entries, "paper": list(PAPER_ZOO)}
    if (fills := stored("regions-fills", "cifar10-standard")) is not None:
        summary["regions"] = {"model": "cifar10-standard", "config": dataclasses.asdict(fills.config),
                              "fills": {fill: {"neutralization": [row.to_dict() for row in rows]}
                                        for fill, rows in fills.result.rows.items()}}
    diagnoses = {model_id: found.result.to_dict()
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


def transfer(worlds) -> None:
    """The transfer table of each world on the first 1,000 test images (Fashion-MNIST's full test split from the
    Debian package; Shapes' generated one; CIFAR-10's embedded 972 exact-pixel images)."""
    shard = init_from_environment()  # under torchrun each attack's batches are shared; rank 0 writes the file
    try:
        for world in worlds:
            started = time.perf_counter()
            first, group = resolve_group(TRANSFER_WORLDS[world], TRANSFER_TEST_SETS.get(world, world))
            config = TransferConfig.for_dataset(world, n=TRANSFER_N)
            models = {loaded.card.id: (loaded.model, loaded.card.training["recipe"]) for loaded in group}
            table = transfer_table(models, first.test_set, config,
                                   progress=_progress(f"transfer {world}") if shard.is_main else None)
            if shard.is_main:
                _save("transfer", world, config, table, started, f"{TRANSFER_TEST_SETS.get(world, world)}|None|None")
    finally:
        shutdown()


def imbalance() -> None:
    """The imbalance study on Fashion-MNIST's training split, scored on its full test split, with the added images
    each augmentation made (a few per minority class, seed 0)."""
    started = time.perf_counter()
    config = ImbalanceConfig(**IMBALANCE)
    with one_thread():
        report = run_imbalance_study(training_split("fashion-mnist", required=True), test_split("fashion-mnist"),
                                     config, progress=_progress("imbalance"))
    _save("imbalance", "fashion-mnist", config, report, started, "fashion-mnist|None|None")


def zoo(world: str) -> None:
    """A world's zoo on its embedded test subset (Fashion-MNIST: the first 1,000 images at L-inf 0.1; CIFAR-10: the
    first 500 at 8/255); the pseudo-margin learns from 500 training images (without a training split at hand, from
    the test images after the first n). Under torchrun the input margins are sharded and rank 0 writes the file."""
    test_name, train_spec, config = ZOO_WORLDS[world]
    shard = init_from_environment()
    try:
        started = time.perf_counter()
        first, group = resolve_group(ZOO_MODELS[world], test_name)
        train_set = training_split(train_spec, image_shape=first.model.input_shape)
        report = zoo_study({loaded.card.id: (loaded.model, loaded.card) for loaded in group}, first.test_set,
                           train_set, config, progress=_progress(f"zoo {world}") if shard.is_main else None)
        if shard.is_main:
            _save("zoo", world, config, report, started, f"{test_name}|None|None")
    finally:
        shutdown()


# each world's scorecard reads its shipped results: (standard model, robust model, test subset, transfer and
# imbalance files, zoo file, features file)
CLAIM_WORLDS = {
    "fashion-mnist": ("fmnist-standard", "fmnist-robust", "fashion-mnist-subset", "fashion-mnist", "fashion-mnist",
                      "fmnist-standard"),
    "cifar10": ("cifar10-standard", "cifar10-robust", "cifar10-subset", "cifar10", None, "cifar10-standard"),
}


def _at_scale(study: dict | None) -> dict | None:
    """The study file's `features` block when scripts/features_at_scale.py wrote it (it names its tier)."""
    block = (study or {}).get("features")
    return block if isinstance(block, dict) and "tier" in block else None


def _read_json(path: Path):
    """A shipped plain-JSON file (written by a script of its own), or None."""
    return json.loads(path.read_text()) if path.is_file() else None


def claims(world: str) -> None:
    """assets/precomputed/claims-<world>.json: every claim of `sia_core.claims.CLAIMS` measured on the world's
    shipped results, with its interval, control, the paper's number and the verdict."""
    standard, robust, test_name, transfer_world, imbalance_world, features_model = CLAIM_WORLDS[world]

    def shipped(kind: str, name: str | None):
        path = PRECOMPUTED_DIR / f"{kind}-{name}.json.gz"
        return load_result(path).result if name is not None and path.is_file() else None

    test_set = test_split(test_name)
    results = WorldResults(
        world=world, standard_model=standard, robust_model=robust, test_n=len(test_set),
        num_classes=test_set.num_classes,
        diagnosis={m: r for m in (standard, robust) if (r := shipped("diagnosis", m)) is not None},
        diagnosis_weighted={m: r for m in (standard,) if (r := shipped("diagnosis-weighted", m)) is not None},
        regions={m: r for m in (standard, robust) if (r := shipped("regions", m)) is not None},
        zoo=shipped("zoo", world), features=shipped("features", features_model),
        features_at_scale=_at_scale(_read_json(PRECOMPUTED_DIR / f"{world}-study.json")),
        transfer=shipped("transfer", transfer_world), imbalance=shipped("imbalance", imbalance_world),
        imbalance_ablation=(_read_json(PRECOMPUTED_DIR / f"imbalance-ablation-{imbalance_world}.json")
                            if imbalance_world else None))
    card = scorecard(results, command=f"{COMMAND} claims-{world}", created=time.strftime("%Y-%m-%d"))
    path = PRECOMPUTED_DIR / f"claims-{world}.json"
    path.write_text(json.dumps(_json_safe(card.to_json()), indent=1, allow_nan=False, ensure_ascii=False) + "\n")
    print(f"wrote {path}: " + ", ".join(f"{c.id} {c.verdict}" for c in card.claims), file=sys.stderr)


def migrate() -> None:
    """Carry the files written before the results were typed (plain dicts) into `SavedResult` with typed reports,
    every number unchanged; each migrated file keeps its command, date and seconds and records `migrated_by`. Files
    already typed are left alone."""
    def transfer_table_of(old: dict, _config: dict):
        rows = tuple(TransferRow(model=row["model"], recipe=row["recipe"], clean_accuracy=row["clean_accuracy"],
                                 cells={name: TransferCell(row[f"{name}_accuracy"], row[f"{name}_ssim"])
                                        for name in old["columns"]}) for row in old["rows"])
        table = TransferTable(dataset=old["dataset"], n=old["n"], config=TransferConfig(**old["config"]),
                              columns=tuple(old["columns"]), rows=rows)
        return table, table.config

    def imbalance_report_of(old: dict, _config: dict):
        config = ImbalanceConfig(**{**old["config"], "methods": tuple(old["config"]["methods"])})
        runs = tuple(MethodRun(**{**run, "per_class_accuracy": tuple(run["per_class_accuracy"])}) for run in old["runs"])
        return ImbalanceReport(dataset=old["dataset"], config=config, class_names=tuple(old["class_names"]),
                               counts=tuple(old["counts"]), minority_classes=tuple(old["minority_classes"]), runs=runs,
                               samples=old["samples"]), config

    def zoo_report_of(old: dict, _config: dict):
        config = ZooConfig(**{**old["config"], "subset_sizes": tuple(old["config"]["subset_sizes"])})
        entries = tuple(ZooEntry(**{**entry, "estimates": {int(size): list(values) for size, values in
                                                           entry["estimates"].items()}}) for entry in old["entries"])
        return ZooReport(dataset=old["dataset"], config=config, entries=entries), config

    def features_report_of(old: dict, config: dict):
        previews = dict(old["sets"])
        training = FeatureTrainingConfig(architecture=config.get("architecture", "tiny-cnn"), epochs=config["epochs"],
                                         eval_eps_l2=config["eval_eps"], eval_n=config["eval_n"])
        study = FeaturesStudyConfig(sets=tuple(FeatureSetPlan(built.source_model, built.config)
                                               for built in previews.values()), training=training,
                                    extra_eval_eps_l2=config.get("extra_eval_eps"), baseline="baseline" in old)
        baseline = old.get("baseline")
        return FeaturesStudyReport(
            config=study, previews=previews, counts=dict(old["counts"]), training=dict(old["training"]),
            robust_accuracy_extra=dict(old.get("robust_accuracy_extra", {})),
            baseline=None if baseline is None else FeaturesBaseline(**baseline),
            seconds=dict(old.get("seconds", {}))), study

    def fills_of(old: dict, config: dict):
        base = NeutralizationConfig(**{**config, "curve_fractions": tuple(config["curve_fractions"])})
        return FillComparison(config=base, rows={fill: tuple(NeutralizationRow(**row) for row in report["neutralization"])
                                                 for fill, report in old.items()}), base

    def unchanged(result, config):
        return result, config

    convert = {"transfer": transfer_table_of, "imbalance": imbalance_report_of, "zoo": zoo_report_of,
               "features": features_report_of, "regions-fills": fills_of}
    data_keys = {("transfer", world): f"{TRANSFER_TEST_SETS.get(world, world)}|None|None" for world in TRANSFER_WORLDS}
    data_keys |= {("zoo", world): f"{test_name}|None|None" for world, (test_name, _, _) in ZOO_WORLDS.items()}
    data_keys |= {("imbalance", "fashion-mnist"): "fashion-mnist|None|None"}
    for path in sorted(PRECOMPUTED_DIR.glob("*.json.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            raw = json.load(handle)
        renamed = _with_renamed_fields(raw)
        old = decode(renamed)
        if isinstance(old, SavedResult):
            if renamed != raw:
                save_result(path, dataclasses.replace(old, migrated_by="python scripts/precompute.py migrate"))
                print(f"renamed the budget fields of {path.name}", file=sys.stderr)
            continue
        result, config = convert.get(old["kind"], unchanged)(old["result"], old["config"])
        save_result(path, SavedResult(
            kind=old["kind"], model=old["model"], config=config, result=result, command=old["command"],
            dataset_key=data_keys.get((old["kind"], old["model"]), old["dataset_key"]), created=old["created"],
            seconds=old.get("seconds"), migrated_by="python scripts/precompute.py migrate"))
        print(f"migrated {path.name}", file=sys.stderr)


# budgets renamed to say their norm: type -> {old field: new field}
RENAMED_FIELDS = {"DiagnosisConfig": {"eps_img": "eps_linf"}, "DiagnosisReport": {"eps_img": "eps_linf"},
                  "NeutralizationConfig": {"eps": "eps_linf"}, "RegionsReport": {"eps": "eps_linf"},
                  "TransferConfig": {"linf_eps": "eps_linf", "l2_eps": "eps_l2", "sia_eps": "sia_eps_linf"},
                  "ImbalanceConfig": {"sia_eps": "sia_eps_linf"}, "ConstructionConfig": {"eps": "eps_l2"}}


def _with_renamed_fields(data):
    """A results file's raw JSON with the fields of `RENAMED_FIELDS` under their new names."""
    if isinstance(data, list):
        return [_with_renamed_fields(item) for item in data]
    if not isinstance(data, dict):
        return data
    if "__result__" in data:
        names = RENAMED_FIELDS.get(data["__result__"], {})
        return {"__result__": data["__result__"], "fields": {names.get(key, key): _with_renamed_fields(value)
                                                             for key, value in data["fields"].items()}}
    return {key: _with_renamed_fields(value) for key, value in data.items()}


def _progress(label: str):
    return lambda done, total, info: print(f"[{label}] {done}/{total} {info}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lenses", nargs="*", metavar="LENS",
                        help=f"only these lenses' results ({', '.join(LENSES)}); none = all; `migrate` "
                             "carries older files into the typed format")
    lenses = parser.parse_args().lenses
    if lenses == ["migrate"]:
        migrate()
        sys.exit(0)
    if unknown := [lens for lens in lenses if lens not in LENSES]:  # choices= refuses an empty list with nargs="*"
        parser.error(f"unknown lens {', '.join(unknown)}; choose from {', '.join(LENSES)}")
    main(tuple(lenses))
