"""Precompute what each page shows the moment it opens, for the shipped Fashion-MNIST models on the embedded
subset, with the pages' default settings; the pages label it "precomputed by <command> on <date>" and recompute
live on a click. Re-run after retraining a model:

    .venv/bin/python scripts/precompute.py            # writes assets/precomputed/*.json.gz
    .venv/bin/python scripts/precompute.py features   # the features page's results only
    .venv/bin/python scripts/precompute.py diagnosis  # any of the lenses in LENSES, alone or together
    .venv/bin/python scripts/precompute.py transfer imbalance  # the robustify page's two tables
    .venv/bin/python scripts/precompute.py transfer-shapes     # one world's transfer table
    .venv/bin/python scripts/precompute.py zoo                 # the margins page's zoos (FMNIST: about 25 min)
    .venv/bin/python scripts/precompute.py zoo-cifar10         # one world's zoo
    torchrun --nproc-per-node 2 scripts/precompute.py zoo      # the same, its images sharded over 2 processes
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sia_core.data.catalog import load_dataset  # noqa: E402
from sia_core.diagnosis import DiagnosisConfig, diagnose  # noqa: E402
from sia_core.distributed import init_from_environment, shutdown  # noqa: E402
from sia_core.errors import SiaError  # noqa: E402
from sia_core.features import KINDS, build_constructed_set, train_on_constructed  # noqa: E402
from sia_core.margins import ZOO_MODELS, InputMarginEstimator, ZooConfig, margin_study, zoo_study  # noqa: E402
from sia_core.models.registry import load_model_and_card  # noqa: E402
from sia_core.models.registry import load_model  # noqa: E402
from sia_core.paths import PRECOMPUTED_DIR  # noqa: E402
from sia_core.regions.neutralization import NeutralizationConfig, neutralization_study  # noqa: E402
from sia_core.results_io import save_results  # noqa: E402
from sia_core.robustify import ImbalanceConfig, TransferConfig, run_imbalance_study, transfer_table  # noqa: E402
from sia_core.semantics import applicable_attributes  # noqa: E402

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
                   "shapes": ("shapes-standard", "shapes-robust", "shapes-sia-at", "shapes-random-attributes")}
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
LENSES = ("features", "diagnosis", "regions", "margins", "transfer", *(f"transfer-{w}" for w in TRANSFER_WORLDS),
          "imbalance", "zoo", *(f"zoo-{w}" for w in ZOO_WORLDS))


def _save(kind: str, model_id: str, config, result, started: float) -> None:
    save_results(PRECOMPUTED_DIR / f"{kind}-{model_id}.json.gz", {
        "kind": kind, "model": model_id, "dataset_key": DATASET_KEY, "config": config, "result": result,
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
    dataset = load_dataset(DATASET)
    if wanted("features"):
        features(dataset)
    if not any(wanted(lens) for lens in ("diagnosis", "regions", "margins")):
        return
    for model_id in MODELS:
        model = load_model(model_id)
        if wanted("diagnosis"):
            started = time.perf_counter()
            # the diagnosis page's defaults: N 256, 2/255, 30 steps, every attribute that applies, seed 0
            config = DiagnosisConfig(n=256, eps_img=2.0 / 255, steps=30, seed=0,
                                     attributes=tuple(a.name for a in applicable_attributes(model.input_shape[0])))
            report = diagnose(model, dataset, config)
            _save("diagnosis", model_id, config, dataclasses.replace(report, joint=None), started)

        if wanted("regions"):
            started = time.perf_counter()
            config = NeutralizationConfig(n=256, n_fit=256, fraction=0.2, eps=8.0 / 255, fill="zero")
            _save("regions", model_id, config, neutralization_study(model, dataset, config), started)

        if wanted("margins"):
            started = time.perf_counter()
            study = margin_study(model, dataset.images[:MARGINS_N], dataset.labels[:MARGINS_N], norm=MARGINS_NORM,
                                 estimator=InputMarginEstimator(norm=MARGINS_NORM), dataset=dataset.name)
            _save("margins", model_id, {"n": MARGINS_N, "norm": MARGINS_NORM}, study, started)


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
        sets[kind] = dataclasses.replace(built, **{name: getattr(built, name)[:PREVIEW] for name in (
            "images", "labels", "original_labels", "source_indices", "start_indices")})
        counts[kind] = len(built)
    _save("features", "fmnist-standard", {**FEATURE_BUILD, **FEATURE_TRAINING},
          {"sets": sets, "training": training, "counts": counts}, started)


def transfer(worlds) -> None:
    """The transfer table of each world on the first 1,000 test images (Fashion-MNIST's full test split from the
    Debian package; Shapes' generated one)."""
    for world in worlds:
        model_ids = TRANSFER_WORLDS[world]
        started = time.perf_counter()
        test_set = load_dataset(world, "test")
        config = TransferConfig.for_dataset(world, n=TRANSFER_N)
        models = {model_id: (loaded.model, loaded.card.training["recipe"])
                  for model_id in model_ids for loaded in [load_model_and_card(model_id)]}
        table = transfer_table(models, test_set, config, progress=_progress(f"transfer {world}"))
        _save("transfer", world, dataclasses.asdict(config), table.to_dict(), started)


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
