"""The files both runs write to `model/` besides the model itself: features.json, evaluation.json,
profile.json and smoke.json (containers/train/CONTRACT.md, Outputs).

smoke.json holds the first test rows as a client would send them (JSON scalars in feature order: numbers as
floats, categoricals as their text, missing as null) and the model's scores for exactly those rows, so the
serving container can check at start that the model it loaded still answers as the trainer's did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from headrace.encoding import model_input
from headrace.profile import FeatureInfo, build_profile, category_values, numeric_values
from trainer.data import Encoding

SMOKE_FILE: Final = "smoke.json"
SMOKE_ROWS: Final = 20


def write_json(path: Path, document: Any) -> None:
    # allow_nan=False: a NaN would make the file invalid JSON for every reader downstream.
    path.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n", encoding="utf-8")


def write_profile(model_dir: Path, encoding: Encoding, train: pd.DataFrame, seed: int) -> None:
    info = FeatureInfo(features=encoding.features, categorical=encoding.categorical)
    profile = build_profile(train, info, seed=seed)
    (model_dir / "profile.json").write_text(profile.model_dump_json(), encoding="utf-8")


def _cells(values: pd.Series[Any], categorical: bool) -> list[Any]:
    if categorical:
        return [None if pd.isna(v) else str(v) for v in category_values(values)]
    return [None if np.isnan(v) else float(v) for v in numeric_values(values)]


def smoke_rows(test: pd.DataFrame, encoding: Encoding) -> list[list[Any]]:
    """The first SMOKE_ROWS test rows as request cells, in feature order."""
    head = test.iloc[:SMOKE_ROWS]
    columns = [_cells(head[name], name in encoding.categorical) for name in encoding.features]
    return [list(row) for row in zip(*columns, strict=True)]


def smoke_input(rows: list[list[Any]], encoding: Encoding) -> pd.DataFrame:
    """The model's input for smoke rows, read back from their cells as a channel's rows are."""
    frame = pd.DataFrame(rows, columns=encoding.features, dtype=object)
    return model_input(frame, encoding.features, encoding.categorical)


def write_smoke(model_dir: Path, rows: list[list[Any]], scores: npt.NDArray[Any]) -> None:
    values = np.asarray(scores, dtype=np.float64)
    write_json(model_dir / SMOKE_FILE, {"rows": rows, "scores": values.tolist()})
