"""The trainer's `evaluation.json` (containers/train/CONTRACT.md, Outputs): metrics of the candidate on the
held-out test split, overall and per slice, read from the model.tar.gz SageMaker uploads."""

from __future__ import annotations

import io
import json
import math
import tarfile
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from headrace.training.payloads import HoldoutMetrics

EVALUATION_FILE = "evaluation.json"
# A metrics file is a few KB; anything this large is not one, and reading it could exhaust the function.
MAX_EVALUATION_BYTES = 16 * 1024 * 1024

MetricValues = dict[str, float | None]


class ArtifactError(ValueError):
    """The training job's model artifact is not what the trainer's contract says it writes."""


def _finite_or_none(values: dict[str, Any]) -> dict[str, Any]:
    # NaN and infinities (an AUC on a one-class slice) carry no comparison; they become null. Anything
    # else that is not a number is left for validation to reject by name.
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()}


class Evaluation(BaseModel):
    """`{"metric": "auc", "metrics": {...}, "slices": {column: {value: {metric: .., "rows": ..}}}, ...,
    "champion": {"metrics": {...}, "rows": n}}`."""

    model_config = ConfigDict(frozen=True, extra="allow")

    metric: str
    metrics: MetricValues
    slices: dict[str, dict[str, MetricValues]] = {}
    best_iteration: int | None = None
    device: str | None = None
    train_seconds: float | None = None
    # The champion (the run's champion channel) scored on the same test split; absent when there was none.
    champion: HoldoutMetrics | None = None

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics(cls, value: Any) -> Any:
        return _finite_or_none(value) if isinstance(value, dict) else value

    @field_validator("slices", mode="before")
    @classmethod
    def _slices(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {
            column: {name: _finite_or_none(m) if isinstance(m, dict) else m for name, m in groups.items()}
            if isinstance(groups, dict)
            else groups
            for column, groups in value.items()
        }


def parse_evaluation(document: bytes) -> Evaluation:
    try:
        return Evaluation.model_validate(json.loads(document))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{EVALUATION_FILE} is not valid JSON: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ArtifactError(f"{EVALUATION_FILE} does not have the trainer's shape: {problems}") from None


def evaluation_from_archive(archive: bytes, source: str) -> tuple[Evaluation, bytes]:
    """The evaluation inside a model.tar.gz (at its root, `./` or not), parsed, with its exact bytes."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            member = next((m for m in tar.getmembers() if m.name.removeprefix("./") == EVALUATION_FILE), None)
            if member is None or not member.isfile():
                listed = ", ".join(sorted(m.name for m in tar.getmembers())[:20]) or "nothing"
                raise ArtifactError(
                    f"{source} has no {EVALUATION_FILE} at its root (it holds {listed}); the trainer "
                    "writes it to /opt/ml/model/"
                )
            if member.size > MAX_EVALUATION_BYTES:
                raise ArtifactError(
                    f"{source}: {EVALUATION_FILE} is {member.size} bytes, too large to be one"
                )
            extracted = tar.extractfile(member)
            assert extracted is not None, "a regular file member always has content"
            document = extracted.read()
    except tarfile.TarError as exc:
        raise ArtifactError(f"{source} is not a readable tar.gz archive: {exc}") from None
    return parse_evaluation(document), document
