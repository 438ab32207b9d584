"""The deploy steps' permissions for autoscaling: Application Auto Scaling's calls, the service-linked role
for SageMaker variants only, and what registering a variant asks of the caller
(https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-prerequisites.html)."""

from __future__ import annotations

from typing import Any

from headrace.serving import autoscaling
from tests.support.synth import SynthesizedApp, render

MODEL = "churn"
SCALING_ACTIONS = {
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingPolicies",
    "application-autoscaling:RegisterScalableTarget",
    "application-autoscaling:PutScalingPolicy",
    "application-autoscaling:DeleteScalingPolicy",
    "application-autoscaling:DeregisterScalableTarget",
}


def _function_statements(synthesized: SynthesizedApp, function_name: str) -> list[dict[str, Any]]:
    found = synthesized.pipeline.find_resources(
        "AWS::Lambda::Function", {"Properties": {"FunctionName": function_name}}
    )
    assert len(found) == 1, function_name
    role = next(iter(found.values()))["Properties"]["Role"]["Fn::GetAtt"][0]
    return synthesized.role_statements(role)


def _allowed(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    def listed(value: Any) -> list[Any]:
        return value if isinstance(value, list) else [value]

    return [s for s in statements if action in listed(s["Action"]) and s["Effect"] == "Allow"]


def test_every_deploy_step_may_deregister_and_register_a_variant(synthesized: SynthesizedApp) -> None:
    names = synthesized.names
    for function in (names.deploy_plan_function, names.deploy_verify_function, names.deploy_failed_function):
        statements = _function_statements(synthesized, function)
        for action in SCALING_ACTIONS:
            assert _allowed(statements, action), (function, action)


def test_only_the_registering_steps_may_create_the_sagemaker_service_linked_role(
    synthesized: SynthesizedApp,
) -> None:
    names = synthesized.names
    plan = _function_statements(synthesized, names.deploy_plan_function)
    assert not _allowed(plan, "iam:CreateServiceLinkedRole")
    for function in (names.deploy_verify_function, names.deploy_failed_function):
        (statement,) = _allowed(_function_statements(synthesized, function), "iam:CreateServiceLinkedRole")
        assert render(statement["Resource"]).endswith(
            f":role/aws-service-role/{autoscaling.SERVICE_LINKED_PRINCIPAL}/{autoscaling.SERVICE_LINKED_ROLE}"
        )
        assert statement["Condition"] == {
            "StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}
        }


def test_target_tracking_alarms_are_limited_to_the_model_s_endpoint(synthesized: SynthesizedApp) -> None:
    endpoint = synthesized.names.endpoint(MODEL)
    statements = _function_statements(synthesized, synthesized.names.deploy_verify_function)
    resources = {
        render(r)
        for s in _allowed(statements, "cloudwatch:PutMetricAlarm")
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    }
    assert any(
        r.endswith(f":alarm:TargetTracking-endpoint/{endpoint}/variant/AllTraffic-*") for r in resources
    )
    assert all(":alarm:TargetTracking-endpoint/" in r for r in resources)
    weights = [
        render(r)
        for s in _allowed(statements, "sagemaker:UpdateEndpointWeightsAndCapacities")
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    assert weights and all(f"/{endpoint}" in r for r in weights)
