"""The deploy workflow's steps: Plan decides and prepares, the state machine calls CreateEndpoint or
UpdateEndpoint (with the DeploymentConfig from rollout.py) and polls, Verify checks the end state, and
DeployFailed records whatever went wrong.

Only an Approved version is ever deployed. An approval that arrives after a newer version was approved or
deployed is superseded and skipped; a rollback request (`headrace rollback`) may go back on purpose.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import ValidationError

from headrace.config import ModelConfig
from headrace.ledger import DeploymentItem, DeploymentLedger, sort_time
from headrace.naming import Names
from headrace.ports import Clock
from headrace.serving import autoscaling, rollout
from headrace.serving.payloads import (
    Deployed,
    DeployFailedRequest,
    DeployFailure,
    DeployInput,
    DeploymentStatus,
    DeployPlan,
    DeployRequest,
    PackageStateChange,
    PlanRequest,
    VerifyRequest,
)
from headrace.serving.ports import DeployPorts, Hosting
from headrace.steps import InvalidRequest

log = logging.getLogger("headrace.serving")

# Endpoint states in which SageMaker accepts UpdateEndpoint.
UPDATABLE = {"InService"}
# States a deployment in progress passes through; Plan waits (the state machine retries) until they end.
BUSY = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}
# A scaling activity that began before Plan deregistered the variant keeps the endpoint Updating (or
# RollingBack) while UpdateEndpointWeightsAndCapacities runs
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html, EndpointStatus), and
# UpdateEndpoint is refused meanwhile ("Cannot update in-progress endpoint ..."). The workflow sends the
# update again, poll_s apart, for as long as instances take to launch or drain, at most this long.
BUSY_UPDATE_WAIT_S = 1800
# Step Functions names every error SageMaker answers its optimized integration with this one name, the code
# and message only in the cause (https://github.com/aws/aws-step-functions-data-science-sdk-python/issues/191).
SAGEMAKER_ERROR = "SageMaker.AmazonSageMakerException"
UPDATE_REFUSED_BUSY = "*in-progress*"  # the refusal's cause, as a Choice state's StringMatches pattern
DEPLOYMENT_FAILED_EVENT = "Deployment Failed"
DEPLOYED_EVENT = "Model Version Deployed"


class EndpointBusy(RuntimeError):
    """Another rollout is under way on the endpoint; the state machine retries Plan later."""


def update_retries(poll_s: int) -> int:
    """How many times the workflow sends an UpdateEndpoint refused as busy again, poll_s apart."""
    return max(3, BUSY_UPDATE_WAIT_S // max(1, poll_s))


class EndpointUnusable(RuntimeError):
    """The endpoint is in a state no update can leave (Failed, UpdateRollbackFailed): it needs a person."""


class DeploymentRolledBack(RuntimeError):
    """The rollout ended with the endpoint on another config than the one deployed: SageMaker rolled back."""


class DeploymentIncomplete(RuntimeError):
    """The rollout ended with the endpoint not InService."""


def read_request(request: PlanRequest, group: str) -> DeployRequest:
    """The registry's approval event or a rollback request; anything else is refused by name."""
    raw = request.input
    if "rollback" in raw:
        try:
            rollback = DeployInput.model_validate(raw).rollback
        except ValidationError as exc:
            raise InvalidRequest(f"invalid rollback request: {exc.errors()[0]['msg']}") from None
        return DeployRequest(
            version=rollback.version,
            model_package_arn=None,
            explicit=True,
            reason=f"{rollback.reason} (requested by {rollback.requested_by})",
        )
    try:
        event = PackageStateChange.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidRequest(
            "the deploy workflow takes a 'SageMaker Model Package State Change' event or "
            f'{{"rollback": {{"version": N}}}}; got: {problems}'
        ) from None
    if event.detail.ModelPackageGroupName != group:
        raise InvalidRequest(
            f"the event is about group {event.detail.ModelPackageGroupName}, this workflow deploys {group}"
        )
    return DeployRequest(
        version=event.detail.ModelPackageVersion,
        model_package_arn=event.detail.ModelPackageArn,
        explicit=False,
        reason=f"version {event.detail.ModelPackageVersion} was {event.detail.ModelApprovalStatus}",
    )


def _why_not(
    model: ModelConfig, names: Names, hosting: Hosting, asked: DeployRequest, current: int | None
) -> str | None:
    """Why the asked version must not be deployed, or None."""
    if asked.explicit:
        return None
    if current is not None and current > asked.version:
        return f"superseded: the endpoint already serves v{current}"
    newest = hosting.newest_approved(names.model_package_group(model.name))
    if newest is not None and newest > asked.version:
        return f"superseded: v{newest} is Approved too, and newer"
    return None


def plan(
    request: PlanRequest,
    model: ModelConfig,
    ports: DeployPorts,
    *,
    names: Names,
    bucket: str,
) -> DeployPlan:
    group = names.model_package_group(model.name)
    asked = read_request(request, group)
    endpoint_name = names.endpoint(model.name)
    deployment_id = f"{sort_time(ports.clock())}#{request.execution.name}"
    base: dict[str, Any] = {
        "model": model.name,
        "version": asked.version,
        "deployment_id": deployment_id,
        "endpoint_name": endpoint_name,
        "poll_s": rollout.poll_seconds(model.rollout),
    }

    package = ports.hosting.package_version(group, asked.version)
    endpoint = ports.hosting.endpoint(endpoint_name)
    current = rollout.version_of(endpoint.config_name) if endpoint else None
    if endpoint is not None and endpoint.status in BUSY:
        raise EndpointBusy(f"endpoint {endpoint_name} is {endpoint.status}; trying again later")
    if endpoint is not None and endpoint.status not in UPDATABLE:
        raise EndpointUnusable(
            f"endpoint {endpoint_name} is {endpoint.status} "
            f"({endpoint.failure_reason or 'no reason given'}); "
            "delete it (aws sagemaker delete-endpoint) and approve again"
        )

    skip: str | None
    if package is None:
        skip = f"model '{model.name}' has no version {asked.version}"
    elif package.approval_status != "Approved":
        skip = f"v{asked.version} is {package.approval_status}: only Approved versions are deployed"
    else:
        skip = _why_not(model, names, ports.hosting, asked, current)
    name = ""
    if package is not None and skip is None:
        name = rollout.hosted_name(
            model, names, asked.version, package.image, package.model_data_url, request.network
        )
        if endpoint is not None and endpoint.config_name == name:
            skip = f"v{asked.version} is already serving on {endpoint_name}"

    if package is None or skip is not None:
        planned = DeployPlan(**base, action="skip", reason=skip or "")
        _record(ports.ledger, planned, "skipped", ports.clock, requested=asked.reason)
        log.info("not deploying v%d of %s: %s", asked.version, model.name, skip)
        return planned

    ports.hosting.ensure_model(
        rollout.model_request(
            model,
            names,
            name=name,
            version=asked.version,
            image=package.image,
            model_data_url=package.model_data_url,
            role_arn=request.hosting_role_arn,
            network=request.network,
        )
    )
    ports.hosting.ensure_endpoint_config(
        rollout.endpoint_config_request(
            model,
            names,
            name=name,
            version=asked.version,
            capture_uri=f"s3://{bucket}/{rollout.capture_prefix(model.name)}",
            key_arn=request.data_key_arn,
        )
    )
    # SageMaker's procedure for updating an endpoint that scales: policies deleted and the target
    # deregistered before UpdateEndpoint (autoscaling.py); Verify or DeployFailed registers it again.
    scaling = ports.scaling
    if endpoint is not None and scaling and scaling.deregister(autoscaling.resource_id(endpoint_name)):
        log.info("deregistered %s from autoscaling for the rollout", endpoint_name)
    planned = DeployPlan(
        **base,
        action="update" if endpoint else "create",
        reason=asked.reason,
        endpoint_config_name=name,
        model_package_arn=package.arn,
        previous_config=endpoint.config_name if endpoint else None,
        previous_version=current,
    )
    _record(ports.ledger, planned, "deploying", ports.clock, requested=asked.reason)
    log.info("deploying v%d of %s to %s (%s)", asked.version, model.name, endpoint_name, planned.action)
    return planned


def verify(
    request: VerifyRequest,
    model: ModelConfig,
    ports: DeployPorts,
    *,
    names: Names,
) -> Deployed:
    """The endpoint must be InService *on the planned config*: an InService endpoint on the old config means
    SageMaker rolled the update back, and that is a failed deployment, not a success."""
    planned = request.plan
    endpoint = ports.hosting.endpoint(planned.endpoint_name)
    if endpoint is None or endpoint.status != "InService":
        state = endpoint.status if endpoint else "gone"
        raise DeploymentIncomplete(
            f"endpoint {planned.endpoint_name} is {state} after the rollout of v{planned.version}"
        )
    if endpoint.config_name != planned.endpoint_config_name:
        serving = rollout.version_of(endpoint.config_name)
        alarms = ports.hosting.alarms_in_alarm([names.endpoint_alarm(model.name, g) for g in rollout.GUARDS])
        raise DeploymentRolledBack(
            f"v{planned.version} was rolled back: endpoint {planned.endpoint_name} is InService on "
            f"{endpoint.config_name} (v{serving}), not {planned.endpoint_config_name}"
            + (f"; alarms: {'; '.join(alarms)}" if alarms else "")
            + (f"; SageMaker: {endpoint.failure_reason}" if endpoint.failure_reason else "")
        )
    _scale(model, names, ports, planned.endpoint_name)
    _record(ports.ledger, planned, "serving", ports.clock)
    deployed = Deployed(
        model=model.name,
        version=planned.version,
        endpoint_name=planned.endpoint_name,
        endpoint_config_name=planned.endpoint_config_name,
        previous_version=planned.previous_version,
    )
    ports.events.publish(DEPLOYED_EVENT, deployed.model_dump(mode="json"))
    return deployed


def _scale(model: ModelConfig, names: Names, ports: DeployPorts, endpoint_name: str) -> None:
    """The endpoint's variant gets the model's scalable target and policy, or none when it does not scale."""
    if ports.scaling is None:
        return
    requests = autoscaling.requests_for(model, names)
    if requests is None:
        ports.scaling.deregister(autoscaling.resource_id(endpoint_name))
        return
    ports.scaling.register(*requests)
    log.info("autoscaling %s: %s", endpoint_name, model.rollout.autoscaling)


def record_failure(
    request: DeployFailedRequest,
    ports: DeployPorts,
    model: ModelConfig | None = None,
    names: Names | None = None,
) -> DeployFailure:
    """Records the failure; where the endpoint still serves (a rollback, a failed update), its fleet scales
    again as before the rollout (Plan deregistered it)."""
    error = request.state.error
    status: DeploymentStatus = "rolled_back" if error.error == DeploymentRolledBack.__name__ else "failed"
    cause = _cause_text(error.cause)
    planned = request.state.plan
    failure = DeployFailure(
        model=request.model,
        version=planned.version if planned else None,
        status=status,
        error=error.error,
        cause=cause,
    )
    if planned is not None:
        _record(ports.ledger, planned, status, ports.clock, error=error.error, cause=cause)
    if model is not None and names is not None and planned is not None and planned.action == "update":
        endpoint = ports.hosting.endpoint(planned.endpoint_name)
        if endpoint is not None and endpoint.status == "InService":
            _scale(model, names, ports, planned.endpoint_name)
    ports.events.publish(
        DEPLOYMENT_FAILED_EVENT, {**failure.model_dump(mode="json"), "execution": request.execution.name}
    )
    ports.metrics.count(
        "DeploymentsRolledBack" if status == "rolled_back" else "DeploymentsFailed", request.model
    )
    log.error("deployment of %s failed (%s): %s", request.model, status, cause)
    return failure


def _cause_text(cause: str | None) -> str:
    """A Lambda error's cause is JSON with errorMessage; a SageMaker one is the API's message."""
    if not cause:
        return "no cause given"
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause[:2000]
    if isinstance(parsed, dict):
        return str(parsed.get("errorMessage") or parsed.get("Cause") or parsed)[:2000]
    return cause[:2000]


def _record(
    ledger: DeploymentLedger,
    planned: DeployPlan,
    status: DeploymentStatus,
    clock: Clock,
    **fields: Any,
) -> None:
    base: dict[str, Any] = {
        "status": status,
        "version": planned.version,
        "endpoint_name": planned.endpoint_name,
        "action": planned.action,
        "updated_at": clock().isoformat(),
    }
    if status in ("deploying", "skipped"):
        base |= {
            "endpoint_config_name": planned.endpoint_config_name,
            "previous_version": planned.previous_version,
            "previous_config": planned.previous_config,
            "reason": planned.reason,
            "started_at": clock().isoformat(),
        }
    ledger.update(DeploymentItem(model=planned.model, deployment_id=planned.deployment_id, **base, **fields))
