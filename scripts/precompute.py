"""Precompute what each page shows the moment it opens, for the shipped Fashion-MNIST models on the embedded
subset, with the pages' default settings; the pages label it "precomputed by <command> on <date>" and recompute
live on a click. Re-run after retraining a model:

    .venv/bin/python scripts/precompute.py            # writes assets/precomputed/*.json.gz
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sia_core.data.catalog import load_dataset  # noqa: E402
from sia_core.diagnosis import DiagnosisConfig, diagnose  # noqa: E402
from sia_core.margins import InputMarginEstimator, margin_study  # noqa: E402
from sia_core.models.registry import load_model  # noqa: E402
from sia_core.paths import PRECOMPUTED_DIR  # noqa: E402
from sia_core.regions.neutralization import NeutralizationConfig, neutralization_study  # noqa: E402
from sia_core.results_io import save_results  # noqa: E402
from sia_core.semantics import applicable_attributes  # noqa: E402

COMMAND = "python scripts/precompute.py"
DATASET = "fashion-mnist-subset"
DATASET_KEY = f"{DATASET}|None|None"  # the sidebar's key for the embedded subset
MODELS = ("fmnist-standard", "fmnist-robust")
MARGINS_N, MARGINS_NORM = 300, "linf"  # the margins page's defaults


def _save(kind: str, model_id: str, config, result, started: float) -> None:
    save_results(PRECOMPUTED_DIR / f"{kind}-{model_id}.json.gz", {
        "kind": kind, "model": model_id, "dataset_key": DATASET_KEY, "config": config, "result": result,
        "command": COMMAND, "created": time.strftime("%Y-%m-%d"), "seconds": round(time.perf_counter() - started, 1)})
    print(f"{kind} {model_id}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def main() -> None:
    dataset = load_dataset(DATASET)
    for model_id in MODELS:
        model = load_model(model_id)
        started = time.perf_counter()
        # the diagnosis page's defaults: N 256, 2/255, 30 steps, every attribute that applies, seed 0
        config = DiagnosisConfig(n=256, eps_img=2.0 / 255, steps=30, seed=0,
                                 attributes=tuple(a.name for a in applicable_attributes(model.input_shape[0])))
        report = diagnose(model, dataset, config)
        _save("diagnosis", model_id, config, dataclasses.replace(report, joint=None), started)

        started = time.perf_counter()
        config = NeutralizationConfig(n=256, n_fit=256, fraction=0.2, eps=8.0 / 255, fill="zero")
        _save("regions", model_id, config, neutralization_study(model, dataset, config), started)

        started = time.perf_counter()
        study = margin_study(model, dataset.images[:MARGINS_N], dataset.labels[:MARGINS_N], norm=MARGINS_NORM,
                             estimator=InputMarginEstimator(norm=MARGINS_NORM), dataset=dataset.name)
        _save("margins", model_id, {"n": MARGINS_N, "norm": MARGINS_NORM}, study, started)


if __name__ == "__main__":
    main()
