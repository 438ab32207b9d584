"""The ports every domain shares, as Protocols: `headrace.aws` implements them with boto3 and Powertools,
tests pass the fakes in tests/fakes.py. A domain's own ports (its ledger, its registry, its hosting) stay in
that domain's ports.py; the domain receives all of them as arguments, never as globals."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

R = TypeVar("R", bound=BaseModel)

# Now, in UTC: injected so that tests decide what time it is.
Clock = Callable[[], datetime]


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        """Put one event with our source on the deployment's bus; a refused entry raises."""
        ...


class MetricSink(Protocol):
    def count(self, name: str, model: str) -> None:
        """Add 1 to metric `name` with the dimension model=`model`."""
        ...


@dataclass(frozen=True)
class ObjectSummary:
    """One object of a listing: what ListObjectsV2 says about it, without its body."""

    key: str
    size: int
    last_modified: datetime


class ObjectStore(Protocol):
    def read(self, bucket: str, key: str) -> bytes: ...

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...


class ListingStore(ObjectStore, Protocol):
    """A store that also answers what is there: drift checks find captured traffic by listing."""

    def exists(self, bucket: str, key: str) -> bool: ...

    def list(self, bucket: str, prefix: str) -> list[ObjectSummary]: ...


class Once(Protocol[R]):
    """Runs `work` at most once per `key` (completed results are replayed; a concurrent twin is refused)."""

    def __call__(self, key: Mapping[str, str], work: Callable[[], R]) -> R: ...
