"""What a model's `rollout.autoscaling` asks Application Auto Scaling for, and when the deploy workflow asks.

The endpoint's one production variant is the scalable target (`endpoint/<name>/variant/AllTraffic`,
dimension `sagemaker:variant:DesiredInstanceCount`) and a target-tracking policy on the predefined
SageMakerVariantInvocationsPerInstance metric moves it between min and max instances
(https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-add-code-define.html).

Endpoints are created at runtime by the deploy workflow, so the target cannot be a CloudFormation resource.
SageMaker's rule for updating an endpoint that scales
(https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html): an UpdateEndpoint that
changes a scalable variant's instance type fails, scaling is blocked while an update runs, and the
documented procedure is to delete the scaling policies and deregister the target before the update, then
register the updated variant and attach the policy again once it is InService. Headrace follows that
procedure on every blue/green update (Plan deregisters; Verify registers the new fleet; DeployFailed
registers the surviving old fleet again after a rollback), so a rollout never races a scaling activity and
an instance type change never fails on it.
"""

from __future__ import annotations

from typing import Any, Final

from headrace.config import AutoscalingConfig, ModelConfig
from headrace.naming import Names
from headrace.serving.rollout import VARIANT

NAMESPACE: Final = "sagemaker"
DIMENSION: Final = "sagemaker:variant:DesiredInstanceCount"
METRIC: Final = "SageMakerVariantInvocationsPerInstance"
POLICY_TYPE: Final = "TargetTrackingScaling"
# Application Auto Scaling's service-linked role for SageMaker variants, created on the first
# RegisterScalableTarget when the caller may iam:CreateServiceLinkedRole for this service name
# (https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html).
SERVICE_LINKED_ROLE: Final = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
SERVICE_LINKED_PRINCIPAL: Final = "sagemaker.application-autoscaling.amazonaws.com"


def resource_id(endpoint_name: str, variant: str = VARIANT) -> str:
    """The scalable target's ResourceId: `endpoint/<endpoint>/variant/<variant>`."""
    return f"endpoint/{endpoint_name}/variant/{variant}"


def policy_name(endpoint_name: str) -> str:
    return f"{endpoint_name}-invocations-per-instance"


def endpoint_of(resource: str) -> tuple[str, str] | None:
    """(endpoint, variant) of a SageMaker variant's ResourceId, None for anything else."""
    parts = resource.split("/")
    if len(parts) == 4 and parts[0] == "endpoint" and parts[2] == "variant":
        return parts[1], parts[3]
    return None


def scalable_target_request(scaling: AutoscalingConfig, endpoint_name: str) -> dict[str, Any]:
    """RegisterScalableTarget's parameters."""
    return {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": resource_id(endpoint_name),
        "ScalableDimension": DIMENSION,
        "MinCapacity": scaling.min_instances,
        "MaxCapacity": scaling.max_instances,
    }


def scaling_policy_request(scaling: AutoscalingConfig, endpoint_name: str) -> dict[str, Any]:
    """PutScalingPolicy's parameters: target tracking of invocations per instance, with the cooldowns."""
    return {
        "PolicyName": policy_name(endpoint_name),
        "ServiceNamespace": NAMESPACE,
        "ResourceId": resource_id(endpoint_name),
        "ScalableDimension": DIMENSION,
        "PolicyType": POLICY_TYPE,
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": float(scaling.target_invocations_per_instance),
            "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
            "ScaleInCooldown": scaling.scale_in_cooldown_s,
            "ScaleOutCooldown": scaling.scale_out_cooldown_s,
            "DisableScaleIn": False,
        },
    }


def requests_for(model: ModelConfig, names: Names) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The target and policy the model's endpoint should carry; None when it does not scale."""
    scaling = model.rollout.autoscaling
    if scaling is None:
        return None
    endpoint = names.endpoint(model.name)
    return scalable_target_request(scaling, endpoint), scaling_policy_request(scaling, endpoint)
