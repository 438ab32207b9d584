"""What each model's endpoint serves, what was deployed to it, and going back: `headrace endpoints` and
`headrace rollback`.

The endpoint's state comes from DescribeEndpoint; the version a config serves from its name
(rollout.version_of); deployments from the ledger's deployment items (headrace.ledger.DeploymentItem),
which the deploy workflow writes (deploy.py). A rollback is the deploy workflow again, started with a
rollback request.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from headrace.ledger import DeploymentItem, DynamoLedger
from headrace.naming import Names
from headrace.serving import autoscaling, rollout
from headrace.serving.payloads import DeployInput, DeployPlan, RollbackRequest

NOT_DEPLOYED = "not deployed"
# Step Functions' DescribeExecution statuses once an execution is over.
FINISHED = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class NothingToRollBack(LookupError):
    """No version to go back to was recorded, and none was named."""


class Variant(BaseModel):
    name: str
    # DescribeEndpoint's CurrentWeight: the variant's share of traffic relative to the others.
    weight: float | None = None
    instances: int | None = None


class Scaling(BaseModel):
    """The variant's scalable target (Application Auto Scaling) and its newest scaling activity."""

    min_instances: int
    max_instances: int
    last_activity: str | None = None
    last_activity_at: str | None = None
    last_activity_status: str | None = None

    @property
    def summary(self) -> str:
        bounds = f"{self.min_instances}-{self.max_instances}"
        if self.last_activity is None:
            return f"{bounds}, no activity yet"
        return f"{bounds}, {self.last_activity_at}: {self.last_activity} ({self.last_activity_status})"


class EndpointView(BaseModel):
    model: str
    endpoint_name: str
    status: str
    version: int | None = None
    config_name: str | None = None
    variants: list[Variant] = []
    # A blue/green rollout under way: the config SageMaker is moving to.
    pending_config_name: str | None = None
    failure_reason: str | None = None
    last_deployment: DeploymentItem | None = None
    scaling: Scaling | None = None

    @property
    def instances(self) -> str:
        return ", ".join(f"{v.name} {v.instances}" for v in self.variants if v.instances is not None)

    @property
    def weights(self) -> str:
        return ", ".join(f"{v.name} {v.weight:g}" if v.weight is not None else v.name for v in self.variants)


class RollbackOutcome(BaseModel):
    """How a rollback execution ended, and what the endpoint serves afterwards."""

    execution_arn: str
    execution_status: str
    version: int
    serving_version: int | None = None
    endpoint_status: str = NOT_DEPLOYED
    # Plan's reason when it skipped the request (not Approved, already serving).
    reason: str | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def serves(self) -> bool:
        """Only the end state counts: the execution succeeded *and* the endpoint serves the version."""
        return self.execution_status == "SUCCEEDED" and self.serving_version == self.version


def _not_found(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") in ("ValidationException", "ValidationError") and "Could not find" in str(
        error.get("Message", "")
    )


def describe_endpoint(sagemaker: Any, endpoint_name: str) -> dict[str, Any] | None:
    """DescribeEndpoint's answer, None when there is no such endpoint."""
    try:
        return dict(sagemaker.describe_endpoint(EndpointName=endpoint_name))
    except ClientError as exc:
        if _not_found(exc):
            return None
        raise


def list_deployments(dynamodb: Any, table: str, model: str) -> list[DeploymentItem]:
    """The model's deployments, newest first (deployment ids start with the time Plan ran)."""
    return DynamoLedger(dynamodb, table).deployments(model)


def endpoint_view(
    model: str, endpoint_name: str, described: dict[str, Any] | None, deployments: Sequence[DeploymentItem]
) -> EndpointView:
    last = deployments[0] if deployments else None
    if described is None:
        return EndpointView(
            model=model, endpoint_name=endpoint_name, status=NOT_DEPLOYED, last_deployment=last
        )
    config = str(described["EndpointConfigName"])
    pending = described.get("PendingDeploymentSummary") or {}
    return EndpointView(
        model=model,
        endpoint_name=endpoint_name,
        status=str(described["EndpointStatus"]),
        version=rollout.version_of(config),
        config_name=config,
        variants=[
            Variant(
                name=v["VariantName"],
                weight=v.get("CurrentWeight"),
                instances=v.get("CurrentInstanceCount"),
            )
            for v in described.get("ProductionVariants", [])
        ],
        pending_config_name=pending.get("EndpointConfigName"),
        failure_reason=described.get("FailureReason"),
        last_deployment=last,
    )


def describe_scaling(scaling: Any, endpoint_name: str) -> Scaling | None:
    """The variant's scalable target and newest scaling activity; None when it does not scale."""
    key = {"ServiceNamespace": autoscaling.NAMESPACE, "ScalableDimension": autoscaling.DIMENSION}
    resource = autoscaling.resource_id(endpoint_name)
    targets = scaling.describe_scalable_targets(ResourceIds=[resource], **key)["ScalableTargets"]
    if not targets:
        return None
    found = scaling.describe_scaling_activities(ResourceId=resource, MaxResults=1, **key)
    newest = (found.get("ScalingActivities") or [None])[0]
    return Scaling(
        min_instances=targets[0]["MinCapacity"],
        max_instances=targets[0]["MaxCapacity"],
        last_activity=newest["Description"] if newest else None,
        last_activity_at=f"{newest['StartTime']:%Y-%m-%d %H:%M:%S}" if newest else None,
        last_activity_status=newest["StatusCode"] if newest else None,
    )


def list_endpoints(
    sagemaker: Any,
    dynamodb: Any,
    table: str,
    names: Names,
    models: Iterable[str],
    scaling: Any | None = None,
) -> list[EndpointView]:
    """Per model: its endpoint's status, the version and config it serves, the variants' weights and
    instances, its autoscaling (with `scaling`, an application-autoscaling client) and the last deployment
    the ledger recorded."""
    views = []
    for model in models:
        endpoint = names.endpoint(model)
        described = describe_endpoint(sagemaker, endpoint)
        view = endpoint_view(model, endpoint, described, list_deployments(dynamodb, table, model))
        if scaling is not None and described is not None:
            view.scaling = describe_scaling(scaling, endpoint)
        views.append(view)
    return views


def rollback_target(model: str, deployments: Sequence[DeploymentItem]) -> int:
    """The version to go back to when none is named: the one the newest serving deployment replaced."""
    serving = next((d for d in deployments if d.status == "serving"), None)
    if serving is None:
        raise NothingToRollBack(
            f"no deployment of '{model}' has served yet, so there is no earlier version to go back to; "
            f"name one: `headrace rollback {model} VERSION`"
        )
    if serving.previous_version is None:
        raise NothingToRollBack(
            f"v{serving.version} was the first version deployed to {serving.endpoint_name or model}: "
            f"nothing before it to go back to; name a version: `headrace rollback {model} VERSION`"
        )
    return serving.previous_version


def rollback_execution_name(version: int) -> str:
    """Unique per request (a second rollback to the same version is a new execution), readable in the
    console and in the ledger's deployment id."""
    return f"rollback-v{version}-{uuid.uuid4().hex[:8]}"


def start_rollback(
    stepfunctions: Any,
    state_machine_arn: str,
    version: int,
    reason: str,
    requested_by: str = RollbackRequest.model_fields["requested_by"].default,
) -> str:
    """Start the model's deploy workflow with a rollback request; returns the execution's ARN."""
    request = DeployInput(rollback=RollbackRequest(version=version, reason=reason, requested_by=requested_by))
    started = stepfunctions.start_execution(
        stateMachineArn=state_machine_arn,
        name=rollback_execution_name(version),
        input=request.model_dump_json(),
    )
    return str(started["executionArn"])


def rollback_outcome(
    stepfunctions: Any, sagemaker: Any, execution_arn: str, endpoint_name: str, version: int
) -> RollbackOutcome | None:
    """None while the execution runs; then how it ended and what the endpoint serves now."""
    execution = stepfunctions.describe_execution(executionArn=execution_arn)
    if execution["status"] not in FINISHED:
        return None
    described = describe_endpoint(sagemaker, endpoint_name)
    config = str(described["EndpointConfigName"]) if described else ""
    return RollbackOutcome(
        execution_arn=execution_arn,
        execution_status=execution["status"],
        version=version,
        serving_version=rollout.version_of(config) if described else None,
        endpoint_status=str(described["EndpointStatus"]) if described else NOT_DEPLOYED,
        reason=_skip_reason(execution.get("output")),
        error=execution.get("error"),
        cause=execution.get("cause"),
    )


def _skip_reason(output: str | None) -> str | None:
    """Plan's reason, when the execution ended in Skipped (its output keeps the plan at `$.plan`)."""
    try:
        document = json.loads(output or "null")
        planned = DeployPlan.model_validate(document["plan"]) if isinstance(document, dict) else None
    except (ValueError, KeyError):
        return None
    return planned.reason if planned is not None and planned.action == "skip" else None
