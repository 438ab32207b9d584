"""The ledger in memory, with DynamoLedger's semantics (conditional puts, partial updates, newest-first
queries): the one fake every unit test uses. `items` holds what the table would, by (pk, sk)."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any, TypeVar

from headrace.ledger.batches import BatchItem
from headrace.ledger.checks import DriftCheckItem
from headrace.ledger.datasets import DatasetItem
from headrace.ledger.decisions import RetrainDecision
from headrace.ledger.deployments import DeploymentItem
from headrace.ledger.item import LedgerItem
from headrace.ledger.keys import PARTITION_KEY, PREFIXES, SORT_KEY, Kind, model_pk, sort_key, sort_time
from headrace.ledger.kinds import read_item, stored_item
from headrace.ledger.labels import LabelFileItem
from headrace.ledger.quality import QualityCheckItem
from headrace.ledger.runs import RunItem, StartedRun

Item = TypeVar("Item", bound=LedgerItem)
Key = tuple[str, str]


class MemoryLedger:
    def __init__(self) -> None:
        self.items: dict[Key, dict[str, Any]] = {}

    def stored(self, item: LedgerItem) -> dict[str, Any] | None:
        """What the table holds under `item`'s key."""
        return self.items.get(_key(item.table_key))

    def of_kind(self, kind: type[Item], model: str) -> list[Item]:
        """The model's items of one kind, in sort-key order."""
        return self._query(kind, model)

    # --- writing ------------------------------------------------------------------------------------------

    def record(self, item: LedgerItem, *, expires_at: datetime | None = None) -> None:
        stored = _json(stored_item(item, expires_at))
        self.items[_key(stored)] = stored

    def record_dataset(self, item: DatasetItem) -> bool:
        return self._put_new(item)

    def record_label_file(self, item: LabelFileItem) -> bool:
        return self._put_new(item)

    def record_attempt(self, item: DatasetItem, previous_execution_arn: str) -> bool:
        stored = self.stored(item)
        if stored is None or stored.get("execution_arn") != previous_execution_arn:
            return False
        self.record(item)
        return True

    def start_run(self, item: RunItem) -> StartedRun:
        created = self._put_new(item)
        started_at = (self.stored(item) or {})["started_at"]
        return StartedRun(started_at=datetime.fromisoformat(started_at), created=created)

    def update(self, item: LedgerItem, keep_existing: Collection[str] = ()) -> None:
        keep = item.IDENTITY | set(keep_existing)
        stored = self.items.setdefault(_key(item.table_key), dict(item.table_key))
        for name, value in _json(item.attributes()).items():
            if name not in keep or name not in stored:
                stored[name] = value

    def _put_new(self, item: LedgerItem) -> bool:
        if self.stored(item) is not None:
            return False
        self.record(item)
        return True

    # --- reading ------------------------------------------------------------------------------------------

    def dataset(self, model: str, sha256: str) -> DatasetItem | None:
        stored = self.items.get((model_pk(model), sort_key(Kind.DATASET, sha256)))
        return None if stored is None else DatasetItem.from_stored(stored)

    def label_file(self, model: str, sha256: str) -> LabelFileItem | None:
        stored = self.items.get((model_pk(model), sort_key(Kind.LABELS, sha256)))
        return None if stored is None else LabelFileItem.from_stored(stored)

    def label_files(self, model: str) -> list[LabelFileItem]:
        """Accepted label files, in arrival order (the order the later-file-wins rule applies)."""
        return sorted(self._query(LabelFileItem, model), key=lambda f: f.accepted_key)

    def datasets(self, model: str) -> list[DatasetItem]:
        return self._query(DatasetItem, model)

    def newest_dataset(self, model: str) -> DatasetItem | None:
        return max(self._query(DatasetItem, model), key=lambda d: d.received_at, default=None)

    def datasets_since(self, model: str, since: datetime) -> list[DatasetItem]:
        # received_at is sort_time text: ordered as the times are.
        after = [d for d in self._query(DatasetItem, model) if d.received_at >= sort_time(since)]
        return sorted(after, key=lambda d: d.received_at, reverse=True)

    def run(self, model: str, job_name: str) -> RunItem | None:
        stored = self.items.get((model_pk(model), sort_key(Kind.RUN, job_name)))
        return None if stored is None else RunItem.from_stored(stored)

    def runs(self, model: str) -> list[RunItem]:
        return self._query(RunItem, model)

    def deployments(self, model: str) -> list[DeploymentItem]:
        return sorted(self._query(DeploymentItem, model), key=lambda d: d.deployment_id, reverse=True)

    def drift_checks(self, model: str, limit: int | None = None) -> list[DriftCheckItem]:
        return self._query(DriftCheckItem, model)[::-1][:limit]

    def quality_checks(self, model: str, limit: int | None = None) -> list[QualityCheckItem]:
        return self._query(QualityCheckItem, model)[::-1][:limit]

    def batch(self, model: str, job_name: str) -> BatchItem | None:
        stored = self.items.get((model_pk(model), sort_key(Kind.BATCH, job_name)))
        return None if stored is None else BatchItem.from_stored(stored)

    def batches(self, model: str) -> list[BatchItem]:
        """Newest first (by start)."""
        return sorted(self._query(BatchItem, model), key=lambda b: b.started_at, reverse=True)

    def retrains(self, model: str, since: datetime) -> list[RetrainDecision]:
        return [d for d in self._query(RetrainDecision, model)[::-1] if d.decided_at >= since]

    def partition(self, model: str) -> list[LedgerItem]:
        """Every item of the model's partition, of every kind, in sort-key order."""
        partition = sorted((k, v) for k, v in self.items.items() if k[0] == model_pk(model))
        return [item for _, stored in partition if (item := read_item(stored)) is not None]

    def everywhere(self, kind: type[Item]) -> list[Item]:
        """Every item of one kind in every partition (DynamoLedger scans for these)."""
        prefix = PREFIXES[kind.KIND]
        return [kind.from_stored(self.items[k]) for k in sorted(self.items) if k[1].startswith(prefix)]

    def _query(self, kind: type[Item], model: str) -> list[Item]:
        pk, prefix = model_pk(model), PREFIXES[kind.KIND]
        keys = sorted(k for k in self.items if k[0] == pk and k[1].startswith(prefix))
        return [kind.from_stored(self.items[k]) for k in keys]


def _key(item: dict[str, Any]) -> Key:
    return str(item[PARTITION_KEY]), str(item[SORT_KEY])


def _json(values: dict[str, Any]) -> dict[str, Any]:
    """Values as they come back from the table (plain JSON types: no tuples, no enums)."""
    loaded: dict[str, Any] = json.loads(json.dumps(values))
    return loaded
