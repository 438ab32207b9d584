"""Which model reads which kind of item: a stored item is parsed by its sort key's prefix."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from importlib import import_module
from typing import Any

from headrace.ledger.item import LedgerItem
from headrace.ledger.keys import SORT_KEY, TTL_ATTRIBUTE, Kind, kind_of

# Each kind's model and its module, imported when an item of that kind is first read: a function that reads
# one kind does not import the others (headrace.ledger's docstring).
ITEM_MODELS: dict[Kind, tuple[str, str]] = {
    Kind.DATASET: ("datasets", "DatasetItem"),
    Kind.REJECTION: ("datasets", "RejectionItem"),
    Kind.MISPLACED: ("datasets", "MisplacedItem"),
    Kind.LABELS: ("labels", "LabelFileItem"),
    Kind.RUN: ("runs", "RunItem"),
    Kind.DEPLOYMENT: ("deployments", "DeploymentItem"),
    Kind.DRIFT: ("checks", "DriftCheckItem"),
    Kind.QUALITY: ("quality", "QualityCheckItem"),
    Kind.BATCH: ("batches", "BatchItem"),
    Kind.RETRAIN: ("decisions", "RetrainDecision"),
    Kind.IDLE: ("decisions", "IdleDecision"),
}


def item_model(kind: Kind) -> type[LedgerItem]:
    module, name = ITEM_MODELS[kind]
    model: type[LedgerItem] = getattr(import_module(f"headrace.ledger.{module}"), name)
    return model


def read_item(stored: Mapping[str, Any]) -> LedgerItem | None:
    """The typed item; None for what is no ledger item of ours (another writer's record)."""
    kind = kind_of(str(stored[SORT_KEY]))
    return None if kind is None else item_model(kind).from_stored(stored)


def stored_item(item: LedgerItem, expires_at: datetime | None = None) -> dict[str, Any]:
    """Key and attributes as the table holds them; `expires_at` sets the TTL attribute (DynamoDB deletes
    the item some time after it)."""
    ttl = {TTL_ATTRIBUTE: int(expires_at.timestamp())} if expires_at else {}
    return {**item.table_key, **item.attributes(), **ttl}
