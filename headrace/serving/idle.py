"""Tearing down idle endpoints (`rollout.idle_hours`): an hourly sweep deletes the endpoint of each model
that sets it once the endpoint has served no invocation for that many hours.

Only the endpoint goes (DeleteEndpoint): its EndpointConfigs and Models stay, so approving a version again
or `headrace rollback MODEL VERSION` recreates it (the deploy plan creates an endpoint that does not
exist). An endpoint is deleted only when it is InService (not mid-rollout), was last modified more than
`idle_hours` ago (a fresh deployment gets its full window) and the Invocations sum over that window is 0.
Every decision is kept in the ledger (headrace.ledger.IdleDecision); a deletion is announced on the bus as
well.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from headrace.config import ModelConfig
from headrace.ledger import IdleDecision
from headrace.naming import Names
from headrace.serving.ports import IdleEndpoints, IdlePorts, InvocationMetrics
from headrace.serving.rollout import VARIANT

log = logging.getLogger("headrace.serving")

ENDPOINT_DELETED_AS_IDLE = "Endpoint Deleted As Idle"
IN_SERVICE = "InService"
# A "kept" decision is made every hour for every model that sets idle_hours: the ledger's TTL drops those
# after a while; deletions stay.
KEPT_RETENTION = timedelta(days=14)


def function_name(names: Names) -> str:
    """The sweep's Lambda function, one per deployment."""
    return f"{names.prefix}-idle-endpoints"


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
    ports: IdlePorts,
) -> list[IdleDecision]:
    """One decision per model that sets `rollout.idle_hours`, in the order given; the others are skipped."""
    decisions: list[IdleDecision] = []
    for model in models:
        hours = model.rollout.idle_hours
        if hours is None:
            continue
        now = ports.clock()
        decision = _decide(model, hours, names, ports.endpoints, ports.invocations, now)
        kept = decision.decision == "kept"
        ports.ledger.record(decision, expires_at=now + KEPT_RETENTION if kept else None)
        if decision.decision == "deleted":
            ports.events.publish(ENDPOINT_DELETED_AS_IDLE, decision.model_dump(mode="json"))
        log.info("endpoint %s %s: %s", decision.endpoint, decision.decision, decision.reason)
        decisions.append(decision)
    return decisions
