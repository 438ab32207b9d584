"""The model directory the trainer wrote, loaded once per process: a booster (`model.json`) or, for a model
with its own training code (`"framework": "custom"` in `features.json`), the user's module from the image's
`usercode/` and what its `save()` wrote under `user/` (containers/train/CONTRACT.md)."""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from headrace.encoding import FloatMatrix, RowEncoder, frame_from_codes
from headrace.usercode import UserCode, UserCodeError, check_scores, find_usercode, load_usercode

OPT_ML_ENV: Final = "HEADRACE_OPT_ML"
DEFAULT_ROOT: Final = Path("/opt/ml")
# Where the image keeps its program: `serve`, inference/, headrace/ and, for a custom model, usercode/.
PROGRAM_DIR: Final = Path(__file__).resolve().parent.parent
# The test hook: a features.json with "fault": "5xx" makes every invocation fail with 500 (rollback tests).
FAULT_5XX: Final = "5xx"
CUSTOM: Final = "custom"
# What a custom model's save() wrote, under the model directory.
USER_DIR: Final = "user"

Scores = npt.NDArray[Any]
log = logging.getLogger("serve")


class ModelFault(RuntimeError):
    """The model cannot answer: a 5xx, never the caller's fault."""


def model_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get(OPT_ML_ENV) or DEFAULT_ROOT) / "model"


@dataclass(frozen=True)
class UserPredictor:
    """A custom model's scores for encoded rows: the frame the trainer's `fit` saw for the same cells, the
    user's `predict`, its output checked as the trainer checks it. A failure is the model's fault (a 5xx)."""

    user: UserCode
    model: Any
    features: tuple[str, ...]
    categorical: dict[str, list[str]]
    objective: str

    def __call__(self, matrix: FloatMatrix) -> Scores:
        frame = frame_from_codes(matrix, self.features, self.categorical)
        try:
            scores = self.user.call("predict", self.model, frame)
            return check_scores(self.user.model, scores, len(frame), self.objective, None)
        except UserCodeError as exc:
            log.error("%s", exc.reason)
            raise ModelFault(exc.reason) from exc


@dataclass(frozen=True)
class Model:
    features: tuple[str, ...]
    categorical: dict[str, list[str]]
    objective: str
    encoder: RowEncoder
    # Encoded rows -> scores: the booster's inplace_predict, or a custom model's UserPredictor.
    score: Callable[[FloatMatrix], Scores]
    name: str = ""
    framework: str = "xgboost"
    fault: str | None = None

    @property
    def runs_user_code(self) -> bool:
        return self.framework == CUSTOM

    @classmethod
    def load(
        cls, directory: Path, program_dir: Path = PROGRAM_DIR, environ: Mapping[str, str] = os.environ
    ) -> Model:
        """OSError, ValueError or KeyError for a directory that is not a model; UserCodeError when a custom
        model's code cannot be loaded (its reason names the model, the function and the problem)."""
        described = json.loads((directory / "features.json").read_text(encoding="utf-8"))
        features = tuple(str(name) for name in described["features"])
        categorical = {str(k): [str(c) for c in v] for k, v in described.get("categorical", {}).items()}
        objective = str(described.get("objective", ""))
        framework = str(described.get("framework", "xgboost"))
        # The trainer records a custom model's name; the deploy workflow names every model in HEADRACE_MODEL.
        name = str(described.get("model") or environ.get("HEADRACE_MODEL", ""))
        if framework == CUSTOM:
            score: Callable[[FloatMatrix], Scores] = _user_predictor(
                directory, program_dir, described, features, categorical, objective, name
            )
        else:
            booster = xgb.Booster(model_file=directory / "model.json")
            # One request at a time per process: OpenMP threads only add wake-up latency to small predictions.
            booster.set_param({"nthread": int(environ.get("HEADRACE_PREDICT_THREADS", "1"))})
            score = functools.partial(booster.inplace_predict, validate_features=False)
        fault = described.get("fault")
        return cls(
            features=features,
            categorical=categorical,
            objective=objective,
            encoder=RowEncoder.of(features, categorical),
            score=score,
            name=name,
            framework=framework,
            fault=str(fault) if fault is not None else None,
        )

    def predict(self, matrix: FloatMatrix) -> Scores:
        """Scores for encoded rows (`RowEncoder`): categoricals as codes, as the booster's types say."""
        if self.fault == FAULT_5XX:
            raise ModelFault('this model is deliberately broken (features.json has "fault": "5xx")')
        return np.asarray(self.score(matrix))


def _user_predictor(
    directory: Path,
    program_dir: Path,
    described: Mapping[str, Any],
    features: tuple[str, ...],
    categorical: dict[str, list[str]],
    objective: str,
    name: str,
) -> UserPredictor:
    found = find_usercode(program_dir)
    if found is None:
        raise UserCodeError(
            f"model '{name}' was trained by its own code (features.json says framework custom), but this "
            f"image has no {program_dir / 'usercode' / 'usercode.json'}: deploy the model's own serving "
            "image, which carries its module."
        )
    user = load_usercode(found)
    recorded = described.get("code_sha256")
    if recorded and recorded != user.manifest.sha256:
        # Not refused here: the smoke test (inference/smoke.py) says whether this code reproduces the model.
        log.warning(
            "model '%s' was trained by %s with sha256 %s; this image's is %s",
            user.model,
            user.manifest.entry_point,
            recorded,
            user.manifest.sha256,
        )
    loaded = user.call("load", directory / USER_DIR)
    return UserPredictor(user, loaded, features, categorical, objective)
