"""Tearing down idle endpoints: deleted only when InService, old enough and without an invocation in the
window of `rollout.idle_hours`; every decision kept in the ledger, a deletion announced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from headrace.config import ModelConfig, RolloutConfig
from headrace.ledger import TTL_ATTRIBUTE, IdleDecision, MemoryLedger
from headrace.naming import Names
from headrace.serving.idle import (
    ENDPOINT_DELETED_AS_IDLE,
    sweep,
)
from headrace.serving.ports import HostedEndpoint, IdlePorts
from headrace.serving.rollout import VARIANT, hosted_name
from tests.fakes import FakeEvents, fixed_clock

NAMES = Names("dev")
ENDPOINT = NAMES.endpoint("churn")
CONFIG = f"{ENDPOINT}-v3-0123abcd"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class FakeEndpoints:
    def __init__(self, endpoint: HostedEndpoint | None) -> None:
        self.endpoint = endpoint
        self.deleted: list[str] = []

    def describe(self, name: str) -> HostedEndpoint | None:
        return self.endpoint if self.endpoint is not None and self.endpoint.name == name else None

    def delete(self, name: str) -> None:
        self.deleted.append(name)


class FakeInvocations:
    def __init__(self, invocations: float = 0.0) -> None:
        self.served = invocations
        self.asked: list[tuple[str, str, datetime, datetime]] = []

    def invocations(self, endpoint: str, variant: str, start: datetime, end: datetime) -> float:
        self.asked.append((endpoint, variant, start, end))
        return self.served


def _idle(model: ModelConfig, hours: int | None = 24) -> ModelConfig:
    return model.model_copy(update={"rollout": model.rollout.model_copy(update={"idle_hours": hours})})


def _endpoint(status: str = "InService", age: timedelta = timedelta(days=3)) -> HostedEndpoint:
    return HostedEndpoint(name=ENDPOINT, status=status, config_name=CONFIG, last_modified=NOW - age)


def _sweep(
    model: ModelConfig,
    endpoints: FakeEndpoints,
    metrics: FakeInvocations | None = None,
    ledger: MemoryLedger | None = None,
    events: FakeEvents | None = None,
) -> list[IdleDecision]:
    ports = IdlePorts(
        endpoints=endpoints,
        invocations=metrics or FakeInvocations(),
        ledger=ledger or MemoryLedger(),
        events=events or FakeEvents(),
        clock=fixed_clock(NOW),
    )
    return sweep([model], NAMES, ports)


def test_an_idle_endpoint_is_deleted_recorded_and_announced(example_model: ModelConfig) -> None:
    endpoints, metrics, ledger, events = (
        FakeEndpoints(_endpoint()),
        FakeInvocations(0),
        MemoryLedger(),
        FakeEvents(),
    )
    [decision] = _sweep(_idle(example_model, 24), endpoints, metrics, ledger, events)
    assert decision.decision == "deleted"
    assert (decision.endpoint, decision.config, decision.invocations) == (ENDPOINT, CONFIG, 0)
    assert "rollback churn" in decision.reason
    assert endpoints.deleted == [ENDPOINT]
    # The window is the last idle_hours hours of the variant's traffic.
    assert metrics.asked == [(ENDPOINT, VARIANT, NOW - timedelta(hours=24), NOW)]
    item = ledger.stored(decision) or {}
    assert item["kind"] == "idle"
    assert item["decision"] == "deleted"
    assert (item["model"], item["endpoint"], item["config"]) == ("churn", ENDPOINT, CONFIG)
    assert TTL_ATTRIBUTE not in item  # a deletion stays in the ledger
    assert events.published == [(ENDPOINT_DELETED_AS_IDLE, decision.model_dump(mode="json"))]


def test_an_endpoint_that_was_invoked_is_kept(example_model: ModelConfig) -> None:
    endpoints, ledger, events = FakeEndpoints(_endpoint()), MemoryLedger(), FakeEvents()
    [decision] = _sweep(_idle(example_model), endpoints, FakeInvocations(3), ledger, events)
    assert decision.decision == "kept"
    assert "3 invocation(s) in the last 24 hour(s)" in decision.reason
    assert endpoints.deleted == []
    assert events.published == []
    item = ledger.stored(decision) or {}
    assert (item["decision"], item["reason"]) == ("kept", decision.reason)
    assert item[TTL_ATTRIBUTE] > int(NOW.timestamp())


def test_a_recently_modified_endpoint_is_kept_without_asking_for_metrics(example_model: ModelConfig) -> None:
    endpoints, metrics = FakeEndpoints(_endpoint(age=timedelta(hours=5))), FakeInvocations(0)
    [decision] = _sweep(_idle(example_model, 6), endpoints, metrics)
    assert decision.decision == "kept"
    assert "less than 6 hour(s) ago" in decision.reason
    assert endpoints.deleted == []
    assert metrics.asked == []


@pytest.mark.parametrize("status", ["Updating", "Creating", "Failed", "RollingBack"])
def test_an_endpoint_not_in_service_is_kept(example_model: ModelConfig, status: str) -> None:
    endpoints = FakeEndpoints(_endpoint(status=status))
    [decision] = _sweep(_idle(example_model), endpoints)
    assert (decision.decision, decision.reason) == ("kept", f"the endpoint is {status}")
    assert endpoints.deleted == []


def test_a_missing_endpoint_is_kept_as_nothing_to_delete(example_model: ModelConfig) -> None:
    endpoints = FakeEndpoints(None)
    [decision] = _sweep(_idle(example_model), endpoints)
    assert decision.decision == "kept"
    assert decision.config is None
    assert "no endpoint" in decision.reason
    assert endpoints.deleted == []


def test_a_model_without_idle_hours_is_never_looked_at(example_model: ModelConfig) -> None:
    endpoints, metrics, ledger, events = (
        FakeEndpoints(_endpoint()),
        FakeInvocations(0),
        MemoryLedger(),
        FakeEvents(),
    )
    assert example_model.rollout.idle_hours is None
    assert _sweep(example_model, endpoints, metrics, ledger, events) == []
    assert endpoints.deleted == []
    assert metrics.asked == []
    assert ledger.items == {}
    assert events.published == []


@pytest.mark.parametrize("hours", [0, 721])
def test_idle_hours_is_bounded(hours: int) -> None:
    with pytest.raises(ValidationError, match="idle_hours"):
        RolloutConfig(idle_hours=hours)


def test_idle_hours_does_not_change_the_hosted_config_name(example_model: ModelConfig) -> None:
    def name(model: ModelConfig) -> str:
        return hosted_name(model, NAMES, 3, "image", "s3://bucket/model.tar.gz")

    assert name(example_model) == name(_idle(example_model, 12))
