"""Results saved to disk and read back without pickle: engine result dataclasses as gzipped JSON, tensors as
base64 `.npy` bytes (numpy's own format, read with allow_pickle=False).

Only the result types listed in `RESULT_TYPES` are rebuilt; a file naming anything else is refused, so reading a
results file can never import or run code.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import io
import json
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from sia_core.diagnosis import DiagnosisConfig, DiagnosisReport
from sia_core.errors import DataError
from sia_core.evaluation import EvaluationConfig, EvaluationStudy
from sia_core.features import (ConstructedSet, ConstructionConfig, FeatureSetPlan, FeaturesBaseline,
                               FeaturesStudyConfig, FeaturesStudyReport, FeatureTrainingConfig, FeatureTrainingResult,
                               FeatureTransferConfig, FeatureTransferReport, TransferPoint)
from sia_core.margins import (InputMargins, MarginScores, MarginsConfig, MarginsReport, MarginStudy, MarginSummary,
                              PseudoMarginResult, PseudoMarginStudy, ZooConfig, ZooEntry, ZooReport)
from sia_core.regions.neutralization import FillComparison, NeutralizationConfig, NeutralizationRow, RegionsReport
from sia_core.robustify import (ImbalanceConfig, ImbalanceReport, MethodRun, MethodSummary, TransferCell,
                                TransferConfig, TransferRow, TransferTable)


@dataclass(frozen=True)
class SavedResult:
    """A study's report as `scripts/precompute.py` (or `zoo --out`) saved it: what it is about, the settings a page
    matches against before showing it, the command that wrote it, when, and how long it took."""

    kind: str
    model: str          # the model id, or the world, the result is about
    dataset_key: str    # the app's key of the data it ran on
    config: Any         # the study's config (a config type, or the page's settings as a dict)
    result: Any         # one of the report types below
    command: str
    created: str
    seconds: Optional[float] = None
    migrated_by: Optional[str] = None  # set when an older file's numbers were carried into this format unchanged


# every type a results file may hold, registered once: the studies' configs and reports and their parts
RESULT_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    SavedResult, DiagnosisConfig, DiagnosisReport, NeutralizationConfig, NeutralizationRow, RegionsReport, FillComparison,
    MarginsConfig, MarginsReport, MarginStudy, MarginSummary, MarginScores, InputMargins, PseudoMarginStudy,
    PseudoMarginResult, ZooConfig, ZooEntry, ZooReport, ConstructionConfig, ConstructedSet, FeatureTrainingConfig,
    FeatureTrainingResult, FeatureSetPlan, FeaturesStudyConfig, FeaturesBaseline, FeaturesStudyReport,
    FeatureTransferConfig, FeatureTransferReport, TransferPoint, TransferConfig, TransferCell, TransferRow,
    TransferTable, ImbalanceConfig, MethodRun, MethodSummary, ImbalanceReport, EvaluationConfig, EvaluationStudy)}


def encode(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        buffer = io.BytesIO()
        np.save(buffer, value.detach().cpu().numpy(), allow_pickle=False)
        return {"__tensor__": base64.b64encode(buffer.getvalue()).decode("ascii")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if type(value).__name__ not in RESULT_TYPES:
            raise TypeError(f"{type(value).__name__} is not a result type that can be saved")
        return {"__result__": type(value).__name__,
                "fields": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(item) for item in value]}
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {"__dict__": [[encode(key), encode(item)] for key, item in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot save a {type(value).__name__}")


def decode(data: Any) -> Any:
    if isinstance(data, list):
        return [decode(item) for item in data]
    if not isinstance(data, dict):
        return data
    if "__tensor__" in data:
        array = np.load(io.BytesIO(base64.b64decode(data["__tensor__"])), allow_pickle=False)
        return torch.from_numpy(np.ascontiguousarray(array))
    if "__tuple__" in data:
        return tuple(decode(item) for item in data["__tuple__"])
    if "__dict__" in data:
        return {_hashable(decode(key)): decode(item) for key, item in data["__dict__"]}
    if "__result__" in data:
        cls = RESULT_TYPES.get(data["__result__"])
        if cls is None:
            raise DataError(f"A results file names an unknown type {data['__result__']!r}; refusing it.")
        try:
            return cls(**{name: decode(item) for name, item in data["fields"].items()})
        except TypeError as error:  # a field this version does not have, or lacks one it needs
            raise DataError(f"A results file's {cls.__name__} does not match this version ({error}).") from error
    raise DataError("A results file holds an object this version cannot read.")


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def save_result(path: Path, saved: SavedResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump(encode(saved), handle)


def load_result(path: Path) -> SavedResult:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"Could not read the results file {path.name}: {error}") from error
    saved = decode(data)
    if not isinstance(saved, SavedResult):
        raise DataError(f"The results file {path.name} holds no saved result of this version.")
    return saved
