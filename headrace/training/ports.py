"""What the training steps need from the outside world, as Protocols. `aws.py` implements them with boto3
and Powertools; unit tests pass in-memory fakes. The steps receive them as arguments, never as globals."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from headrace.training.payloads import ApprovalStatus, ChampionInfo


class ObjectStore(Protocol):
    def read(self, bucket: str, key: str) -> bytes: ...

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...


@dataclass(frozen=True)
class StartedRun:
    # The stored start: this call's, or the first call's when the item existed (a replayed Prepare).
    started_at: datetime
    created: bool


class RunLedger(Protocol):
    def start_run(self, item: Mapping[str, Any]) -> StartedRun:
        """Write the run item unless it exists."""
        ...

    def update_run(
        self, model: str, job: str, fields: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
    ) -> None:
        """Set `fields` on the run item (creating it if missing); `defaults` only where not yet set."""
        ...


@dataclass(frozen=True)
class PackageVersion:
    arn: str
    group: str
    version: int
    approval_status: ApprovalStatus


class Registry(Protocol):
    def champion(self, group: str) -> ChampionInfo | None:
        """The newest Approved version of `group`, None when there is none (or no group yet)."""
        ...

    def ensure_group(self, group: str, description: str, tags: Mapping[str, str]) -> None: ...

    def find_version(self, group: str, training_job: str, created_after: datetime) -> str | None:
        """The ARN of the version of `group` registered for `training_job` since `created_after`, if any."""
        ...

    def create_version(self, request: Mapping[str, Any]) -> str:
        """CreateModelPackage with `request` as its parameters; returns the new version's ARN."""
        ...

    def describe_version(self, arn: str) -> PackageVersion: ...


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None: ...


class MetricSink(Protocol):
    def count(self, name: str, model: str) -> None:
        """Add 1 to metric `name` with the dimension model=`model`."""
        ...


Clock = Callable[[], datetime]
