"""The model directory the trainer wrote (`model.json`, `features.json`), loaded once per process."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from headrace.encoding import FloatMatrix, RowEncoder

OPT_ML_ENV: Final = "HEADRACE_OPT_ML"
DEFAULT_ROOT: Final = Path("/opt/ml")
# The test hook: a features.json with "fault": "5xx" makes every invocation fail with 500 (rollback tests).
FAULT_5XX: Final = "5xx"


class ModelFault(RuntimeError):
    """The model cannot answer: a 5xx, never the caller's fault."""


def model_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get(OPT_ML_ENV) or DEFAULT_ROOT) / "model"


@dataclass(frozen=True)
class Model:
    booster: xgb.Booster
    features: tuple[str, ...]
    categorical: dict[str, list[str]]
    objective: str
    encoder: RowEncoder
    fault: str | None = None

    @classmethod
    def load(cls, directory: Path) -> Model:
        described = json.loads((directory / "features.json").read_text(encoding="utf-8"))
        features = [str(name) for name in described["features"]]
        categorical = {str(k): [str(c) for c in v] for k, v in described.get("categorical", {}).items()}
        booster = xgb.Booster(model_file=directory / "model.json")
        # One request at a time per process: OpenMP threads only add wake-up latency to small predictions.
        booster.set_param({"nthread": int(os.environ.get("HEADRACE_PREDICT_THREADS", "1"))})
        fault = described.get("fault")
        return cls(
            booster=booster,
            features=tuple(features),
            categorical=categorical,
            objective=str(described.get("objective", "")),
            encoder=RowEncoder.of(features, categorical),
            fault=str(fault) if fault is not None else None,
        )

    def predict(self, matrix: FloatMatrix) -> npt.NDArray[Any]:
        """Scores for encoded rows (`RowEncoder`): categoricals as codes, as the booster's types say."""
        if self.fault == FAULT_5XX:
            raise ModelFault('this model is deliberately broken (features.json has "fault": "5xx")')
        return np.asarray(self.booster.inplace_predict(matrix, validate_features=False))
