"""The ledger on DynamoDB, with boto3's low-level client (any client works: AWS, the local plane's moto
server, moto in-process). One table; every kind's key comes from its item model."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from headrace.aws.errors import is_conditional_check_failed
from headrace.ledger.item import LedgerItem
from headrace.ledger.keys import PARTITION_KEY, PREFIXES, SORT_KEY, Kind, model_pk, plain, sort_key, sort_time
from headrace.ledger.kinds import read_item, stored_item

# The adapter reads and writes every kind; each method imports its kind's module (a no-op once imported),
# so a function imports only the kinds its own modules name (headrace.ledger's docstring).
if TYPE_CHECKING:
    from headrace.ledger.batches import BatchItem
    from headrace.ledger.checks import DriftCheckItem
    from headrace.ledger.datasets import DatasetItem
    from headrace.ledger.decisions import RetrainDecision
    from headrace.ledger.deployments import DeploymentItem
    from headrace.ledger.labels import LabelFileItem
    from headrace.ledger.quality import QualityCheckItem
    from headrace.ledger.runs import RunItem, StartedRun

Item = TypeVar("Item", bound=LedgerItem)


def dynamo_value(value: Any) -> Any:
    """DynamoDB takes no floats: numbers go in as text-exact Decimals."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, list):
        return [dynamo_value(v) for v in value]
    if isinstance(value, dict):
        return {k: dynamo_value(v) for k, v in value.items()}
    return value


class DynamoLedger:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._to = TypeSerializer()
        self._from = TypeDeserializer()

    # --- writing ------------------------------------------------------------------------------------------

    def record(self, item: LedgerItem, *, expires_at: datetime | None = None) -> None:
        """Put the item whole, replacing any of the same key."""
        self._dynamodb.put_item(TableName=self._table, Item=self._serialize(stored_item(item, expires_at)))

    def record_dataset(self, item: DatasetItem) -> bool:
        return self._put_new(item)

    def record_label_file(self, item: LabelFileItem) -> bool:
        return self._put_new(item)

    def record_attempt(self, item: DatasetItem, previous_execution_arn: str) -> bool:
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=self._serialize(stored_item(item)),
                ConditionExpression="execution_arn = :previous",
                ExpressionAttributeValues={":previous": {"S": previous_execution_arn}},
            )
        except ClientError as exc:
            if is_conditional_check_failed(exc):
                return False
            raise
        return True

    def start_run(self, item: RunItem) -> StartedRun:
        from headrace.ledger.runs import StartedRun

        if self._put_new(item):
            return StartedRun(started_at=datetime.fromisoformat(str(item.started_at)), created=True)
        stored = self._get(item.table_key)
        assert stored is not None  # the conditional put just found it
        return StartedRun(started_at=datetime.fromisoformat(str(stored["started_at"])), created=False)

    def update(self, item: LedgerItem, keep_existing: Collection[str] = ()) -> None:
        """Set the item's fields, creating it if missing; identity and `keep_existing` only where unset."""
        keep = item.IDENTITY | set(keep_existing)
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        assignments = []
        for index, (name, value) in enumerate(item.attributes().items()):
            names[f"#f{index}"], values[f":f{index}"] = name, self._to.serialize(dynamo_value(value))
            value_ref = f"if_not_exists(#f{index}, :f{index})" if name in keep else f":f{index}"
            assignments.append(f"#f{index} = {value_ref}")
        self._dynamodb.update_item(
            TableName=self._table,
            Key=self._serialize(item.table_key),
            UpdateExpression="SET " + ", ".join(assignments),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def _put_new(self, item: LedgerItem) -> bool:
        """Put the item unless one of its key exists; True when this call wrote it."""
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=self._serialize(stored_item(item)),
                ConditionExpression=f"attribute_not_exists({SORT_KEY})",
            )
        except ClientError as exc:
            if is_conditional_check_failed(exc):
                return False
            raise
        return True

    # --- reading ------------------------------------------------------------------------------------------

    def dataset(self, model: str, sha256: str) -> DatasetItem | None:
        from headrace.ledger.datasets import DatasetItem

        stored = self._get({PARTITION_KEY: model_pk(model), SORT_KEY: sort_key(Kind.DATASET, sha256)})
        return None if stored is None else DatasetItem.from_stored(stored)

    def label_file(self, model: str, sha256: str) -> LabelFileItem | None:
        from headrace.ledger.labels import LabelFileItem

        stored = self._get({PARTITION_KEY: model_pk(model), SORT_KEY: sort_key(Kind.LABELS, sha256)})
        return None if stored is None else LabelFileItem.from_stored(stored)

    def label_files(self, model: str) -> list[LabelFileItem]:
        """Accepted label files, in arrival order (the order the later-file-wins rule applies)."""
        from headrace.ledger.labels import LabelFileItem

        return sorted(self._query(LabelFileItem, model), key=lambda f: f.accepted_key)

    def datasets(self, model: str) -> list[DatasetItem]:
        from headrace.ledger.datasets import DatasetItem

        return self._query(DatasetItem, model)

    def newest_dataset(self, model: str) -> DatasetItem | None:
        from headrace.ledger.datasets import DatasetItem

        return max(self._query(DatasetItem, model), key=lambda d: d.received_at, default=None)

    def datasets_since(self, model: str, since: datetime) -> list[DatasetItem]:
        from headrace.ledger.datasets import DatasetItem

        # received_at is sort_time text: ordered as the times are.
        after = [d for d in self._query(DatasetItem, model) if d.received_at >= sort_time(since)]
        return sorted(after, key=lambda d: d.received_at, reverse=True)

    def run(self, model: str, job_name: str) -> RunItem | None:
        from headrace.ledger.runs import RunItem

        stored = self._get({PARTITION_KEY: model_pk(model), SORT_KEY: sort_key(Kind.RUN, job_name)})
        return None if stored is None else RunItem.from_stored(stored)

    def runs(self, model: str) -> list[RunItem]:
        from headrace.ledger.runs import RunItem

        return self._query(RunItem, model)

    def deployments(self, model: str) -> list[DeploymentItem]:
        """Newest first (deployment ids start with the time Plan ran)."""
        from headrace.ledger.deployments import DeploymentItem

        return sorted(self._query(DeploymentItem, model), key=lambda d: d.deployment_id, reverse=True)

    def drift_checks(self, model: str, limit: int | None = None) -> list[DriftCheckItem]:
        from headrace.ledger.checks import DriftCheckItem

        return self._query(DriftCheckItem, model, newest_first=True, limit=limit)

    def quality_checks(self, model: str, limit: int | None = None) -> list[QualityCheckItem]:
        from headrace.ledger.quality import QualityCheckItem

        return self._query(QualityCheckItem, model, newest_first=True, limit=limit)

    def batch(self, model: str, job_name: str) -> BatchItem | None:
        from headrace.ledger.batches import BatchItem

        stored = self._get({PARTITION_KEY: model_pk(model), SORT_KEY: sort_key(Kind.BATCH, job_name)})
        return None if stored is None else BatchItem.from_stored(stored)

    def batches(self, model: str) -> list[BatchItem]:
        """Newest first (by start)."""
        from headrace.ledger.batches import BatchItem

        return sorted(self._query(BatchItem, model), key=lambda b: b.started_at, reverse=True)

    def retrains(self, model: str, since: datetime) -> list[RetrainDecision]:
        from headrace.ledger.decisions import RetrainDecision

        return [d for d in self._query(RetrainDecision, model, newest_first=True) if d.decided_at >= since]

    def partition(self, model: str) -> list[LedgerItem]:
        """Every item of the model's partition, of every kind, in sort-key order."""
        return [item for stored in self._stored(model) if (item := read_item(stored)) is not None]

    def everywhere(self, kind: type[Item]) -> list[Item]:
        """Every item of one kind in every partition, models of this deployment or not (a Scan, for
        `headrace status`: rejections and misplaced files land under whatever prefix they were dropped in)."""
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#sk": SORT_KEY},
            "ExpressionAttributeValues": {":prefix": {"S": PREFIXES[kind.KIND]}},
        }
        items: list[Item] = []
        for page in self._dynamodb.get_paginator("scan").paginate(**arguments):
            items.extend(kind.from_stored(self._deserialize(item)) for item in page["Items"])
        return sorted(items, key=lambda item: (item.model, item.sort_id))

    def _get(self, key: Mapping[str, str]) -> dict[str, Any] | None:
        found = self._dynamodb.get_item(TableName=self._table, Key=self._serialize(key), ConsistentRead=True)
        return None if "Item" not in found else self._deserialize(found["Item"])

    def _query(
        self, kind: type[Item], model: str, *, newest_first: bool = False, limit: int | None = None
    ) -> list[Item]:
        return [kind.from_stored(s) for s in self._stored(model, PREFIXES[kind.KIND], newest_first, limit)]

    def _stored(
        self, model: str, prefix: str = "", newest_first: bool = False, limit: int | None = None
    ) -> list[dict[str, Any]]:
        condition = f"{PARTITION_KEY} = :pk"
        values = {":pk": {"S": model_pk(model)}}
        if prefix:
            condition += f" AND begins_with({SORT_KEY}, :prefix)"
            values[":prefix"] = {"S": prefix}
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
        }
        if limit:
            arguments["Limit"] = limit
        items: list[dict[str, Any]] = []
        for page in self._dynamodb.get_paginator("query").paginate(**arguments):
            items.extend(self._deserialize(item) for item in page["Items"])
            if limit and len(items) >= limit:
                return items[:limit]
        return items

    def _serialize(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return {k: self._to.serialize(dynamo_value(v)) for k, v in item.items()}

    def _deserialize(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return {k: plain(self._from.deserialize(v)) for k, v in item.items()}
