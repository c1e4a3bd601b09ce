"""Why does SIA augmentation lose the imbalance study? The shipped setting (Fashion-MNIST, ρ 100, n_max 1,000, 20
passes) with SIA's variants changed one knob at a time, beside the random-attribute control, over SEEDS seeds:

    .venv/bin/python scripts/imbalance_ablation.py 3   # -> assets/precomputed/imbalance-ablation-fashion-mnist.json
                                                       #    (about 7 min on one thread; the page and scorecard read it)

- "shipped": 5 SIA steps, pixel budget 4/255, variants made once half-way through training;
- "attributes-only": the same without the pixel term (is it the pixel noise?);
- "one-step": a single SIA step (are the variants too hard?);
- "one-step-attributes-only": the weakest, one step on the attributes alone (both knobs that helped, together).
The random-attribute control runs once per seed (it does not depend on SIA's knobs).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sia_core.resolve import test_split, training_split  # noqa: E402
from sia_core.robustify import ImbalanceConfig, run_imbalance_study  # noqa: E402
from sia_core.runtime import one_thread  # noqa: E402

SHIPPED = ImbalanceConfig(rho=100.0, n_max=1000, seeds=1, epochs=20, methods=("random-attributes", "sia"))
VARIANTS = {"shipped": {}, "attributes-only": {"sia_eps_linf": 0.0}, "one-step": {"sia_steps": 1},
            "one-step-attributes-only": {"sia_steps": 1, "sia_eps_linf": 0.0}}


def main() -> None:
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    with one_thread():  # as `precompute.py imbalance`: training's sums depend on the thread count
        rows = _rows(seeds)
    out = Path(__file__).resolve().parent.parent / "assets/precomputed/imbalance-ablation-fashion-mnist.json"
    out.write_text(json.dumps({"command": f"python scripts/imbalance_ablation.py {seeds}",
                               "created": time.strftime("%Y-%m-%d"), "config": dataclasses.asdict(SHIPPED),
                               "variants": VARIANTS, "rows": rows}, indent=1) + "\n")


def _rows(seeds: int) -> list[dict]:
    """One row per variant and method: the means over the seeds, and each seed's balanced accuracy."""
    train_set, test_set = training_split("fashion-mnist", required=True), test_split("fashion-mnist")
    rows = []
    for name, change in VARIANTS.items():
        methods = SHIPPED.methods if name == "shipped" else ("sia",)
        config = dataclasses.replace(SHIPPED, seeds=seeds, methods=methods, **change)
        started = time.perf_counter()
        report = run_imbalance_study(train_set, test_set, config)
        for row in report.summary():
            rows.append({"variant": name, "change": change, "method": row.method, "seeds": seeds,
                         "balanced_accuracy": row.balanced_accuracy_mean, "minority_accuracy": row.minority_accuracy_mean,
                         "balanced_accuracy_per_seed": [run.balanced_accuracy for run in report.runs
                                                        if run.method == row.method],
                         "per_class_accuracy": list(row.per_class_accuracy_mean)})
        print(f"{name}: {time.perf_counter() - started:.0f} s " + ", ".join(
            f"{row.method} {row.balanced_accuracy_mean:.3f}" for row in report.summary()), file=sys.stderr, flush=True)
    return rows


if __name__ == "__main__":
    main()
