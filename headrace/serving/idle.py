"""Tearing down idle endpoints (`rollout.idle_hours`): an hourly sweep deletes the endpoint of each model
that sets it once the endpoint has served no invocation for that many hours.

Only the endpoint goes (DeleteEndpoint): its EndpointConfigs and Models stay, so approving a version again
or `headrace rollback MODEL VERSION` recreates it (the deploy plan creates an endpoint that does not
exist). An endpoint is deleted only when it is InService (not mid-rollout), was last modified more than
`idle_hours` ago (a fresh deployment gets its full window) and the Invocations sum over that window is 0.
Every decision is kept in the ledger (`idle#<time>`); a deletion is announced on the bus as well.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from headrace.config import ModelConfig
from headrace.ledger_keys import sort_time
from headrace.naming import Names
from headrace.serving.rollout import VARIANT
from headrace.training.ports import Clock, EventPublisher

log = logging.getLogger("headrace.serving")

ENDPOINT_DELETED_AS_IDLE = "Endpoint Deleted As Idle"
IN_SERVICE = "InService"
# A "kept" decision is made every hour for every model that sets idle_hours: the ledger's TTL attribute
# (stacks/data_store.py LEDGER_TTL_ATTRIBUTE) drops those after a while; deletions stay.
TTL_ATTRIBUTE = "expiration"
KEPT_RETENTION = timedelta(days=14)


def function_name(names: Names) -> str:
    """The sweep's Lambda function, one per deployment."""
    return f"{names.prefix}-idle-endpoints"


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


class IdleLedger(Protocol):
    def put(self, model: str, sk: str, fields: Mapping[str, Any]) -> None: ...


class IdleDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    endpoint: str
    config: str | None = None
    decision: Literal["deleted", "kept"]
    reason: str
    idle_hours: int
    decided_at: datetime
    invocations: float | None = None


def idle_sk(decided_at: datetime) -> str:
    return f"idle#{sort_time(decided_at)}"


def _decide(
    model: ModelConfig,
    hours: int,
    names: Names,
    endpoints: IdleEndpoints,
    metrics: InvocationMetrics,
    now: datetime,
) -> IdleDecision:
    name = names.endpoint(model.name)
    decided: dict[str, Any] = {
        "model": model.name,
        "endpoint": name,
        "idle_hours": hours,
        "decided_at": now,
    }
    window = timedelta(hours=hours)
    endpoint = endpoints.describe(name)
    if endpoint is None:
        return IdleDecision(**decided, decision="kept", reason="no endpoint (nothing to delete)")
    decided["config"] = endpoint.config_name
    if endpoint.status != IN_SERVICE:
        return IdleDecision(**decided, decision="kept", reason=f"the endpoint is {endpoint.status}")
    if now - endpoint.last_modified < window:
        return IdleDecision(
            **decided,
            decision="kept",
            reason=(
                f"last modified at {endpoint.last_modified:%Y-%m-%d %H:%M} UTC, "
                f"less than {hours} hour(s) ago (rollout.idle_hours)"
            ),
        )
    served = metrics.invocations(name, VARIANT, now - window, now)
    decided["invocations"] = served
    if served > 0:
        return IdleDecision(
            **decided, decision="kept", reason=f"{served:g} invocation(s) in the last {hours} hour(s)"
        )
    endpoints.delete(name)
    return IdleDecision(
        **decided,
        decision="deleted",
        reason=(
            f"no invocation in the last {hours} hour(s) (rollout.idle_hours); approve a version again "
            f"or `headrace rollback {model.name} VERSION` to recreate it from config {endpoint.config_name}"
        ),
    )


def sweep(
    models: Sequence[ModelConfig],
    names: Names,
    *,
    endpoints: IdleEndpoints,
    metrics: InvocationMetrics,
    ledger: IdleLedger,
    events: EventPublisher,
    clock: Clock,
) -> list[IdleDecision]:
    """One decision per model that sets `rollout.idle_hours`, in the order given; the others are skipped."""
    decisions: list[IdleDecision] = []
    for model in models:
        hours = model.rollout.idle_hours
        if hours is None:
            continue
        now = clock()
        decision = _decide(model, hours, names, endpoints, metrics, now)
        fields: dict[str, Any] = {"kind": "idle", **decision.model_dump(mode="json")}
        if decision.decision == "kept":
            fields[TTL_ATTRIBUTE] = int((now + KEPT_RETENTION).timestamp())
        ledger.put(model.name, idle_sk(now), fields)
        if decision.decision == "deleted":
            events.publish(ENDPOINT_DELETED_AS_IDLE, decision.model_dump(mode="json"))
        log.info("endpoint %s %s: %s", decision.endpoint, decision.decision, decision.reason)
        decisions.append(decision)
    return decisions
