"""A blue/green step of the local SageMaker turns on whole instances of the new fleet, and its share of
traffic is those instances over the fleet's, whatever the size's Type
(https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CapacitySize.html)."""

from __future__ import annotations

from typing import Any

import pytest

from headrace.local.sagemaker.rollout import fleet_size, step_instances, traffic_steps
from headrace.local.seams.sagemaker_rules import step_fits


def _canary(kind: str, value: int) -> dict[str, Any]:
    return {"Type": "CANARY", "CanarySize": {"Type": kind, "Value": value}, "WaitIntervalInSeconds": 0}


def _linear(kind: str, value: int) -> dict[str, Any]:
    return {"Type": "LINEAR", "LinearStepSize": {"Type": kind, "Value": value}, "WaitIntervalInSeconds": 0}


@pytest.mark.parametrize(
    ("routing", "instances", "shares"),
    [
        (_canary("CAPACITY_PERCENT", 10), 2, [0.5, 1.0]),  # one instance of two: half, not a tenth
        (_canary("CAPACITY_PERCENT", 10), 20, [0.1, 1.0]),
        (_canary("CAPACITY_PERCENT", 50), 3, [1 / 3, 1.0]),  # 1.5 instances: at most half the fleet
        (_canary("INSTANCE_COUNT", 1), 4, [0.25, 1.0]),  # one instance, not 1% of the traffic
        (_canary("INSTANCE_COUNT", 2), 4, [0.5, 1.0]),
        (_linear("CAPACITY_PERCENT", 25), 4, [0.25, 0.5, 0.75, 1.0]),
        (_linear("CAPACITY_PERCENT", 10), 3, [1 / 3, 2 / 3, 1.0]),
        (_linear("INSTANCE_COUNT", 2), 5, [0.4, 0.8, 1.0]),
        ({"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}, 4, [1.0]),
    ],
)
def test_each_step_s_share_is_its_instances_over_the_fleet(
    routing: dict[str, Any], instances: int, shares: list[float]
) -> None:
    assert traffic_steps(routing, instances) == pytest.approx(shares)


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("kind", ["CAPACITY_PERCENT", "INSTANCE_COUNT"])
def test_a_step_the_rules_accept_turns_on_a_number_of_instances_they_accept(linear: bool, kind: str) -> None:
    """Where UpdateEndpoint's rules accept a size (either rounding of a percentage), the instances the
    rollout turns on are a step those rules accept too."""
    for instances in range(1, 25):
        for value in range(1, 101 if kind == "CAPACITY_PERCENT" else instances + 1):
            size = {"Type": kind, "Value": value}
            if not step_fits(linear, size, instances):
                continue
            chosen = {"Type": "INSTANCE_COUNT", "Value": step_instances(size, instances)}
            assert step_fits(linear, chosen, instances), (size, instances, chosen)


def test_the_fleet_is_the_config_s_initial_instance_count() -> None:
    assert fleet_size([{"VariantName": "AllTraffic", "InitialInstanceCount": 3}]) == 3
    assert fleet_size([{"InitialInstanceCount": 4}, {"InitialInstanceCount": 2}]) == 2
    assert fleet_size([{"VariantName": "serverless"}]) == 1
