"""What serving's workflows need from AWS: the shared ports (headrace.ports) and serving's own, as Protocols,
bundled per workflow: `DeployPorts` for the deploy steps, `IdlePorts` for the idle sweep. `aws.py` and
`idle_aws.py` implement them with boto3 and build the bundles; unit tests pass in-memory fakes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from headrace.ledger import DeploymentLedger, IdleLedger
from headrace.ports import Clock, EventPublisher, MetricSink


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


class EndpointScaling(Protocol):
    """Application Auto Scaling for an endpoint's variant (headrace/serving/autoscaling.py)."""

    def register(self, target: Mapping[str, Any], policy: Mapping[str, Any]) -> None:
        """RegisterScalableTarget, then PutScalingPolicy (both update what exists)."""
        ...

    def deregister(self, resource_id: str) -> bool:
        """Delete the target's scaling policies, then DeregisterScalableTarget; False when none was there."""
        ...


@dataclass(frozen=True)
class DeployPorts:
    hosting: Hosting
    ledger: DeploymentLedger
    events: EventPublisher
    metrics: MetricSink
    clock: Clock
    # None: the deploy steps leave Application Auto Scaling alone (tests that do not exercise it).
    scaling: EndpointScaling | None = None


@dataclass(frozen=True)
class HostedEndpoint:
    name: str
    status: str
    config_name: str
    last_modified: datetime


class IdleEndpoints(Protocol):
    def describe(self, name: str) -> HostedEndpoint | None:
        """None when the endpoint does not exist."""
        ...

    def delete(self, name: str) -> None: ...


class InvocationMetrics(Protocol):
    def invocations(self, endpoint: str, variant: str, start: datetime, end: datetime) -> float:
        """Sum of AWS/SageMaker Invocations of the endpoint's variant between `start` and `end`."""
        ...


@dataclass(frozen=True)
class IdlePorts:
    endpoints: IdleEndpoints
    invocations: InvocationMetrics
    ledger: IdleLedger
    events: EventPublisher
    clock: Clock
