"""The smoke test at start: the version's own test rows, scored here, must give the scores the trainer
recorded for them (`model/smoke.json`, containers/train/CONTRACT.md).

It runs before the socket listens, so a model that fails it never answers /ping: SageMaker marks the
endpoint Failed ("did not pass the ping health check") and a blue/green update rolls back, with the reason
in the container's log. What it catches: a predict() that raises or returns the wrong shape, a load() that
does not restore what save() wrote, a library in the image that scores differently from the training
image's, an encoding that differs between training and serving. An artifact without smoke.json (trained
before it existed) is served unchecked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from headrace.encoding import EncodingError
from inference.model import Model, ModelFault

SMOKE_FILE: Final = "smoke.json"
# Scores compared as numbers that went through JSON: a float64 survives it exactly, so the tolerance only
# absorbs a different BLAS or thread count reordering sums.
RTOL: Final = 1e-6
ATOL: Final = 1e-6
_SHOWN: Final = 3


class SmokeTestFailed(Exception):
    """The model does not reproduce its recorded scores; `reason` names the model, predict() and why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SmokeRows(BaseModel):
    """`model/smoke.json`: test rows in feature order (cells as JSON scalars, missing as null) and the
    trainer's predictions for exactly those rows."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    rows: list[list[float | str | bool | None]]
    scores: list[float] | list[list[float]]


def smoke_test(model: Model, directory: Path) -> int:
    """How many recorded rows `model` scored as the trainer did (0: no smoke.json); SmokeTestFailed else."""
    path = directory / SMOKE_FILE
    if not path.is_file():
        return 0
    who = f"model '{model.name}'" if model.name else "the model"
    start = f"{who}: the smoke test on {path.name} failed"
    try:
        recorded = SmokeRows.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise SmokeTestFailed(f"{start}: the file is unreadable ({_first_line(exc)}).") from None
    rows, expected = recorded.rows, np.asarray(recorded.scores, dtype=np.float64)
    if not rows or len(rows) != len(expected):
        raise SmokeTestFailed(f"{start}: it holds {len(rows)} row(s) and {len(expected)} score(s).")
    widths = {len(row) for row in rows}
    if widths != {len(model.features)}:
        raise SmokeTestFailed(
            f"{start}: its rows have {', '.join(map(str, sorted(widths)))} value(s); the model takes "
            f"{len(model.features)} ({', '.join(model.features)})."
        )
    try:
        matrix = model.encoder.encode(rows)
    except EncodingError as exc:
        raise SmokeTestFailed(f"{start}: its {exc}.") from None
    try:
        # score, not predict: the fault hook (features.json "fault") is for invocations, not for start.
        scores = np.asarray(model.score(matrix), dtype=np.float64)
    except ModelFault as exc:  # the user's code failed: its reason names the model and the function
        raise SmokeTestFailed(f"the smoke test on {path.name} failed: {exc}") from None
    except Exception as exc:
        raise SmokeTestFailed(
            f"{start}: predict() raised {type(exc).__name__}: {_first_line(exc)}."
        ) from None
    if scores.shape != expected.shape:
        raise SmokeTestFailed(
            f"{start}: predict() returned shape {scores.shape} for its {len(rows)} rows; the trainer's "
            f"scores for them have shape {expected.shape}."
        )
    close = np.isclose(scores, expected, rtol=RTOL, atol=ATOL)
    if not close.all():
        wrong = np.flatnonzero(~close.reshape(len(rows), -1).all(axis=1))
        shown = "; ".join(
            f"row {int(r)}: {_shown(scores[r])} here, {_shown(expected[r])} in training"
            for r in wrong[:_SHOWN]
        )
        raise SmokeTestFailed(
            f"{start}: predict() gives other scores than the trainer recorded for {len(wrong)} of its "
            f"{len(rows)} rows ({shown}; tolerance rtol {RTOL:g}, atol {ATOL:g}). This image does not "
            "reproduce the trained model: load() may not restore what save() wrote, or a library differs "
            "from the training image's."
        )
    return len(rows)


def _shown(value: Any) -> str:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return f"{float(array):.9g}"
    return "[" + ", ".join(f"{float(v):.9g}" for v in array) + "]"


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + "..." if len(text) > 300 else text
