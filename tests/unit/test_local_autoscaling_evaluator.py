"""The local evaluator reads targets, policies and Invocations through the AWS APIs, scales through
`scale`, leaves an endpoint under update alone and records each change as a scaling activity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from headrace.local.autoscaling.evaluator import ScalingEvaluator, ScalingEvaluators

RESOURCE = "endpoint/ep/variant/AllTraffic"


class FakeClients:
    def __init__(
        self, invocations: float, status: str = "InService", instances: int = 1, resource: str = RESOURCE
    ) -> None:
        self.invocations, self.status, self.instances = invocations, status, instances
        self.resource = resource

    def client(self, name: str) -> Any:
        return self

    def describe_scalable_targets(self, **_: Any) -> dict[str, Any]:
        return {"ScalableTargets": [{"ResourceId": self.resource, "MinCapacity": 1, "MaxCapacity": 3}]}

    def describe_scaling_policies(self, **_: Any) -> dict[str, Any]:
        config = {
            "TargetValue": 60.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
            "ScaleInCooldown": 10,
            "ScaleOutCooldown": 5,
        }
        return {
            "ScalingPolicies": [
                {
                    "ResourceId": self.resource,
                    "PolicyType": "TargetTrackingScaling",
                    "TargetTrackingScalingPolicyConfiguration": config,
                }
            ]
        }

    def describe_endpoint(self, **_: Any) -> dict[str, Any]:
        variant = {"VariantName": "AllTraffic", "CurrentInstanceCount": self.instances}
        return {"EndpointStatus": self.status, "ProductionVariants": [variant]}

    def get_metric_statistics(self, **_: Any) -> dict[str, Any]:
        return {"Datapoints": [{"Sum": self.invocations}] if self.invocations else []}


def _evaluator(
    clients: FakeClients, now: list[datetime], scaled: list[tuple[str, str, int]]
) -> ScalingEvaluator:
    def scale(endpoint: str, variant: str, count: int) -> None:
        scaled.append((endpoint, variant, count))
        clients.instances = count

    return ScalingEvaluator(clients, scale, window_s=10, clock=lambda: now[0])  # type: ignore[arg-type]


def test_sustained_traffic_scales_out_within_max_and_idle_scales_back_in_after_the_cooldown() -> None:
    now, scaled = [datetime(2026, 12, 1, tzinfo=UTC)], []  # type: ignore[var-annotated]
    clients = FakeClients(invocations=40)  # 40 in 10 s: 240 a minute on one instance, target 60
    evaluator = _evaluator(clients, now, scaled)
    evaluator.evaluate()
    assert scaled == [("ep", "AllTraffic", 3)]  # 4 wanted, max 3
    clients.invocations = 0
    now[0] += timedelta(seconds=5)
    evaluator.evaluate()
    assert len(scaled) == 1  # the scale-in cooldown (10 s) has not passed
    now[0] += timedelta(seconds=6)
    evaluator.evaluate()
    assert scaled[-1] == ("ep", "AllTraffic", 1)
    activities = evaluator.activities(RESOURCE)
    assert [a["Description"] for a in activities] == [
        "Setting desired instance count to 1.",
        "Setting desired instance count to 3.",
    ]
    assert all(a["StatusCode"] == "Successful" and "_direction" not in a for a in activities)


def test_an_endpoint_under_update_is_not_scaled() -> None:
    now, scaled = [datetime(2026, 12, 1, tzinfo=UTC)], []  # type: ignore[var-annotated]
    _evaluator(FakeClients(invocations=100, status="Updating"), now, scaled).evaluate()
    assert scaled == []


def test_each_account_s_targets_are_scaled_with_its_own_clients_and_its_activities_kept_apart() -> None:
    now, scaled = [datetime(2026, 12, 1, tzinfo=UTC)], []  # type: ignore[var-annotated]
    dev = FakeClients(invocations=40, resource="endpoint/headrace-dev-churn/variant/AllTraffic")
    prod = FakeClients(invocations=40, resource="endpoint/headrace-prod-churn/variant/AllTraffic")
    evaluators = ScalingEvaluators(
        {"111111111111": _evaluator(dev, now, scaled), "222222222222": _evaluator(prod, now, scaled)}
    )
    evaluators.evaluate()
    # prod's target lives only in prod's account: read with the first account's clients, it was never seen.
    assert sorted(scaled) == [
        ("headrace-dev-churn", "AllTraffic", 3),
        ("headrace-prod-churn", "AllTraffic", 3),
    ]
    [prod_activity] = evaluators.activities("222222222222")
    assert prod_activity["ResourceId"] == prod.resource
    assert [a["ResourceId"] for a in evaluators.activities("111111111111")] == [dev.resource]
    assert evaluators.activities("111111111111", prod.resource) == []
    assert evaluators.activities("333333333333") == []


def test_the_plane_evaluates_each_account_s_policies_with_that_account_s_clients() -> None:
    from types import SimpleNamespace

    from headrace.local.plane import LocalPlane

    plane = LocalPlane()
    plane.hosting = SimpleNamespace(scale=lambda *_: None)  # type: ignore[assignment]
    by_account = {"111111111111": FakeClients(0), "222222222222": FakeClients(0)}
    plane._autoscaling(by_account)  # type: ignore[arg-type]
    try:
        assert {a: e._clients for a, e in plane.scaling.evaluators.items()} == by_account
    finally:
        plane._stack.close()  # stops the evaluators and restores DescribeScalingActivities
