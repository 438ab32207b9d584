"""What ingest needs from the outside world, as Protocols. `aws.py` implements them with boto3 and
Powertools; unit tests pass in-memory fakes. The domain receives them as arguments, never as globals."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from headrace.ingest.dataset import DatasetVersion
from headrace.ingest.ledger import DatasetEntry
from headrace.ingest.quarantine import Placement, Reason
from headrace.ingest.result import IngestResult


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


class Ledger(Protocol):
    def dataset(self, model: str, sha256: str) -> DatasetEntry | None: ...

    def record_dataset(self, version: DatasetVersion, execution_arn: str, recorded_at: datetime) -> bool:
        """Write the dataset item unless one exists (the first writer wins); True when this call wrote it."""
        ...

    def record_rejection(self, reason: Reason, where: Placement, recorded_at: datetime) -> None: ...


class RunStarter(Protocol):
    def start(self, model: str, name: str, payload: str) -> StartedRun:
        """Start `model`'s training state machine as execution `name`; an existing name is not an error."""
        ...


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None: ...


class MetricSink(Protocol):
    def count(self, name: str, model: str) -> None:
        """Add 1 to metric `name` with the dimension model=`model`."""
        ...


class Once(Protocol):
    """Runs `work` at most once per `key` (completed results are replayed; a concurrent twin is refused)."""

    def __call__(self, key: Mapping[str, str], work: Callable[[], IngestResult]) -> IngestResult: ...


Clock = Callable[[], datetime]


@dataclass(frozen=True)
class IngestPorts:
    store: ObjectStore
    ledger: Ledger
    runs: RunStarter
    events: EventPublisher
    metrics: MetricSink
    once: Once
    clock: Clock
