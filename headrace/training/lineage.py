"""A registered model version's lineage: what it was trained on, with what code and settings, and how good
it was; written three ways so that each reader finds it where it looks.

- `lineage.json` beside the run (`<model>/runs/<job>/lineage.json`): everything, as JSON.
- the package's CustomerMetadataProperties: the same facts as short strings (`datasets`:
  `<sha256 first 16>:<source>:<rows>` newest first, `production_lineage`: the quality checks' lineage.json
  URIs, as many as fit). SageMaker's API model limits
  each value to 256 characters of letters, digits, spaces and `_.:/=+-@` (botocore's CustomerMetadataValue:
  no braces, quotes or commas, so no JSON), so metrics are written as `auc=0.8312 logloss=0.4102`, and the
  hyperparameters (JSON values among them) as their SHA-256 next to `lineage_uri`.
- MetadataProperties (GeneratedBy: the training job's ARN, CommitId: the image's content digest) and
  ModelMetrics.ModelQuality (the evaluation.json copy), which SageMaker's own tools display.

A tuned run's version is its tuning job's best trial: `training` names that trial, and `tuning` (lineage.json)
lists every trial with its tuned hyperparameters and objective, and why the best was chosen; the metadata
carries the tuning job's name and the trial count.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from headrace.config import ModelConfig
from headrace.naming import Names
from headrace.training.payloads import ApprovalStatus, RegisterRequest

METADATA_VALUE_MAX = 256
METADATA_ITEMS_MAX = 50
_METADATA_PUNCTUATION = frozenset("_.:/=+-@")
# CreateModelPackage's ClientToken: at most 36 characters of [a-zA-Z0-9-].
CLIENT_TOKEN_LENGTH = 36
CONTENT_TYPES = ["text/csv", "application/json"]
METRIC_DIGITS = 6


def fits_metadata(value: str) -> bool:
    """Whether `value` may be a CustomerMetadataProperties value (the API's length and character rules)."""
    return 0 < len(value) <= METADATA_VALUE_MAX and all(
        c.isalnum() or c == " " or c in _METADATA_PUNCTUATION for c in value
    )


def encode_metrics(metrics: Mapping[str, float | None], first: str) -> str:
    """`first=v name=v ...`: finite values to 6 significant digits, `first` (the gate's metric) leading, then
    by name, as many as fit in one metadata value."""
    names = ([first] if first in metrics else []) + sorted(n for n in metrics if n != first)
    pairs: list[str] = []
    for name in names:
        value = metrics[name]
        if value is None or not math.isfinite(value) or not fits_metadata(name) or "=" in name:
            continue
        pair = f"{name}={value:.{METRIC_DIGITS}g}"
        if len(" ".join([*pairs, pair])) > METADATA_VALUE_MAX:
            break
        pairs.append(pair)
    return " ".join(pairs)


def decode_metrics(text: str) -> dict[str, float]:
    """The inverse of `encode_metrics`; pieces that are not `name=number` are skipped."""
    metrics: dict[str, float] = {}
    for pair in text.split():
        name, _, value = pair.partition("=")
        try:
            metrics[name] = float(value)
        except ValueError:
            continue
    return metrics


def hyperparameters_digest(hyperparameters: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(hyperparameters), sort_keys=True).encode()).hexdigest()


def client_token(job: str) -> str:
    """CreateModelPackage's idempotency token for one training job's version."""
    return hashlib.sha256(job.encode()).hexdigest()[:CLIENT_TOKEN_LENGTH]


def approval_status(model: ModelConfig) -> ApprovalStatus:
    return "Approved" if model.gate.approval == "auto" else "PendingManualApproval"


def lineage_document(
    request: RegisterRequest, model: ModelConfig, hyperparameters: Mapping[str, str], lineage_uri: str
) -> dict[str, Any]:
    dataset = request.dataset
    return {
        "model": model.name,
        "lineage_uri": lineage_uri,
        "dataset": {
            "sha256": dataset.sha256,
            "bucket": dataset.bucket,
            "key": dataset.key,
            "version_id": dataset.version_id,
            "dataset_key": dataset.dataset_key,
            "rows": dataset.rows,
            "splits": request.run.rows.model_dump(),
        },
        # Every dataset version the run trained on (oldest first), production ones with the quality check's
        # lineage.json (capture windows, label files); `holdout` is the one the test split came from.
        "datasets": [d.model_dump(mode="json") for d in request.run.datasets],
        "holdout": request.run.holdout.sha256 if request.run.holdout else None,
        "training": {
            "job_name": _training_job_name(request),
            "job_arn": request.training_job_arn,
            "model_artifacts": request.model_artifacts,
            "image_uri": request.image.uri,
            "code_digest": request.image.digest,
            "serving_image_uri": request.serving_image.uri,
            "serving_code_digest": request.serving_image.digest,
            "hyperparameters": dict(hyperparameters),
            "hyperparameters_sha256": hyperparameters_digest(hyperparameters),
        },
        "evaluation": {
            "uri": request.gate.evaluation_uri,
            "metric": request.gate.metric,
            "metrics": request.gate.candidate,
            "gate": request.gate.model_dump(mode="json"),
        },
        "execution_arn": request.run.execution_arn,
        **({"tuning": request.tuning} if request.tuning else {}),
    }


def _training_job_name(request: RegisterRequest) -> str:
    """The training job whose artifact the version is: the run's own, or a tuned run's best trial."""
    if request.tuning:
        return str(request.tuning["best"]["name"])
    return request.run.job_name


def customer_metadata(
    request: RegisterRequest, hyperparameters: Mapping[str, str], lineage_uri: str
) -> dict[str, str]:
    """The lineage as metadata values; a value the API would refuse (too long, odd characters) is left out
    here and kept in lineage.json."""
    wanted = {
        "dataset_sha256": request.dataset.sha256,
        "dataset_key": request.dataset.dataset_key,
        "dataset_version_id": request.dataset.version_id or "",
        "training_job": request.run.job_name,
        "image_uri": request.image.uri,
        "code_digest": request.image.digest,
        "serving_code_digest": request.serving_image.digest,
        "hyperparameters_sha256": hyperparameters_digest(hyperparameters),
        "gate_metric": request.gate.metric,
        "metrics": encode_metrics(request.gate.candidate, request.gate.metric),
        "execution_arn": request.run.execution_arn,
        "lineage_uri": lineage_uri,
        "datasets": _fitting(f"{d.sha256[:16]}:{d.source}:{d.rows}" for d in reversed(request.run.datasets)),
        "production_lineage": _fitting(
            d.lineage_uri for d in reversed(request.run.datasets) if d.lineage_uri
        ),
        "holdout_sha256": request.run.holdout.sha256 if request.run.holdout else "",
    }
    if request.tuning:
        wanted["tuning_job"] = str(request.tuning["job_name"])
        wanted["tuning_best_trial"] = _training_job_name(request)
        wanted["tuning_trials"] = str(len(request.tuning.get("trials") or []))
    champion = request.gate.champion
    if champion is not None and champion.holdout is not None:
        scored = encode_metrics(champion.holdout.metrics, request.gate.metric)
        wanted["champion_on_holdout"] = f"v{champion.version} rows={champion.holdout.rows} {scored}".strip()
    return {key: value for key, value in wanted.items() if fits_metadata(value)}


def _fitting(values: Iterable[str]) -> str:
    """As many of `values` (newest first) as fit in one metadata value, space-separated; lineage.json keeps
    them all. Each must be a valid value itself."""
    kept: list[str] = []
    for value in values:
        if fits_metadata(value) and len(" ".join([*kept, value])) <= METADATA_VALUE_MAX:
            kept.append(value)
    return " ".join(kept)


def package_tags(names: Names, model: str, job: str) -> dict[str, str]:
    return {"headrace:stage": names.stage, "headrace:model": model, "headrace:run": job}


def package_request(
    request: RegisterRequest,
    model: ModelConfig,
    names: Names,
    hyperparameters: Mapping[str, str],
    lineage_uri: str,
) -> dict[str, Any]:
    """CreateModelPackage's parameters for the run's candidate, a new version of the model's group."""
    job = request.run.job_name
    metric = request.gate.metric
    value = request.gate.candidate.get(metric)
    scored = f"{metric} {value:.4g}" if value is not None else f"no {metric}"
    return {
        "ModelPackageGroupName": names.model_package_group(model.name),
        "ModelPackageDescription": (
            f"{model.name}: training job {job} on dataset {request.dataset.sha256[:12]}, {scored}"
        ),
        "ModelApprovalStatus": approval_status(model),
        "InferenceSpecification": {
            "Containers": [{"Image": request.serving_image.uri, "ModelDataUrl": request.model_artifacts}],
            "SupportedContentTypes": CONTENT_TYPES,
            "SupportedResponseMIMETypes": CONTENT_TYPES,
        },
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": request.gate.evaluation_uri}
            }
        },
        "MetadataProperties": {"GeneratedBy": request.training_job_arn, "CommitId": request.image.digest},
        "CustomerMetadataProperties": customer_metadata(request, hyperparameters, lineage_uri),
        "Tags": [{"Key": k, "Value": v} for k, v in package_tags(names, model.name, job).items()],
        "ClientToken": client_token(job),
    }
