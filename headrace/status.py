"""What is going on in a deployment: datasets and ground-truth files accepted, files quarantined or misplaced,
training executions, drift and quality checks and the retraining decisions they led to."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError, field_validator

from headrace.deployment import DeploymentInfo
from headrace.ledger import (
    DatasetItem,
    DriftCheckItem,
    DynamoLedger,
    LabelFileItem,
    MisplacedItem,
    RejectionItem,
    RetrainDecision,
)
from headrace.ledger.quality import QualityCheckItem, QualityStatus


class DatasetRow(BaseModel):
    model: str
    sha256: str
    key: str
    rows: int | None = None
    received_at: str | None = None
    execution_arn: str | None = None


class QuarantineRow(BaseModel):
    model: str
    key: str
    quarantine_key: str | None = None
    rules: list[str] = []
    received_at: str | None = None
    # What reason.json says, one line per problem ("the file lacks 1 required column: ..."); empty until read.
    reasons: list[str] = []


class _ReasonProblem(BaseModel):
    message: str


class _ReasonDocument(BaseModel):
    """The part of the ingest's reason.json (headrace/ingest/quarantine.py `Reason`) that people read."""

    problems: list[_ReasonProblem] = []


def readable_reasons(s3: Any, bucket: str, reason_key: str) -> list[str]:
    """The problems' messages from a quarantined file's reason.json; [] when it cannot be read."""
    try:
        body = s3.get_object(Bucket=bucket, Key=reason_key)["Body"].read()
        return [p.message for p in _ReasonDocument.model_validate_json(body).problems]
    except (ClientError, ValidationError):
        return []  # not written yet (the copy comes first) or unreadable: the rule ids still say what broke


class MisplacedRow(BaseModel):
    """A file dropped where no model looks (never read): where it is, and where it probably belongs."""

    model: str
    key: str
    size_bytes: int | None = None
    hint: str
    received_at: str


class ExecutionRow(BaseModel):
    model: str
    name: str
    status: str
    started_at: datetime
    stopped_at: datetime | None = None


class DriftCheckRow(BaseModel):
    model: str
    check_id: str
    status: str
    rows: int = 0
    drifted_features: list[str] = []
    trigger: str | None = None
    report_uri: str | None = None


class QualityCheckRow(BaseModel):
    """A quality check as its ledger item has it (headrace/ledger/quality.py), `metrics` parsed."""

    model: str
    check_id: str
    since: str | None = None
    until: str | None = None
    trigger: str | None = None
    status: QualityStatus
    labelled_rows: int = 0
    unknown_labels: int = 0
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    baseline: float | None = None
    metrics: dict[str, Any] | None = None  # every metric, error bounds and slices
    reasons: list[str] = []
    report_uri: str | None = None
    production_dataset_key: str | None = None

    @field_validator("metrics", mode="before")
    @classmethod
    def _parsed(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class LabelFileRow(BaseModel):
    """A ground-truth file accepted (headrace/ledger/labels.py); rejected ones are among the quarantined."""

    model: str
    source_key: str
    accepted_key: str
    labels: int
    inferences: int
    arrived_at: str


class RetrainRow(BaseModel):
    model: str
    decided_at: str
    alarm: str
    decision: str
    reason: str
    execution_arn: str | None = None


class StatusReport(BaseModel):
    datasets: list[DatasetRow]
    quarantined: list[QuarantineRow]
    executions: list[ExecutionRow]
    misplaced: list[MisplacedRow] = []
    drift_checks: list[DriftCheckRow] = []
    # The newest quality check of each model.
    quality_checks: list[QualityCheckRow] = []
    label_files: list[LabelFileRow] = []
    retrains: list[RetrainRow] = []


def _executions(stepfunctions: Any, model: str, machine: str) -> list[ExecutionRow]:
    pages = stepfunctions.get_paginator("list_executions").paginate(stateMachineArn=machine)
    return [
        ExecutionRow(
            model=model,
            name=e["name"],
            status=e["status"],
            started_at=e["startDate"],
            stopped_at=e.get("stopDate"),
        )
        for page in pages
        for e in page["executions"]
    ]


def collect(
    dynamodb: Any, stepfunctions: Any, deployment: DeploymentInfo, s3: Any | None = None
) -> StatusReport:
    """Everything the ledger and Step Functions know; with `s3`, quarantined files' reasons in words."""
    datasets: list[DatasetRow] = []
    quarantined: list[QuarantineRow] = []
    executions: list[ExecutionRow] = []
    checks: list[DriftCheckRow] = []
    qualities: dict[str, QualityCheckRow] = {}
    label_files: list[LabelFileRow] = []
    retrains: list[RetrainRow] = []
    ledger = DynamoLedger(dynamodb, deployment.ledger_table)
    for model in deployment.models:
        for item in ledger.partition(model.name):
            if isinstance(item, DatasetItem):
                datasets.append(DatasetRow.model_validate(item.model_dump()))
            elif isinstance(item, DriftCheckItem):
                checks.append(DriftCheckRow.model_validate(item.model_dump()))
            elif isinstance(item, QualityCheckItem):  # in sort-key order: the last is the newest
                qualities[model.name] = QualityCheckRow.model_validate(item.model_dump())
            elif isinstance(item, LabelFileItem):
                label_files.append(LabelFileRow.model_validate(item.model_dump()))
            elif isinstance(item, RetrainDecision):
                retrains.append(RetrainRow.model_validate(item.model_dump(mode="json")))
        executions.extend(_executions(stepfunctions, model.name, model.training_state_machine_arn))
    # Every partition, not only this deployment's models: a file dropped under another model's or an unknown
    # prefix is quarantined (or recorded as misplaced) there, and must show too (issue 14, finding 10).
    for rejection in ledger.everywhere(RejectionItem):
        row = QuarantineRow.model_validate(rejection.model_dump())
        if s3 is not None:
            row.reasons = readable_reasons(s3, rejection.bucket, rejection.reason_key)
        quarantined.append(row)
    quarantined.sort(key=lambda q: q.received_at or "", reverse=True)
    misplaced = [MisplacedRow.model_validate(m.model_dump()) for m in ledger.everywhere(MisplacedItem)]
    misplaced.sort(key=lambda m: m.received_at, reverse=True)
    executions.sort(key=lambda e: e.started_at, reverse=True)
    checks.sort(key=lambda c: c.check_id, reverse=True)
    retrains.sort(key=lambda r: r.decided_at, reverse=True)
    label_files.sort(key=lambda f: f.arrived_at, reverse=True)
    return StatusReport(
        datasets=datasets,
        quarantined=quarantined,
        misplaced=misplaced,
        executions=executions,
        drift_checks=checks,
        quality_checks=list(qualities.values()),
        label_files=label_files,
        retrains=retrains,
    )
