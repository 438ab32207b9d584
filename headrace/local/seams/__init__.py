"""The two places where the local plane plugs compute into moto (moto 5.2.5, pinned; see DESIGN.md).

0. CloudFormation creates state machines in moto's plain Step Functions backend, while the API serves (and
   executes) from the ASL-interpreting parser backend once `execute_state_machine` is on: state machines
   from the stacks are routed to the parser backend so that the API sees, and runs, them.
1. `LambdaFunction._invoke_lambda`: moto would start the function in Docker. We run the function's own
   deployed code in-process instead (HandlerRuntime). Step Functions `lambda:invoke` tasks, `lambda invoke`
   calls over HTTP and EventBridge deliveries all pass through here.
2. `Rule.send_to_targets`: moto delivers to Logs/SQS/buses only and raises NotImplementedError for Lambda
   and Step Functions targets (swallowed for S3's notifications). We deliver those two kinds ourselves,
   asynchronously and with the target's retry policy and dead-letter queue, as EventBridge does, and hand
   every other target back to moto.

3. SageMaker: `sagemaker` tasks in state machines go to our integration (sfn_sagemaker.py, with `.sync`);
   CreateTrainingJob starts the job's container locally (training.py); StopTrainingJob, which moto lacks,
   stops it. CreateEndpoint, UpdateEndpoint (which moto lacks) and DeleteEndpoint start, roll and stop the
   endpoint's serve containers (hosting.py), and sagemaker-runtime InvokeEndpoint reaches them.
4. The registry's events: a model package created or updated with an approval status puts a "SageMaker Model
   Package State Change" event on the default bus, as SageMaker does (moto emits none).

Nothing here knows about models, datasets or any pipeline step: it only moves events to code.
"""

from __future__ import annotations

import contextlib
import copy
import http.client
import inspect
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import moto.stepfunctions.models as stepfunctions_models
from moto.awslambda.models import LambdaFunction, lambda_backends
from moto.events.models import Rule
from moto.events.utils import EventTemplateParser
from moto.sqs.models import sqs_backends
from moto.stepfunctions.parser.models import stepfunctions_parser_backends
from moto.utilities.arns import parse_arn

from headrace.local.hosting import EndpointHosting
from headrace.local.lambda_runtime import FunctionSpec, HandlerRuntime, InvocationResult
from headrace.local.training import TrainingCompute

log = logging.getLogger("headrace.local")

# EventBridge's default retry policy allows 185 attempts over 24 h; locally a handful proves the path.
DEFAULT_DELIVERY_ATTEMPTS = 3


def function_spec(function: LambdaFunction) -> FunctionSpec:
    return FunctionSpec(
        name=function.function_name,
        arn=function.function_arn,
        handler=function.handler or "handler.handler",
        code_sha256=function.code_sha_256,
        environment={k: str(v) for k, v in (function.environment_vars or {}).items()},
        timeout_s=int(function.timeout),
        memory_mb=int(function.memory_size),
    )


def normalize_event(event: dict[str, Any]) -> dict[str, Any]:
    """Give an event moto routes the shape AWS sends: an ISO time (moto: epoch seconds), and for S3's, a
    fresh id (moto: one fixed id) and `etag` (moto: `eTag`)."""
    event = copy.deepcopy(event)
    if isinstance(event.get("time"), int | float):
        event["time"] = datetime.fromtimestamp(event["time"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event.pop("ingestion-time", None)
    if event.get("source") != "aws.s3":
        return event
    event["id"] = str(uuid.uuid4())
    obj = event.get("detail", {}).get("object", {})
    if "eTag" in obj:
        obj["etag"] = obj.pop("eTag")
    if obj.get("version-id") in (None, "null"):
        obj.pop("version-id", None)
    return event


@dataclass
class Delivery:
    rule_arn: str
    target: dict[str, Any]
    event: dict[str, Any]
    account: str
    region: str
    attempts_left: int


class EventDelivery:
    """A worker thread that delivers rule matches to Lambda functions and state machines."""

    def __init__(self, runtime: HandlerRuntime) -> None:
        self._runtime = runtime
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="headrace-event-delivery", daemon=True)
        self._pending = 0
        self._idle = threading.Condition()
        self.delivered: list[dict[str, Any]] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def submit(self, delivery: Delivery) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(delivery)

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """True once every submitted event was delivered (or given up on)."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def _run(self) -> None:
        while (delivery := self._queue.get()) is not None:
            try:
                self._deliver(delivery)
            except Exception:
                log.exception("event delivery to %s failed", delivery.target.get("Arn"))
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, delivery: Delivery) -> None:
        arn = parse_arn(delivery.target["Arn"])
        if arn.service == "states":
            backend = stepfunctions_parser_backends[delivery.account][delivery.region]
            rule_name = delivery.rule_arn.rsplit("/", 1)[-1]
            # EventBridge names its executions itself; a generated name keeps every delivery distinct.
            name = f"{rule_name[:40]}-{uuid.uuid4().hex}"[:80]
            backend.start_execution(
                delivery.target["Arn"], name=name, execution_input=json.dumps(delivery.event)
            )
            self.delivered.append({"target": delivery.target["Arn"], "execution": name})
            return
        function = lambda_backends[delivery.account][delivery.region].get_function(delivery.target["Arn"])
        for attempt in range(1, delivery.attempts_left + 1):
            result: InvocationResult = self._runtime.invoke(
                function_spec(function), function.code_bytes, delivery.event
            )
            if not result.errored:
                self.delivered.append({"target": delivery.target["Arn"], "attempt": attempt})
                return
            log.warning(
                "delivery attempt %d to %s failed: %s", attempt, function.function_name, result.payload
            )
        self._dead_letter(delivery, result.payload)

    def _dead_letter(self, delivery: Delivery, error: Any) -> None:
        dlq_arn = delivery.target.get("DeadLetterConfig", {}).get("Arn")
        if not dlq_arn:
            log.error(
                "event to %s dropped after retries (no dead-letter queue): %s", delivery.target["Arn"], error
            )
            return
        dlq = parse_arn(dlq_arn)
        sqs_backends[dlq.account][dlq.region].send_message(
            queue_name=dlq.resource_id,
            message_body=json.dumps(delivery.event),
            message_attributes={
                "ERROR_MESSAGE": {"DataType": "String", "StringValue": json.dumps(error, default=str)[:1000]},
                "RULE_ARN": {"DataType": "String", "StringValue": delivery.rule_arn},
                "TARGET_ARN": {"DataType": "String", "StringValue": delivery.target["Arn"]},
            },
        )


def _target_event(target: dict[str, Any], event: dict[str, Any], transform_input: bool) -> dict[str, Any]:
    if "Input" in target:
        return dict(json.loads(target["Input"]))
    transformer = target.get("InputTransformer")
    if transform_input and transformer:
        parsed = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,  # type: ignore[arg-type]
        )
        return parsed if isinstance(parsed, dict) else {"input": parsed}
    return event


@contextlib.contextmanager
def _sagemaker_installed(training: TrainingCompute) -> Iterator[None]:
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse
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
        training.start(bound.arguments["training_job_name"], definitions)
        return created

    def stop_training_job(self: SageMakerResponse) -> ActionResult:
        name = self._get_param("TrainingJobName")
        if name not in self.sagemaker_backend.training_jobs:
            raise ValidationError(message=f"Requested resource not found: training job {name}")
        training.stop(name)
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
    from moto.events.models import events_backends
    from moto.sagemaker.models import SageMakerModelBackend

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


def _invoke_response(hosting: EndpointHosting, response: Any) -> tuple[int, dict[str, str], Any]:
    """InvokeEndpoint as SageMaker answers it: the container's body, or ModelError with its status."""
    from headrace.local.hosting import HostingError

    name = response.path.split("/")[2]
    body = response.body if isinstance(response.body, bytes) else str(response.body or "").encode()
    try:
        answer = hosting.invoke(
            name,
            body,
            response.headers.get("Content-Type", "application/octet-stream"),
            response.headers.get("Accept"),
            response.headers.get("X-Amzn-SageMaker-Target-Variant"),
        )
    except HostingError as exc:
        return _error(400, "ValidationError", str(exc))
    except (OSError, http.client.HTTPException) as exc:
        # The container went away mid-request (it crashed): SageMaker answers with a retryable 503.
        return _error(503, "ServiceUnavailable", f"the endpoint's container did not answer: {exc}")
    if answer.status != 200:
        message = answer.body.decode(errors="replace")
        side = "client" if answer.status < 500 else "server"
        return _error(
            424,
            "ModelError",
            f'Received {side} error ({answer.status}) from primary with message "{message}".',
            OriginalStatusCode=answer.status,
            OriginalMessage=message,
            LogStreamArn=f"arn:aws:logs:{response.region}:{response.current_account}:log-group:"
            f"/aws/sagemaker/Endpoints/{name}",
        )
    headers = {"Content-Type": answer.content_type, "x-Amzn-Invoked-Production-Variant": answer.variant}
    return 200, headers, answer.body


@contextlib.contextmanager
def _hosting_installed(hosting: EndpointHosting) -> Iterator[None]:
    from moto.core.responses import ActionResult
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

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
        hosting.update(name, self._get_param("EndpointConfigName"), self._get_param("DeploymentConfig"))
        return ActionResult({"EndpointArn": self.sagemaker_backend.endpoints[name].arn})

    def invoke_endpoint(self: SageMakerRuntimeResponse) -> Any:
        return _invoke_response(hosting, self)

    SageMakerModelBackend.create_endpoint = create_endpoint  # type: ignore[method-assign]
    SageMakerModelBackend.delete_endpoint = delete_endpoint  # type: ignore[method-assign]
    SageMakerResponse.update_endpoint = update_endpoint  # type: ignore[attr-defined]
    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint  # type: ignore[method-assign]
    try:
        with _registry_events_installed():
            yield
    finally:
        SageMakerModelBackend.create_endpoint = original_create  # type: ignore[method-assign]
        SageMakerModelBackend.delete_endpoint = original_delete  # type: ignore[method-assign]
        del SageMakerResponse.update_endpoint  # type: ignore[attr-defined]
        SageMakerRuntimeResponse.invoke_endpoint = original_invoke  # type: ignore[method-assign]


def _error(status: int, code: str, message: str, **fields: Any) -> tuple[int, dict[str, str], str]:
    """A sagemaker-runtime (rest-json) error: the code in x-amzn-ErrorType, the members in the body."""
    return (
        status,
        # moto's response pipeline reads the status from this header, not from the tuple.
        {"x-amzn-ErrorType": code, "Content-Type": "application/json", "status": str(status)},
        json.dumps({"message": message, **fields}),
    )


@contextlib.contextmanager
def installed(
    runtime: HandlerRuntime,
    delivery: EventDelivery,
    training: TrainingCompute | None = None,
    hosting: EndpointHosting | None = None,
) -> Iterator[None]:
    """Patch moto for as long as the block runs; the originals are restored afterwards."""
    original_invoke: Callable[..., Any] = LambdaFunction._invoke_lambda
    original_send: Callable[..., Any] = Rule.send_to_targets

    def invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        payload = json.loads(event) if isinstance(event, str | bytes) and event else (event or {})
        result = runtime.invoke(function_spec(self), self.code_bytes, payload)
        return json.dumps(result.payload, default=str), result.errored, result.log

    def send_to_targets(self: Rule, original_event: dict[str, Any], transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(original_event):  # type: ignore[arg-type]
            return
        ours = [t for t in self.targets if parse_arn(t["Arn"]).service in ("lambda", "states")]
        theirs = [t for t in self.targets if t not in ours]
        if theirs:
            moto_rule = copy.copy(self)
            moto_rule.targets = theirs
            original_send(moto_rule, original_event, transform_input)
        event = normalize_event(original_event)
        for target in ours:
            attempts = target.get("RetryPolicy", {}).get(
                "MaximumRetryAttempts", DEFAULT_DELIVERY_ATTEMPTS - 1
            )
            delivery.submit(
                Delivery(
                    rule_arn=self.arn,
                    target=target,
                    event=_target_event(target, event, transform_input),
                    account=self.account_id,
                    region=self.region_name,
                    attempts_left=1 + min(int(attempts), DEFAULT_DELIVERY_ATTEMPTS - 1),
                )
            )

    original_backends = stepfunctions_models.stepfunctions_backends
    # Read at call time by StateMachine.create/update/delete_from_cloudformation_json.
    stepfunctions_models.stepfunctions_backends = stepfunctions_parser_backends  # type: ignore[assignment]
    LambdaFunction._invoke_lambda = invoke_lambda  # type: ignore[method-assign]
    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign,assignment]
    try:
        with (
            _sagemaker_installed(training) if training else contextlib.nullcontext(),
            _hosting_installed(hosting) if hosting else contextlib.nullcontext(),
        ):
            yield
    finally:
        LambdaFunction._invoke_lambda = original_invoke  # type: ignore[method-assign]
        Rule.send_to_targets = original_send  # type: ignore[method-assign]
        stepfunctions_models.stepfunctions_backends = original_backends


def publish_aws_parameter(account: str, region: str, name: str, value: str) -> None:
    """Create an AWS-owned public SSM parameter (`/aws/service/...`), which the SSM API refuses to write.

    CDK templates resolve managed layer ARNs and the bootstrap version through such parameters.
    """
    from moto.ssm.models import Parameter, ssm_backends

    backend = ssm_backends[account][region]
    versions = backend._parameters[name]
    versions.append(
        Parameter(  # type: ignore[abstract]
            account_id=account,
            name=name,
            value=value,
            parameter_type="String",
            description="published by the Headrace local plane",
            allowed_pattern=None,
            keyid=None,
            last_modified_date=datetime.now(UTC),
            version=len(versions) + 1,
            data_type="text",
        )
    )
