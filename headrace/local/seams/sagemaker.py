"""Where the local plane plugs SageMaker compute into moto's SageMaker (moto 5.2.5, pinned; see DESIGN.md).

- Records: moto keeps training jobs, endpoints, configs and models; `MotoSageMakerRecords` hands them to the
  compute (headrace/local/sagemaker/), which moves them along in place as SageMaker's control plane would.
- Training: `sagemaker` tasks in state machines go to our integration (sfn_sagemaker.py, with `.sync`);
  CreateTrainingJob starts the job's container locally; StopTrainingJob, which moto lacks, stops it.
- Hosting: CreateEndpoint, UpdateEndpoint (which moto lacks) and DeleteEndpoint start, roll and stop the
  endpoint's serve containers, UpdateEndpointWeightsAndCapacities adds or retires them, and
  sagemaker-runtime InvokeEndpoint reaches them.
- The registry's events: a model package created or updated with an approval status puts a "SageMaker Model
  Package State Change" event on the default bus, as SageMaker does (moto emits none).
"""

from __future__ import annotations

import contextlib
import copy
import http.client
import inspect
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from moto.core.responses import ActionResult
from moto.events.models import events_backends
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from headrace.local.sagemaker.fleets import LOG_GROUP
from headrace.local.sagemaker.hosting import EndpointHosting, HostingError
from headrace.local.sagemaker.training import TrainingCompute


class MotoSageMakerRecords:
    """SageMaker's records as moto's backends hold them, in this process (the server runs here): those of
    `account`, and of `others` where a plane's stages live in several accounts. Training, tuning and transform
    jobs are found by (account, name): their names derive from the data and the execution, not the stage, so
    two stages given the same data name their jobs alike, which SageMaker allows in different accounts (a
    name is unique "within an Amazon Web Services Region in an Amazon Web Services account":
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html, TrainingJobName).
    Endpoints, their configs and models are found by name in whichever account holds it: the plane's hosting
    names carry their stage (naming.py, `headrace-<stage>-...`), and its hosting, IAM and scaling keep
    endpoints by name (README, "Not yet per account locally")."""

    def __init__(self, account: str, region: str, others: Sequence[str] = ()) -> None:
        self._account, self._region = account, region
        self._accounts = [account, *(a for a in others if a != account)]

    def _backend(self) -> SageMakerModelBackend:
        return sagemaker_backends[self._account][self._region]

    def _holding(self, records: str, name: str, account: str | None = None) -> SageMakerModelBackend:
        """The backend of the account whose `records` (a moto attribute) hold `name`; else the first's.
        `account`: that account's backend, whatever it holds."""
        if account is not None:
            return sagemaker_backends[account][self._region]
        for account in self._accounts:
            backend = sagemaker_backends[account][self._region]
            if name in getattr(backend, records):
                return backend
        return self._backend()

    def account_of(self, records: str, name: str) -> str:
        return str(self._holding(records, name).account_id)

    def training_job(self, name: str, account: str | None = None) -> Any:
        return self._holding("training_jobs", name, account).training_jobs[name]

    def transform_job(self, name: str, account: str | None = None) -> Any:
        return self._holding("transform_jobs", name, account).transform_jobs[name]

    def endpoints(self) -> dict[str, Any]:
        endpoints: dict[str, Any] = {}
        for account in reversed(self._accounts):
            endpoints.update(sagemaker_backends[account][self._region].endpoints)
        return endpoints

    def endpoint_config(self, name: str) -> dict[str, Any]:
        described: dict[str, Any] = self._holding("endpoint_configs", name).describe_endpoint_config(name)
        return described

    def model_container(self, name: str) -> dict[str, Any]:
        model = self._holding("_models", name).describe_model(name)
        container: dict[str, Any] = model.primary_container or model.containers[0]
        return container


@contextlib.contextmanager
def training_installed(training: TrainingCompute) -> Iterator[None]:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory

    from headrace.local.seams.sfn_sagemaker import StateTaskServiceSageMaker

    original_service_for = getattr(state_task_factory, "state_task_service_for")  # noqa: B009
    original_create = SageMakerModelBackend.create_training_job
    signature = inspect.signature(original_create)

    def service_for(service_name: str) -> Any:
        return (
            StateTaskServiceSageMaker() if service_name == "sagemaker" else original_service_for(service_name)
        )

    def create_training_job(self: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        definitions = copy.deepcopy(bound.arguments["algorithm_specification"].get("MetricDefinitions", []))
        created = original_create(self, *args, **kwargs)
        training.start(bound.arguments["training_job_name"], definitions, account=self.account_id)
        return created

    def stop_training_job(self: SageMakerResponse) -> ActionResult:
        name = self._get_param("TrainingJobName")
        if name not in self.sagemaker_backend.training_jobs:
            raise ValidationError(message=f"Requested resource not found: training job {name}")
        training.stop(name, account=self.current_account)
        return ActionResult({})

    setattr(state_task_factory, "state_task_service_for", service_for)  # noqa: B010
    SageMakerModelBackend.create_training_job = create_training_job  # type: ignore[method-assign]
    SageMakerResponse.stop_training_job = stop_training_job  # type: ignore[attr-defined]
    try:
        yield
    finally:
        setattr(state_task_factory, "state_task_service_for", original_service_for)  # noqa: B010
        SageMakerModelBackend.create_training_job = original_create  # type: ignore[method-assign]
        del SageMakerResponse.stop_training_job  # type: ignore[attr-defined]


def package_state_change(package: Any, account: str, region: str) -> dict[str, Any]:
    """The PutEvents entry SageMaker sends when a version is created or its approval status changes."""
    detail = {
        "ModelPackageGroupName": package.model_package_group_name,
        "ModelPackageVersion": package.model_package_version,
        "ModelPackageArn": package.arn,
        "ModelPackageName": package.model_package_name,
        "CreationTime": int(package.creation_time.timestamp() * 1000)
        if isinstance(package.creation_time, datetime)
        else package.creation_time,
        "InferenceSpecification": package.inference_specification,
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": package.model_approval_status,
        "ApprovalDescription": package.approval_description,
    }
    return {
        "Source": "aws.sagemaker",
        "DetailType": "SageMaker Model Package State Change",
        "Detail": json.dumps({k: v for k, v in detail.items() if v is not None}, default=str),
        "Resources": [package.arn],
        "EventBusName": "default",
    }


@contextlib.contextmanager
def _registry_events_installed() -> Iterator[None]:
    original_create: Callable[..., str] = SageMakerModelBackend.create_model_package
    original_update: Callable[..., str] = SageMakerModelBackend.update_model_package

    def announce(backend: SageMakerModelBackend, arn: str) -> None:
        package = backend.model_packages.get(backend.model_package_name_mapping.get(arn, arn))
        if package is not None and package.model_package_group_name:
            entry = package_state_change(package, backend.account_id, backend.region_name)
            events_backends[backend.account_id][backend.region_name].put_events([entry])

    def create_model_package(self: SageMakerModelBackend, *args: Any, **kwargs: Any) -> str:
        arn = original_create(self, *args, **kwargs)
        announce(self, arn)
        return arn

    def update_model_package(self: SageMakerModelBackend, *args: Any, **kwargs: Any) -> str:
        arn = original_update(self, *args, **kwargs)
        announce(self, arn)
        return arn

    SageMakerModelBackend.create_model_package = create_model_package  # type: ignore[method-assign]
    SageMakerModelBackend.update_model_package = update_model_package  # type: ignore[method-assign]
    try:
        yield
    finally:
        SageMakerModelBackend.create_model_package = original_create  # type: ignore[method-assign]
        SageMakerModelBackend.update_model_package = original_update  # type: ignore[method-assign]


def invoke_response(hosting: EndpointHosting, response: Any) -> tuple[int, dict[str, str], Any]:
    """InvokeEndpoint as SageMaker answers it: the container's body, or ModelError with its status."""
    name = response.path.split("/")[2]
    body = response.body if isinstance(response.body, bytes) else str(response.body or "").encode()
    try:
        answer = hosting.invoke(
            name,
            body,
            response.headers.get("Content-Type", "application/octet-stream"),
            response.headers.get("Accept"),
            response.headers.get("X-Amzn-SageMaker-Target-Variant"),
            # InvokeEndpoint's InferenceId travels in this header (botocore's sagemaker-runtime model).
            response.headers.get("X-Amzn-SageMaker-Inference-Id"),
        )
    except HostingError as exc:
        return runtime_error(400, "ValidationError", str(exc))
    except (OSError, http.client.HTTPException) as exc:
        # The container went away mid-request (it crashed): SageMaker answers with a retryable 503.
        return runtime_error(503, "ServiceUnavailable", f"the endpoint's container did not answer: {exc}")
    if answer.status != 200:
        message = answer.body.decode(errors="replace")
        side = "client" if answer.status < 500 else "server"
        return runtime_error(
            424,
            "ModelError",
            f'Received {side} error ({answer.status}) from primary with message "{message}".',
            OriginalStatusCode=answer.status,
            OriginalMessage=message,
            LogStreamArn=f"arn:aws:logs:{response.region}:{response.current_account}:log-group:"
            f"{LOG_GROUP}/{name}",
        )
    headers = {"Content-Type": answer.content_type, "x-Amzn-Invoked-Production-Variant": answer.variant}
    return 200, headers, answer.body


@contextlib.contextmanager
def hosting_installed(hosting: EndpointHosting) -> Iterator[None]:
    original_create: Callable[..., Any] = SageMakerModelBackend.create_endpoint
    original_delete: Callable[..., None] = SageMakerModelBackend.delete_endpoint
    original_invoke: Callable[..., Any] = SageMakerRuntimeResponse.invoke_endpoint

    def create_endpoint(self: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
        endpoint = original_create(self, *args, **kwargs)
        hosting.created(endpoint.endpoint_name, endpoint.endpoint_config_name)
        return endpoint

    def delete_endpoint(self: SageMakerModelBackend, endpoint_name: str) -> None:
        original_delete(self, endpoint_name)
        hosting.deleted(endpoint_name)

    def update_endpoint(self: SageMakerResponse) -> ActionResult:
        name = self._get_param("EndpointName")
        try:
            hosting.update(name, self._get_param("EndpointConfigName"), self._get_param("DeploymentConfig"))
        except HostingError as exc:
            raise ValidationError(message=str(exc)) from exc
        return ActionResult({"EndpointArn": self.sagemaker_backend.endpoints[name].arn})

    def update_endpoint_weights_and_capacities(self: SageMakerResponse) -> ActionResult:
        """The plane's real capacity changes (capacity.py), in the background: the endpoint is Updating
        until it has (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpointWeightsAndCapacities.html)."""
        name = self._get_param("EndpointName")
        if name not in self.sagemaker_backend.endpoints:
            raise ValidationError(message=f"Could not find endpoint '{name}'.")
        try:
            hosting.update_capacity(name, self._get_param("DesiredWeightsAndCapacities"))
        except HostingError as exc:
            raise ValidationError(message=str(exc)) from exc
        return ActionResult({"EndpointArn": self.sagemaker_backend.endpoints[name].arn})

    def invoke_endpoint(self: SageMakerRuntimeResponse) -> Any:
        return invoke_response(hosting, self)

    SageMakerModelBackend.create_endpoint = create_endpoint  # type: ignore[method-assign]
    SageMakerModelBackend.delete_endpoint = delete_endpoint  # type: ignore[method-assign]
    SageMakerResponse.update_endpoint = update_endpoint  # type: ignore[attr-defined]
    original_capacities = SageMakerResponse.update_endpoint_weights_and_capacities
    SageMakerResponse.update_endpoint_weights_and_capacities = update_endpoint_weights_and_capacities  # type: ignore[method-assign]
    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint  # type: ignore[method-assign]
    try:
        with _registry_events_installed():
            yield
    finally:
        SageMakerModelBackend.create_endpoint = original_create  # type: ignore[method-assign]
        SageMakerModelBackend.delete_endpoint = original_delete  # type: ignore[method-assign]
        del SageMakerResponse.update_endpoint  # type: ignore[attr-defined]
        SageMakerResponse.update_endpoint_weights_and_capacities = original_capacities  # type: ignore[method-assign]
        SageMakerRuntimeResponse.invoke_endpoint = original_invoke  # type: ignore[method-assign]


def runtime_error(status: int, code: str, message: str, **fields: Any) -> tuple[int, dict[str, str], str]:
    """A sagemaker-runtime (rest-json) error: the code in x-amzn-ErrorType, the members in the body."""
    return (
        status,
        # moto's response pipeline reads the status from this header, not from the tuple.
        {"x-amzn-ErrorType": code, "Content-Type": "application/json", "status": str(status)},
        json.dumps({"message": message, **fields}),
    )
