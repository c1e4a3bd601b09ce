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
from typing import Any

import numpy as np
import torch

from sia_core.diagnosis import DiagnosisConfig, DiagnosisReport
from sia_core.errors import DataError
from sia_core.features.constructed import ConstructedSet, ConstructionConfig
from sia_core.features.training import FeatureTrainingResult
from sia_core.margins.input_margins import InputMargins
from sia_core.margins.scores import MarginScores
from sia_core.margins.study import MarginStudy
from sia_core.regions.neutralization import NeutralizationConfig, NeutralizationRow, RegionsReport

RESULT_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    DiagnosisConfig, DiagnosisReport, NeutralizationConfig, NeutralizationRow, RegionsReport, MarginStudy,
    MarginScores, InputMargins, ConstructionConfig, ConstructedSet, FeatureTrainingResult)}


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
        return cls(**{name: decode(item) for name, item in data["fields"].items()})
    raise DataError("A results file holds an object this version cannot read.")


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def save_results(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump(encode(payload), handle)


def load_results(path: Path) -> dict[str, Any]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"Could not read the results file {path.name}: {error}") from error
    return decode(data)
