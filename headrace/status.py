"""What is going on in a deployment: datasets accepted, files quarantined, training executions, drift checks
and the retraining decisions they led to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from headrace.deployment import DeploymentInfo
from headrace.ledger import DatasetItem, DriftCheckItem, DynamoLedger, RejectionItem, RetrainDecision


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
    drift_checks: list[DriftCheckRow] = []
    retrains: list[RetrainRow] = []


def collect(dynamodb: Any, stepfunctions: Any, deployment: DeploymentInfo) -> StatusReport:
    datasets: list[DatasetRow] = []
    quarantined: list[QuarantineRow] = []
    executions: list[ExecutionRow] = []
    checks: list[DriftCheckRow] = []
    retrains: list[RetrainRow] = []
    ledger = DynamoLedger(dynamodb, deployment.ledger_table)
    for model in deployment.models:
        for item in ledger.partition(model.name):
            if isinstance(item, DatasetItem):
                datasets.append(DatasetRow.model_validate(item.model_dump()))
            elif isinstance(item, RejectionItem):
                quarantined.append(QuarantineRow.model_validate(item.model_dump()))
            elif isinstance(item, DriftCheckItem):
                checks.append(DriftCheckRow.model_validate(item.model_dump()))
            elif isinstance(item, RetrainDecision):
                retrains.append(RetrainRow.model_validate(item.model_dump(mode="json")))
        pages = stepfunctions.get_paginator("list_executions").paginate(
            stateMachineArn=model.training_state_machine_arn
        )
        for page in pages:
            executions.extend(
                ExecutionRow(
                    model=model.name,
                    name=e["name"],
                    status=e["status"],
                    started_at=e["startDate"],
                    stopped_at=e.get("stopDate"),
                )
                for e in page["executions"]
            )
    executions.sort(key=lambda e: e.started_at, reverse=True)
    checks.sort(key=lambda c: c.check_id, reverse=True)
    retrains.sort(key=lambda r: r.decided_at, reverse=True)
    return StatusReport(
        datasets=datasets,
        quarantined=quarantined,
        executions=executions,
        drift_checks=checks,
        retrains=retrains,
    )
