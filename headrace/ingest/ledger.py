"""The run ledger's item shapes: one DynamoDB table, partitioned by model.

    pk = model#<model>   sk = dataset#<sha256>                         one accepted dataset version
    pk = model#<model>   sk = rejection#<received at>#<sha256[:12]>    one rejected upload

The same table holds the Powertools idempotency records (pk = idempotency#<function>), which never collide
with these keys. Values are plain str/int/list so any DynamoDB client can write them; statistics are a JSON
string because DynamoDB numbers cannot hold NaN and nested maps cost capacity for nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from headrace.ingest.dataset import DatasetVersion
from headrace.ingest.problems import rules
from headrace.ingest.quarantine import Placement, Reason
from headrace.ledger_keys import model_pk, sort_time

STARTED = "started"


def dataset_sk(sha256: str) -> str:
    return f"dataset#{sha256}"


def rejection_sk(received_at: datetime, sha256: str) -> str:
    return f"rejection#{_iso(received_at)}#{sha256[:12]}"


class DatasetEntry(BaseModel):
    """What ingest reads back: has this content already started a run?"""

    model_config = ConfigDict(frozen=True)

    model: str
    sha256: str
    key: str
    execution_arn: str | None = None
    status: str


def dataset_item(version: DatasetVersion, execution_arn: str, recorded_at: datetime) -> dict[str, Any]:
    return {
        "pk": model_pk(version.model),
        "sk": dataset_sk(version.sha256),
        "kind": "dataset",
        "model": version.model,
        "sha256": version.sha256,
        "bucket": version.bucket,
        "key": version.key,
        "version_id": version.version_id,
        "size_bytes": version.size_bytes,
        "format": version.format.value,
        "rows": version.rows,
        "columns": version.columns,
        "schema_fingerprint": version.schema_fingerprint,
        "statistics": json.dumps(version.model_dump(mode="json")["statistics"], allow_nan=False),
        "received_at": _iso(version.received_at),
        "dataset_key": version.dataset_key,
        "execution_arn": execution_arn,
        "status": STARTED,
        "recorded_at": _iso(recorded_at),
    }


def rejection_item(reason: Reason, where: Placement, recorded_at: datetime) -> dict[str, Any]:
    return {
        "pk": model_pk(reason.model),
        "sk": rejection_sk(reason.received_at, reason.sha256),
        "kind": "rejection",
        "model": reason.model,
        "sha256": reason.sha256,
        "bucket": reason.source.bucket,
        "key": reason.source.key,
        "version_id": reason.source.version_id,
        "size_bytes": reason.source.size,
        "quarantine_key": where.key,
        "reason_key": where.reason_key,
        "rules": rules(reason.problems),
        "received_at": _iso(reason.received_at),
        "recorded_at": _iso(recorded_at),
    }


def dataset_entry(item: dict[str, Any]) -> DatasetEntry:
    return DatasetEntry.model_validate(item)


_iso = sort_time
