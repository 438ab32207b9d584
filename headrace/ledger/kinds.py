"""Which model reads which kind of item: a stored item is parsed by its sort key's prefix."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from headrace.ledger.batches import BatchItem
from headrace.ledger.checks import DriftCheckItem
from headrace.ledger.datasets import DatasetItem, MisplacedItem, RejectionItem
from headrace.ledger.decisions import IdleDecision, RetrainDecision
from headrace.ledger.deployments import DeploymentItem
from headrace.ledger.item import LedgerItem
from headrace.ledger.keys import SORT_KEY, TTL_ATTRIBUTE, Kind, kind_of
from headrace.ledger.labels import LabelFileItem
from headrace.ledger.quality import QualityCheckItem
from headrace.ledger.runs import RunItem

ITEM_MODELS: dict[Kind, type[LedgerItem]] = {
    Kind.DATASET: DatasetItem,
    Kind.REJECTION: RejectionItem,
    Kind.MISPLACED: MisplacedItem,
    Kind.LABELS: LabelFileItem,
    Kind.RUN: RunItem,
    Kind.DEPLOYMENT: DeploymentItem,
    Kind.DRIFT: DriftCheckItem,
    Kind.QUALITY: QualityCheckItem,
    Kind.BATCH: BatchItem,
    Kind.RETRAIN: RetrainDecision,
    Kind.IDLE: IdleDecision,
}


def read_item(stored: Mapping[str, Any]) -> LedgerItem | None:
    """The typed item; None for what is no ledger item of ours (another writer's record)."""
    kind = kind_of(str(stored[SORT_KEY]))
    return None if kind is None else ITEM_MODELS[kind].from_stored(stored)


def stored_item(item: LedgerItem, expires_at: datetime | None = None) -> dict[str, Any]:
    """Key and attributes as the table holds them; `expires_at` sets the TTL attribute (DynamoDB deletes
    the item some time after it)."""
    ttl = {TTL_ATTRIBUTE: int(expires_at.timestamp())} if expires_at else {}
    return {**item.table_key, **item.attributes(), **ttl}
