"""The ledger table's keys: one partition per model, one sort-key prefix per item kind.

    pk = model#<model>   sk = dataset#<sha256>                         an accepted dataset version
                         sk = rejection#<received at>#<sha256[:12]>#<upload>  a rejected upload
                         sk = misplaced#<received at>#<upload>         a file outside every model's folders
                         sk = labels#<sha256>                          an accepted ground-truth label file
                         sk = run#<training job name>                  a training run
                         sk = deploy#<time>#<execution name>           a run of the deploy workflow
                         sk = drift#<time>#<execution name>            a drift check
                         sk = quality#<time>#<execution name>          a quality check
                         sk = batch#<transform job name>               a batch scoring job
                         sk = retrain#<time>                           a retraining decision
                         sk = idle#<time>                              an idle-endpoint decision

The same table holds the Powertools idempotency records (pk = idempotency#<function>), which never collide
with these keys. Times in sort keys are `sort_time`, so each kind orders by time as text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

# The table's key schema and TTL attribute (stacks/data_store.py creates the table with these).
PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expiration"

_MODEL = "model#"


class Kind(StrEnum):
    """An item's `kind` attribute; its sort key starts with the kind's prefix (`PREFIXES`)."""

    DATASET = "dataset"
    REJECTION = "rejection"
    MISPLACED = "misplaced"
    LABELS = "labels"
    RUN = "run"
    DEPLOYMENT = "deployment"
    DRIFT = "drift"
    QUALITY = "quality"
    BATCH = "batch"
    RETRAIN = "retrain"
    IDLE = "idle"


PREFIXES: dict[Kind, str] = {
    Kind.DATASET: "dataset#",
    Kind.REJECTION: "rejection#",
    Kind.MISPLACED: "misplaced#",
    Kind.LABELS: "labels#",
    Kind.RUN: "run#",
    Kind.DEPLOYMENT: "deploy#",
    Kind.DRIFT: "drift#",
    Kind.QUALITY: "quality#",
    Kind.BATCH: "batch#",
    Kind.RETRAIN: "retrain#",
    Kind.IDLE: "idle#",
}


def model_pk(model: str) -> str:
    """One partition per model: its datasets, rejections, runs, deployments and decisions side by side."""
    return f"{_MODEL}{model}"


def model_of(pk: str) -> str:
    return pk.removeprefix(_MODEL)


def sort_key(kind: Kind, sort_id: str) -> str:
    return PREFIXES[kind] + sort_id


def kind_of(sk: str) -> Kind | None:
    """The kind a sort key belongs to; None for anything else in the partition."""
    return next((kind for kind, prefix in PREFIXES.items() if sk.startswith(prefix)), None)


def sort_time(moment: datetime) -> str:
    """UTC with a 'Z' and fixed width, so sort keys order by time as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def plain(value: Any) -> Any:
    """DynamoDB numbers arrive as Decimal: ints stay ints, the rest become floats (for JSON and tables)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | set):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
