"""Cards measured on load: a user's model has no card from training, so the app measures one (clean accuracy on
the first N images of the chosen dataset) and keeps it in a user folder, never in the repo, so the next start shows
it at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Optional

from sia_core.data.base import ImageDataset
from sia_core.data.imagenet import human_labelled
from sia_core.evaluation import evaluate
from sia_core.models.registry import LoadedModel, ModelCard
from sia_core.progress import ProgressCallback
from sia_core.validation import positive_int

MEASURED_N = 500
HOME_ENV = "SIA_EXPLORER_HOME"


def user_folder() -> Path:
    """Where SIA Explorer keeps a user's files: $SIA_EXPLORER_HOME, else ~/.cache/sia-explorer."""
    configured = os.environ.get(HOME_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "sia-explorer"


def _card_path(model_id: str, dataset_key: str, n: int, folder: Path) -> Path:
    # "human labels": cards measured before photos labelled by the model were left out are measured again
    key = hashlib.sha256(f"{model_id}|{dataset_key}|{n}|human labels".encode()).hexdigest()[:20]
    return folder / "measured-cards" / f"{key}.json"


def measured_card(loaded: LoadedModel, dataset: ImageDataset, dataset_key: str, *, n: int = MEASURED_N,
                  folder: Optional[Path] = None, progress: Optional[ProgressCallback] = None) -> ModelCard:
    """`loaded.card` with one evaluation, clean accuracy on the first `n` images of `dataset` (as the model's input),
    marked "measured": read from the user folder when this model (its id includes the weights' digest) was
    measured on this dataset before, else measured now and written there."""
    positive_int("n", n)
    path = _card_path(loaded.model.model_id, dataset_key, n, folder or user_folder())
    evaluation: Optional[dict[str, Any]] = None
    try:
        evaluation = json.loads(path.read_text())["evaluation"]
    except (OSError, ValueError, KeyError, TypeError):
        evaluation = None  # not measured yet, or an unreadable file: measure again
    if evaluation is None:
        # photos labelled by the model's own prediction would count as correct by construction: left out
        labelled = human_labelled(dataset)
        if len(labelled) == 0:
            return loaded.card  # no image carries a person's label: nothing to measure accuracy on
        report = evaluate(loaded.model, labelled, n=n, progress=progress)
        evaluation = {"test_set": dataset.name, "test_source": dataset.source, "n": report.n,
                      "clean_accuracy": round(report.clean_accuracy, 4), "robust_accuracy": None,
                      "measured": time.strftime("%Y-%m-%d %H:%M")}
        if len(labelled) < len(dataset):
            evaluation["note"] = (f"the {len(labelled):,} of {len(dataset):,} images of {dataset.name} with a human "
                                  "label (the others take the model's own prediction as their label)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # whole or not at all: two sessions measuring the same model at once each write their own file first
            written = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            written.write_text(json.dumps({"model": loaded.model.model_id, "dataset": dataset_key,
                                           "evaluation": evaluation}, indent=2) + "\n")
            os.replace(written, path)
        except OSError:
            pass  # a read-only home still gets the card, measured again next time
    return ModelCard(**{**loaded.card.__dict__, "evaluations": (evaluation,)})
