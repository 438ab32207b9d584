"""The deploy state machine's payloads. Its input is either the registry's state-change event (EventBridge,
on approval) or a rollback request (`headrace rollback`); Plan turns both into a `DeployRequest`.

    $.plan      DeployPlan   Plan's output: what to roll out, and how (create, update or skip)
    $.endpoint  (SageMaker)  DescribeEndpoint's status and config, polled until the rollout ends
    $.deployed  Deployed     Verify's output
    $.error     StepError    what a Catch caught
    $.failure   DeployFailure
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from headrace.aws.eventbridge import EventBridgeEvent
from headrace.stages import NetworkSettings
from headrace.steps import Execution, NonEmpty, Payload, StepError

PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
Action = Literal["create", "update", "skip"]
DeploymentStatus = Literal["deploying", "serving", "skipped", "rolled_back", "failed"]


class PackageStateDetail(BaseModel):
    """The fields of the registry's event that Plan reads (the event carries the whole package)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    ModelPackageGroupName: NonEmpty
    ModelPackageVersion: Annotated[int, Field(ge=1)]
    ModelPackageArn: NonEmpty
    ModelApprovalStatus: NonEmpty


class PackageStateChange(EventBridgeEvent):
    detail_type: Literal["SageMaker Model Package State Change"] = Field(alias="detail-type")
    source: Literal["aws.sagemaker"]
    detail: PackageStateDetail


class RollbackRequest(Payload):
    """A deliberate (re)deploy of an older version: `headrace rollback MODEL [VERSION]` starts the workflow
    with `{"rollback": {...}}`. It may go back to any Approved version, superseded or not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Annotated[int, Field(ge=1)]
    reason: str = "rollback"
    requested_by: str = "headrace rollback"


class DeployInput(Payload):
    rollback: RollbackRequest


class PlanRequest(Payload):
    """What the state machine passes Plan: its model, the hosting role and key, the stage's network settings
    for the Model, and its own input."""

    model: NonEmpty
    execution: Execution
    hosting_role_arn: NonEmpty
    data_key_arn: NonEmpty
    # Absent from a workflow synthesized before stages had network settings: no isolation, no VPC.
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    input: dict[str, Any]


class DeployRequest(Payload):
    """What is asked for, whichever way it came."""

    version: int
    model_package_arn: str | None
    explicit: bool
    reason: str


class DeployPlan(Payload):
    model: NonEmpty
    action: Action
    reason: str
    version: int
    deployment_id: NonEmpty
    endpoint_name: NonEmpty
    endpoint_config_name: str = ""
    model_package_arn: str = ""
    previous_config: str | None = None
    previous_version: int | None = None
    # Seconds between the workflow's looks at the endpoint (rollout.poll_seconds).
    poll_s: Annotated[int, Field(ge=1)] = 1


class VerifyRequest(Payload):
    model: NonEmpty
    plan: DeployPlan


class Deployed(Payload):
    model: str
    version: int
    endpoint_name: str
    endpoint_config_name: str
    previous_version: int | None


class DeployState(Payload):
    """The state a Catch hands DeployFailed: the input plus what the workflow had gathered."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    plan: DeployPlan | None = None
    endpoint: dict[str, Any] | None = None
    error: StepError


class DeployFailedRequest(Payload):
    model: NonEmpty
    execution: Execution
    state: DeployState


class DeployFailure(Payload):
    model: str
    version: int | None
    status: DeploymentStatus
    error: str
    cause: str
