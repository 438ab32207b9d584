"""Step Functions' optimized SageMaker integration for moto's ASL interpreter, `.sync` included.

moto marks `sagemaker` "unsupported": request-response calls are forwarded to moto's SageMaker, `.sync` is
refused. This service forwards the same way and, for `.sync`, polls the describe call until a terminal
status, as moto's own AWS Batch integration does: Completed returns the description, Failed/Stopped fail
the task with `States.TaskFailed` and the description (FailureReason included) as the cause.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback as callback,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
    ResourceCondition,
    ResourceRuntimePart,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

from headrace.serving.deploy import SAGEMAKER_ERROR

# action -> (describe call, its name parameter, status field, success, failures)
_SYNC_ACTIONS: Final[dict[str, tuple[str, str, str, str, set[str]]]] = {
    "createtrainingjob": (
        "describe_training_job",
        "TrainingJobName",
        "TrainingJobStatus",
        "Completed",
        {"Failed", "Stopped"},
    ),
    "createhyperparametertuningjob": (
        "describe_hyper_parameter_tuning_job",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobStatus",
        "Completed",
        {"Failed", "Stopped"},
    ),
    "createtransformjob": (
        "describe_transform_job",
        "TransformJobName",
        "TransformJobStatus",
        "Completed",
        {"Failed", "Stopped"},
    ),
}


def _json_ready(value: Any) -> Any:
    """boto3's parsed response as Step Functions passes it on: timestamps become epoch milliseconds."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def _refused(error: ClientError) -> str:
    """The cause Step Functions gives a SageMaker refusal (SAGEMAKER_ERROR, whatever its code): the API's
    message, then the SDK for Java's details."""
    details, metadata = error.response.get("Error", {}), error.response.get("ResponseMetadata", {})
    return (
        f"{details.get('Message', '')} (Service: AmazonSageMaker; Status Code: "
        f"{metadata.get('HTTPStatusCode', 400)}; Error Code: {details.get('Code', 'Unknown')}; "
        f"Request ID: {metadata.get('RequestId', '')}; Proxy: null)"
    )


# Jobs a resumed execution's `.sync` task attaches to instead of creating (seams/executions.py): a plane
# that stopped mid-wait resumes polling the job it had started, as Step Functions goes on waiting on AWS, and
# the job's end (Failed, Stopped, Completed) then takes the definition's own path, Catch included.
_ATTACH: set[str] = set()


def attach_on_resume(job_name: str) -> None:
    _ATTACH.add(job_name)


class StateTaskServiceSageMaker(callback.StateTaskServiceCallback):
    def __init__(self) -> None:
        super().__init__(
            # moto's ResourceCondition members are plain strings its own annotations call enum members.
            supported_integration_patterns={ResourceCondition.WaitForTaskToken, ResourceCondition.Sync}  # type: ignore[arg-type]
        )

    def _validate_service_integration_is_supported(self) -> None:
        # Checked when a state machine is created, as Step Functions does.
        if (
            self.resource.condition == ResourceCondition.Sync
            and self.resource.api_action.lower() not in _SYNC_ACTIONS
        ):
            raise ValueError(f"sagemaker:{self.resource.api_action}.sync is not supported by the local plane")

    def _client(self, resource_runtime_part: ResourceRuntimePart, state_credentials: StateCredentials) -> Any:
        return boto_client_for(
            service="sagemaker", region=resource_runtime_part.region, state_credentials=state_credentials
        )

    def _eval_service_task(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict[str, Any],
        state_credentials: StateCredentials,
    ) -> None:
        action = self.resource.api_action.lower()
        if self.resource.condition == ResourceCondition.Sync and action in _SYNC_ACTIONS:
            name = normalised_parameters.get(_SYNC_ACTIONS[action][1])
            if name in _ATTACH:
                _ATTACH.discard(name)
                env.stack.append({})  # no create call: the resolver polls the job already running
                return
        client = self._client(resource_runtime_part, state_credentials)
        try:
            response = getattr(client, self._get_boto_service_action())(**normalised_parameters)
        except ClientError as error:
            refused = self._failure(env, CustomErrorName(SAGEMAKER_ERROR), _refused(error))
            raise FailureEventException(refused) from None
        response.pop("ResponseMetadata", None)
        env.stack.append(_json_ready(response))

    def _failure(self, env: Environment, name: ErrorName, cause: str) -> FailureEvent:
        return FailureEvent(
            env=env,
            error_name=name,
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(  # type: ignore[typeddict-item]
                taskFailedEventDetails=TaskFailedEventDetails(
                    resource=self._get_sfn_resource(),
                    resourceType=self._get_sfn_resource_type(),
                    error=name.error_name,
                    cause=cause,
                )
            ),
        )

    def _build_sync_resolver(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict[str, Any],
        state_credentials: StateCredentials,
    ) -> Callable[[], Any] | None:
        action = self.resource.api_action.lower()
        if action not in _SYNC_ACTIONS:
            raise NotImplementedError(f"sagemaker:{self.resource.api_action}.sync is not available locally")
        describe, name_parameter, status_field, success, failures = _SYNC_ACTIONS[action]
        client = self._client(resource_runtime_part, state_credentials)
        env.stack.pop()  # the create call's response; the task's output is the final description
        name = normalised_parameters[name_parameter]

        def resolve() -> dict[str, Any] | None:
            description: dict[str, Any] = _json_ready(getattr(client, describe)(**{name_parameter: name}))
            description.pop("ResponseMetadata", None)
            status = description.get(status_field)
            if status == success:
                return description
            if status in failures:
                failed = StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed)
                raise FailureEventException(self._failure(env, failed, to_json_str(description)))
            return None

        return resolve
