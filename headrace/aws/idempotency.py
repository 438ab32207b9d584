"""Work done at most once per key, on Powertools idempotency (records in the ledger table): ingest keys it on
content, retraining on the alarm episode."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from pydantic import BaseModel

from headrace.ledger import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

R = TypeVar("R", bound=BaseModel)


class IdempotentOnce(Generic[R]):
    """Runs `work` at most once per key (completed results are replayed; a concurrent twin is refused).

    The persistence layer is built by the first call, not here: Powertools' DynamoDB layer registers a
    user-agent hook on its client, which builds that client (~70 ms at cold start), and every other client
    is made on first use too (headrace.aws.clients.LazyClient)."""

    def __init__(
        self,
        persistence: Callable[[], BasePersistenceLayer],
        config: IdempotencyConfig,
        result_type: type[R],
        key_prefix: str,
    ) -> None:
        self.config = config
        self._persistence = persistence
        self._result_type = result_type
        self._key_prefix = key_prefix
        self._guarded: Callable[..., Any] | None = None
        self._lock = threading.Lock()

    def __call__(self, key: Mapping[str, str], work: Callable[[], R]) -> R:
        result = self._guard()(key=dict(key), work=work)
        return result if isinstance(result, self._result_type) else self._result_type.model_validate(result)

    def _guard(self) -> Callable[..., Any]:
        with self._lock:
            if self._guarded is None:
                self._guarded = self._decorated(self._persistence())
            return self._guarded

    def _decorated(self, persistence: BasePersistenceLayer) -> Callable[..., Any]:
        # key_prefix pins the record names, so renaming a function never re-opens old keys.
        # Powertools' decorator is untyped; `guarded` keeps its signature at runtime.
        @idempotent_function(  # type: ignore[untyped-decorator]
            data_keyword_argument="key",
            persistence_store=persistence,
            config=self.config,
            output_serializer=PydanticSerializer(self._result_type),
            key_prefix=self._key_prefix,
        )
        def guarded(*, key: dict[str, str], work: Callable[[], R]) -> R:
            return work()

        return guarded  # type: ignore[no-any-return]


def ledger_persistence(table: str, dynamodb: object) -> DynamoDBPersistenceLayer:
    """Idempotency records in the ledger table, under their own partition keys (`idempotency#...`), which
    never collide with a model's (headrace.ledger.keys)."""
    return DynamoDBPersistenceLayer(
        table_name=table,
        key_attr=PARTITION_KEY,
        sort_key_attr=SORT_KEY,
        expiry_attr=TTL_ATTRIBUTE,
        boto3_client=dynamodb,
    )
