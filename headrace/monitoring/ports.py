"""What the monitoring steps need from AWS, as Protocols: `aws.py` implements them with boto3."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from headrace.drift import DriftResult
from headrace.monitoring.window import StoredObject
from headrace.training.ports import Clock, EventPublisher

__all__ = ["Clock", "EventPublisher"]


class Store(Protocol):
    def read(self, bucket: str, key: str) -> bytes: ...

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...

    def exists(self, bucket: str, key: str) -> bool: ...

    def list(self, bucket: str, prefix: str) -> list[StoredObject]: ...


class Serving(Protocol):
    def artifact(self, endpoint: str) -> tuple[str, str] | None:
        """(endpoint config, ModelDataUrl) of what the endpoint serves now; None when it does not exist."""
        ...


class MonitoringLedger(Protocol):
    def checks(self, model: str, limit: int) -> list[dict[str, Any]]:
        """The model's latest drift checks, newest first."""
        ...

    def put(self, model: str, sk: str, fields: Mapping[str, Any]) -> None: ...


class DriftMetrics(Protocol):
    def publish(self, model: str, result: DriftResult) -> None:
        """Per feature scores and the model's count of drifted features."""
        ...

    def rows(self, model: str, rows: int) -> None: ...
