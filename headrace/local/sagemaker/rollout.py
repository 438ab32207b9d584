"""A blue/green UpdateEndpoint, as SageMaker's deployment guardrails run it.

The new fleet starts beside the old; traffic shifts by the canary or linear steps of the caller's
DeploymentConfig, each held for WaitIntervalInSeconds, then the bake (TerminationWaitInSeconds). While it
shifts and bakes, the AutoRollbackConfiguration alarms are watched, and one in ALARM sends all traffic back
to the old fleet, which ends InService on its old config (silently, as SageMaker does). A fleet is stopped
only after new requests stopped reaching it and its in-flight ones finished, so callers see no failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from headrace.local.sagemaker.fleets import Fleet, HostedEndpoint

log = logging.getLogger("headrace.local")

ALARM_POLL_S = 0.25

# The state of each CloudWatch alarm named (those that exist), e.g. {"guard": "ALARM"}.
AlarmStates = Callable[[list[str]], dict[str, str]]


def traffic_steps(routing: dict[str, Any]) -> list[float]:
    """The new fleet's share of traffic at each step of a TrafficRoutingConfiguration."""
    kind = routing.get("Type", "ALL_AT_ONCE")
    if kind == "CANARY":
        return [min(1.0, float(routing.get("CanarySize", {}).get("Value", 10)) / 100), 1.0]
    if kind == "LINEAR":
        step = float(routing.get("LinearStepSize", {}).get("Value", 25)) / 100
        shares: list[float] = []
        share = 0.0
        while share < 1.0 - 1e-9:
            share = min(1.0, share + step)
            shares.append(share)
        return shares
    return [1.0]


def shift_traffic(
    hosted: HostedEndpoint,
    record: Any,
    green: list[Fleet],
    config_name: str,
    deployment: dict[str, Any],
    alarm_states: AlarmStates,
) -> bool:
    """Move the endpoint's traffic from its current fleets to `green` (already started), step by step.

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
    steps = traffic_steps(routing)
    wait_s = float(routing.get("WaitIntervalInSeconds", 0))
    bake_s = float(policy.get("TerminationWaitInSeconds", 0))
    fired: str | None = None
    for index, share in enumerate(steps):
        hosted.shift(blue, green, share)
        # DescribeEndpoint's PendingDeploymentSummary: the new config and its live share, as on AWS.
        record.pending_deployment_summary = {
            "EndpointConfigName": config_name,
            "ProductionVariants": [
                {"VariantName": f.variant, "CurrentWeight": f.weight, "DesiredWeight": 1.0} for f in green
            ],
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
