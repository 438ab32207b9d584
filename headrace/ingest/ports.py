"""What ingest needs from the outside world: the shared ports (headrace.ports) and ingest's own, as
Protocols. `aws.py` implements them with boto3 and Powertools; unit tests pass in-memory fakes. The domain
receives them as arguments, never as globals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from headrace.ingest.result import IngestResult
from headrace.ledger import DatasetLedger
from headrace.ports import Clock, EventPublisher, MetricSink, Once


@dataclass(frozen=True)
class ObjectRef:
    """One version of one object; `version_id` None means the current version (unversioned bucket)."""

    bucket: str
    key: str
    version_id: str | None = None


@dataclass(frozen=True)
class StoredObject:
    body: bytes
    version_id: str | None


@dataclass(frozen=True)
class ObjectDigest:
    sha256: str
    version_id: str | None


@dataclass(frozen=True)
class StartedRun:
    execution_arn: str
    # False when an execution of this name already existed (a replayed start).
    created: bool


class ObjectStore(Protocol):
    def size(self, ref: ObjectRef) -> int:
        """The object's size in bytes, without reading it."""
        ...

    def read(self, ref: ObjectRef) -> StoredObject: ...

    def digest(self, ref: ObjectRef) -> ObjectDigest:
        """SHA-256 of the object, streamed in bounded memory (for files too large to read whole)."""
        ...

    def copy(self, source: ObjectRef, key: str, size: int) -> None:
        """Server-side, byte-identical copy of a `size`-byte object to `key` in the source's bucket."""
        ...

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...


class RunStarter(Protocol):
    def start(self, model: str, name: str, payload: str) -> StartedRun:
        """Start `model`'s state machine (training, or batch scoring for `IngestPorts.batches`) as execution
        `name`; an existing name is not an error."""
        ...


@dataclass(frozen=True)
class IngestPorts:
    store: ObjectStore
    ledger: DatasetLedger
    runs: RunStarter
    events: EventPublisher
    metrics: MetricSink
    once: Once[IngestResult]
    clock: Clock
    # Each model's batch state machine (issue 17); None where a caller wires no batch scoring.
    batches: RunStarter | None = None
