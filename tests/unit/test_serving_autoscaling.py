"""rollout.autoscaling: the config's rules, the Application Auto Scaling requests it becomes, and when the
deploy workflow registers and deregisters the endpoint's variant (SageMaker's procedure for updating an
endpoint that scales: https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from headrace.config import AutoscalingConfig, ModelConfig, RolloutConfig
from headrace.ledger import MemoryLedger
from headrace.serving import autoscaling, rollout
from headrace.serving.deploy import plan, record_failure, verify
from headrace.serving.payloads import DeployFailedRequest, DeployPlan, PlanRequest, VerifyRequest
from headrace.serving.ports import DeployPorts, Endpoint
from tests.fakes import FakeEvents, FakeMetrics
from tests.unit.test_serving_deploy import EXECUTION, NAMES, FakeHosting, _request, _serving, clock

ENDPOINT = NAMES.endpoint("churn")
RESOURCE = f"endpoint/{ENDPOINT}/variant/AllTraffic"


class FakeScaling:
    """Application Auto Scaling's targets and policies, and the calls in order."""

    def __init__(self) -> None:
        self.targets: dict[str, Mapping[str, Any]] = {}
        self.policies: dict[str, Mapping[str, Any]] = {}
        self.calls: list[str] = []

    def register(self, target: Mapping[str, Any], policy: Mapping[str, Any]) -> None:
        self.calls.append("register")
        self.targets[target["ResourceId"]] = target
        self.policies[policy["ResourceId"]] = policy

    def deregister(self, resource_id: str) -> bool:
        self.calls.append("deregister")
        self.policies.pop(resource_id, None)
        return self.targets.pop(resource_id, None) is not None


def _scaling_model(model: ModelConfig, **scaling: Any) -> ModelConfig:
    settings = {"min_instances": 1, "max_instances": 3, "target_invocations_per_instance": 50} | scaling
    raw = model.model_dump(by_alias=True)
    raw["rollout"]["autoscaling"] = settings
    return ModelConfig.model_validate(raw)


def _ports(hosting: FakeHosting, scaling: FakeScaling, ledger: MemoryLedger | None = None) -> DeployPorts:
    return DeployPorts(
        hosting=hosting,
        ledger=ledger or MemoryLedger(),
        events=FakeEvents(),
        metrics=FakeMetrics(),
        clock=clock,
        scaling=scaling,
    )


@pytest.fixture
def approval(load_event: Callable[..., dict[str, Any]]) -> Callable[[int], PlanRequest]:
    def make(version: int) -> PlanRequest:
        event = load_event("sagemaker_model_package_state_change")
        event["detail"]["ModelPackageVersion"] = version
        return _request(event)

    return make


def test_min_instances_above_max_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match=r"min_instances \(4\) is greater than max_instances \(2\)"):
        AutoscalingConfig(min_instances=4, max_instances=2)


@pytest.mark.parametrize("field", ["min_instances", "max_instances"])
def test_instance_limits_stay_within_one_to_twenty(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        AutoscalingConfig.model_validate({field: 21})
    with pytest.raises(ValidationError, match=field):
        AutoscalingConfig.model_validate({field: 0})


def test_a_target_of_zero_invocations_is_refused() -> None:
    with pytest.raises(ValidationError, match="target_invocations_per_instance"):
        AutoscalingConfig(target_invocations_per_instance=0)


def test_a_fleet_must_start_within_its_scaling_limits() -> None:
    scaling = AutoscalingConfig(min_instances=2, max_instances=4)
    with pytest.raises(ValidationError, match=r"instance_count \(1\) must lie within"):
        RolloutConfig(instance_count=1, autoscaling=scaling)
    assert RolloutConfig(instance_count=2, autoscaling=scaling).autoscaling == scaling


def test_autoscaling_becomes_a_variant_target_and_an_invocations_policy(example_model: ModelConfig) -> None:
    model = _scaling_model(example_model, scale_in_cooldown_s=120, scale_out_cooldown_s=30)
    requests = autoscaling.requests_for(model, NAMES)
    assert requests is not None
    target, policy = requests
    assert target == {
        "ServiceNamespace": "sagemaker",
        "ResourceId": RESOURCE,
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "MinCapacity": 1,
        "MaxCapacity": 3,
    }
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "TargetValue": 50.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "ScaleInCooldown": 120,
        "ScaleOutCooldown": 30,
        "DisableScaleIn": False,
    }
    assert autoscaling.endpoint_of(RESOURCE) == (ENDPOINT, "AllTraffic")
    assert autoscaling.endpoint_of("table/orders") is None


def test_changing_autoscaling_alone_makes_no_new_endpoint_config(example_model: ModelConfig) -> None:
    scaled = _scaling_model(example_model)
    names = [rollout.hosted_name(m, NAMES, 1, "img", "s3://b/k") for m in (example_model, scaled)]
    assert names[0] == names[1]


def test_the_planned_update_deregisters_the_variant_before_update_endpoint(
    example_model: ModelConfig, approval: Callable[[int], PlanRequest]
) -> None:
    model = _scaling_model(example_model)
    hosting, scaling = FakeHosting({1: "Approved", 2: "Approved"}), FakeScaling()
    hosting.current = _serving(model, hosting, 1)
    scaling.register(*autoscaling.requests_for(model, NAMES))  # type: ignore[misc]
    planned = plan(approval(2), model, _ports(hosting, scaling), names=NAMES, bucket="b")
    assert planned.action == "update"
    assert scaling.targets == {} and scaling.policies == {}


def test_a_new_endpoint_is_registered_once_it_serves_its_config(
    example_model: ModelConfig, approval: Callable[[int], PlanRequest]
) -> None:
    model = _scaling_model(example_model)
    hosting, scaling, ledger = FakeHosting({1: "Approved"}), FakeScaling(), MemoryLedger()
    planned = plan(approval(1), model, _ports(hosting, scaling, ledger), names=NAMES, bucket="b")
    assert planned.action == "create" and scaling.calls == []  # nothing to deregister on a create
    hosting.current = _serving(model, hosting, 1)
    verify(VerifyRequest(model="churn", plan=planned), model, _ports(hosting, scaling, ledger), names=NAMES)
    assert scaling.targets[RESOURCE]["MaxCapacity"] == 3
    assert scaling.policies[RESOURCE]["PolicyName"] == f"{ENDPOINT}-invocations-per-instance"


def test_verify_registers_nothing_when_the_rollout_was_rolled_back(
    example_model: ModelConfig, approval: Callable[[int], PlanRequest]
) -> None:
    model = _scaling_model(example_model)
    hosting, scaling = FakeHosting({1: "Approved", 2: "Approved"}), FakeScaling()
    hosting.current = _serving(model, hosting, 1)
    planned = plan(approval(2), model, _ports(hosting, scaling), names=NAMES, bucket="b")
    with pytest.raises(Exception, match="rolled back"):
        verify(VerifyRequest(model="churn", plan=planned), model, _ports(hosting, scaling), names=NAMES)
    assert scaling.targets == {}


def test_a_rolled_back_endpoint_scales_again_on_its_old_fleet(
    example_model: ModelConfig, approval: Callable[[int], PlanRequest]
) -> None:
    model = _scaling_model(example_model)
    hosting, scaling = FakeHosting({1: "Approved", 2: "Approved"}), FakeScaling()
    hosting.current = _serving(model, hosting, 1)
    planned = plan(approval(2), model, _ports(hosting, scaling), names=NAMES, bucket="b")
    record_failure(_failed(planned), _ports(hosting, scaling), model, NAMES)
    assert RESOURCE in scaling.targets and RESOURCE in scaling.policies


def test_a_failure_leaves_an_endpoint_that_is_not_in_service_unregistered(
    example_model: ModelConfig, approval: Callable[[int], PlanRequest]
) -> None:
    model = _scaling_model(example_model)
    hosting, scaling = FakeHosting({1: "Approved", 2: "Approved"}), FakeScaling()
    hosting.current = _serving(model, hosting, 1)
    planned = plan(approval(2), model, _ports(hosting, scaling), names=NAMES, bucket="b")
    hosting.current = Endpoint(name=ENDPOINT, status="Failed", config_name=hosting.current.config_name)
    record_failure(_failed(planned), _ports(hosting, scaling), model, NAMES)
    assert scaling.targets == {}


def test_removing_autoscaling_deregisters_the_variant_at_the_next_deploy(
    example_model: ModelConfig, approval: Callable[[int], PlanRequest]
) -> None:
    hosting, scaling = FakeHosting({1: "Approved"}), FakeScaling()
    scaling.register(*autoscaling.requests_for(_scaling_model(example_model), NAMES))  # type: ignore[misc]
    planned = plan(approval(1), example_model, _ports(hosting, scaling), names=NAMES, bucket="b")
    hosting.current = _serving(example_model, hosting, 1)
    verify(VerifyRequest(model="churn", plan=planned), example_model, _ports(hosting, scaling), names=NAMES)
    assert scaling.targets == {}


def _failed(planned: DeployPlan) -> DeployFailedRequest:
    return DeployFailedRequest.model_validate(
        {
            "model": "churn",
            "execution": EXECUTION,
            "state": {
                "plan": planned.model_dump(),
                "error": {
                    "Error": "DeploymentRolledBack",
                    "Cause": json.dumps({"errorMessage": "v2 was rolled back"}),
                },
            },
        }
    )
