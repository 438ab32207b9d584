"""A blue/green UpdateEndpoint, as SageMaker's deployment guardrails run it.

The new fleet starts beside the old; traffic shifts by the canary or linear steps of the caller's
DeploymentConfig, each held for WaitIntervalInSeconds, then the bake (TerminationWaitInSeconds). A step turns
on whole instances of the new fleet, and its share of traffic is those instances over the fleet's
(deployment-guardrails-blue-green-canary.html: the canary is "the portion of your green fleet that turns on
to receive traffic"; API_CapacitySize.html: a size is an INSTANCE_COUNT or a CAPACITY_PERCENT of the fleet).
While it shifts and bakes, the AutoRollbackConfiguration alarms are watched, and one in ALARM sends all
traffic back to the old fleet, which ends InService on its old config (silently, as SageMaker does). A fleet
is stopped only after new requests stopped reaching it and its in-flight ones finished, so callers see no
failure.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from headrace.local.sagemaker.capacity import variant_summaries
from headrace.local.sagemaker.fleets import Fleet, HostedEndpoint

log = logging.getLogger("headrace.local")

ALARM_POLL_S = 0.25

# The state of each CloudWatch alarm named (those that exist), e.g. {"guard": "ALARM"}.
AlarmStates = Callable[[list[str]], dict[str, str]]


def fleet_size(variants: list[dict[str, Any]]) -> int:
    """The instances of the new fleet (the config's InitialInstanceCount; local variants shift together, so
    the smallest of them, whose steps are the coarsest)."""
    counts = [v["InitialInstanceCount"] for v in variants if isinstance(v.get("InitialInstanceCount"), int)]
    return max(1, min(counts, default=1))


def step_instances(size: dict[str, Any], instances: int) -> int:
    """Whole instances a canary or linear step of `size` turns on in a fleet of `instances`.

    SageMaker does not document how a CAPACITY_PERCENT rounds (seams/sagemaker_rules.py accepts either
    reading): up, so that a step is never none of the fleet, and to no more than half of it, the most a
    step may be; a fleet of one has no such step (the rules refuse it) and turns on its only instance."""
    value = int(size.get("Value", 0))
    if size.get("Type") == "INSTANCE_COUNT":
        wanted = value
    else:
        wanted = min(math.ceil(instances * value / 100), instances // 2)
    return max(1, min(wanted, instances))


def traffic_steps(routing: dict[str, Any], instances: int) -> list[float]:
    """The new fleet's share of traffic at each step of a TrafficRoutingConfiguration, for a fleet of
    `instances`: the instances turned on so far over all of them."""
    kind = routing.get("Type", "ALL_AT_ONCE")
    if kind == "CANARY":
        canary = step_instances(
            routing.get("CanarySize") or {"Type": "CAPACITY_PERCENT", "Value": 10}, instances
        )
        return [canary / instances, 1.0] if canary < instances else [1.0]
    if kind == "LINEAR":
        size = routing.get("LinearStepSize") or {"Type": "CAPACITY_PERCENT", "Value": 25}
        step = step_instances(size, instances)
        return [min(instances, on) / instances for on in range(step, instances + step, step)]
    return [1.0]


def shift_traffic(
    hosted: HostedEndpoint,
    record: Any,
    green: list[Fleet],
    config_name: str,
    deployment: dict[str, Any],
    alarm_states: AlarmStates,
    instances: int,
) -> bool:
    """Move the endpoint's traffic from its current fleets to `green` (already started, `instances` per
    variant), step by step.

    True once green serves everything and the old fleets are retired; False when a guard alarm fired and
    the old fleets took all traffic back (green retired, the record InService on its old config)."""
    name = hosted.name
    old_config = record.endpoint_config_name
    with hosted.lock:
        blue = list(hosted.fleets)
        hosted.fleets = blue + green
    policy = deployment.get("BlueGreenUpdatePolicy", {})
    routing = policy.get("TrafficRoutingConfiguration", {"Type": "ALL_AT_ONCE"})
    alarms = [a["AlarmName"] for a in deployment.get("AutoRollbackConfiguration", {}).get("Alarms", [])]
    steps = traffic_steps(routing, instances)
    wait_s = float(routing.get("WaitIntervalInSeconds", 0))
    bake_s = float(policy.get("TerminationWaitInSeconds", 0))
    fired: str | None = None
    for index, share in enumerate(steps):
        hosted.shift(blue, green, share)
        # DescribeEndpoint's PendingDeploymentSummary: the new config and its live share, as on AWS, one
        # summary per variant (API_PendingProductionVariantSummary.html), not one per instance.
        record.pending_deployment_summary = {
            "EndpointConfigName": config_name,
            "ProductionVariants": [s | {"DesiredWeight": 1.0} for s in variant_summaries(green)],
            "StartTime": datetime.now(UTC),
        }
        log.info("endpoint %s: %d%% of traffic on %s", name, round(share * 100), config_name)
        last = index == len(steps) - 1
        fired = _watch(alarm_states, alarms, bake_s if last else wait_s)
        if fired:
            break
    if fired:
        log.warning("endpoint %s: alarm %s fired; rolling back to %s", name, fired, old_config)
        record.endpoint_status = "RollingBack"
        hosted.shift(blue, green, 0.0)
        hosted.retire(green)
        record.pending_deployment_summary = None
        record.endpoint_status = "InService"
        return False
    hosted.retire(blue)
    return True


def _watch(alarm_states: AlarmStates, alarms: list[str], seconds: float) -> str | None:
    """Hold for `seconds`, looking at the guard alarms; the first one in ALARM, or None."""
    deadline = time.monotonic() + seconds
    while True:
        if alarms:
            states = alarm_states(alarms)
            fired = next((a for a in alarms if states.get(a) == "ALARM"), None)
            if fired:
                return fired
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(ALARM_POLL_S, remaining))
