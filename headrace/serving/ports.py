"""What the deploy steps need from AWS, as Protocols: `aws.py` implements them with boto3."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from headrace.training.ports import Clock, EventPublisher, MetricSink

__all__ = ["Clock", "EventPublisher", "MetricSink"]


@dataclass(frozen=True)
class Package:
    arn: str
    group: str
    version: int
    approval_status: str
    image: str
    model_data_url: str


@dataclass(frozen=True)
class Endpoint:
    name: str
    status: str
    config_name: str
    failure_reason: str | None = None


class Hosting(Protocol):
    def package(self, arn: str) -> Package: ...

    def package_version(self, group: str, version: int) -> Package | None:
        """Version `version` of `group`, None when there is no such version."""
        ...

    def newest_approved(self, group: str) -> int | None:
        """The highest Approved version number of `group`."""
        ...

    def endpoint(self, name: str) -> Endpoint | None:
        """None when the endpoint does not exist."""
        ...

    def ensure_model(self, request: Mapping[str, Any]) -> None:
        """CreateModel unless a model of that name exists (a replayed plan)."""
        ...

    def ensure_endpoint_config(self, request: Mapping[str, Any]) -> None: ...

    def alarms_in_alarm(self, names: list[str]) -> list[str]:
        """Which of the alarms `names` are in ALARM now, with their reasons."""
        ...


class DeploymentLedger(Protocol):
    def put(self, model: str, deployment_id: str, fields: Mapping[str, Any]) -> None:
        """Create or update the deployment's item with `fields`."""
        ...
