"""What is going on in a deployment: datasets accepted, files quarantined, training executions."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from pydantic import BaseModel

from headrace.deployment import DeploymentInfo

_DESERIALIZER = TypeDeserializer()


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


class StatusReport(BaseModel):
    datasets: list[DatasetRow]
    quarantined: list[QuarantineRow]
    executions: list[ExecutionRow]


def _plain(value: Any) -> Any:
    """DynamoDB numbers arrive as Decimal: ints stay ints, the rest become floats (for JSON and tables)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def ledger_items(dynamodb: Any, table: str, model: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    pages = dynamodb.get_paginator("query").paginate(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"model#{model}"}},
    )
    for page in pages:
        items.extend(
            {k: _plain(_DESERIALIZER.deserialize(v)) for k, v in item.items()} for item in page["Items"]
        )
    return items


def collect(dynamodb: Any, stepfunctions: Any, deployment: DeploymentInfo) -> StatusReport:
    datasets: list[DatasetRow] = []
    quarantined: list[QuarantineRow] = []
    executions: list[ExecutionRow] = []
    for model in deployment.models:
        for item in ledger_items(dynamodb, deployment.ledger_table, model.name):
            if item["sk"].startswith("dataset#"):
                datasets.append(DatasetRow.model_validate({**item, "model": model.name}, strict=False))
            elif item["sk"].startswith("rejection#"):
                quarantined.append(QuarantineRow.model_validate({**item, "model": model.name}, strict=False))
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
    return StatusReport(datasets=datasets, quarantined=quarantined, executions=executions)
