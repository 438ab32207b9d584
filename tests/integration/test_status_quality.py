"""`headrace status` reads the quality checks and the accepted ground-truth files from the ledger (moto's
DynamoDB): the newest check of each model, every accepted file newest first."""

from __future__ import annotations

import json
from typing import Any

from headrace.config import ModelConfig
from headrace.deployment import describe
from headrace.ledger import DynamoLedger, LabelFileItem
from headrace.ledger.quality import QualityCheckItem, QualityStatus
from headrace.naming import Names, Outputs
from headrace.status import collect
from tests.support.moto import DATA_BUCKET, LEDGER_TABLE, MotoAccount

TRAINING = "arn:aws:states:us-east-1:123456789012:stateMachine:headrace-dev-churn-training"


class StackOutputs:
    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        outputs = {
            Outputs.DATA_BUCKET: DATA_BUCKET,
            Outputs.LEDGER_TABLE: LEDGER_TABLE,
            Outputs.INGEST_FUNCTION: "ingest",
            Outputs.training_state_machine("churn"): TRAINING,
        }
        return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]}


class NoExecutions:
    def get_paginator(self, operation: str) -> Any:
        class Pages:
            def paginate(self, **_: Any) -> list[dict[str, Any]]:
                return [{"executions": []}]

        return Pages()


def check(check_id: str, status: QualityStatus, value: float | None) -> QualityCheckItem:
    return QualityCheckItem(
        model="churn",
        check_id=check_id,
        since="2026-11-29T10:00:00+00:00",
        until=check_id[:19] + "+00:00",
        status=status,
        labelled_rows=812,
        unknown_labels=3,
        metric="auc",
        value=value,
        threshold=0.75,
        baseline=0.894,
        metrics=json.dumps({"objective": "binary:logistic", "rows": 812, "metrics": {"auc": value}}),
        reasons=["auc fell"] if status == "breach" else [],
    )


def label_file(sha: str, arrived: str) -> LabelFileItem:
    return LabelFileItem(
        model="churn",
        sha256=sha * 64,
        bucket=DATA_BUCKET,
        accepted_key=f"churn/ground-truth/accepted/2026/12/06/10/{arrived}-{sha * 16}.csv",
        source_key=f"churn/ground-truth/incoming/{sha}.csv",
        source_version_id=None,
        source_sha256=sha * 64,
        records=10,
        labels=10,
        inferences=10,
        arrived_at=arrived,
        recorded_at=arrived,
    )


def test_status_shows_the_newest_quality_check_and_every_accepted_label_file(
    moto_account: MotoAccount, example_model: ModelConfig
) -> None:
    ledger = DynamoLedger(moto_account.dynamodb, LEDGER_TABLE)
    ledger.record(check("2026-12-05T10:00:00.000000Z#daily-1", "ok", 0.88))
    ledger.record(check("2026-12-06T10:00:00.000000Z#daily-2", "breach", 0.71))
    ledger.record(label_file("a", "2026-12-05T09:00:00.000000Z"))
    ledger.record(label_file("b", "2026-12-06T09:00:00.000000Z"))
    deployment = describe(StackOutputs(), Names("dev"), [example_model])
    report = collect(moto_account.dynamodb, NoExecutions(), deployment)
    [newest] = report.quality_checks
    assert (newest.check_id, newest.status, newest.value, newest.reasons) == (
        "2026-12-06T10:00:00.000000Z#daily-2",
        "breach",
        0.71,
        ["auc fell"],
    )
    assert newest.metrics is not None and newest.metrics["metrics"] == {"auc": 0.71}
    assert [f.source_key for f in report.label_files] == [
        "churn/ground-truth/incoming/b.csv",
        "churn/ground-truth/incoming/a.csv",
    ]
