"""The two places where the local plane plugs compute into moto (moto 5.2.5, pinned; see DESIGN.md).

0. CloudFormation creates state machines in moto's plain Step Functions backend, while the API serves (and
   executes) from the ASL-interpreting parser backend once `execute_state_machine` is on: state machines
   from the stacks are routed to the parser backend so that the API sees, and runs, them.
1. `LambdaFunction._invoke_lambda`: moto would start the function in Docker. We run the function's own
   deployed code in-process instead (HandlerRuntime). Step Functions `lambda:invoke` tasks, `lambda invoke`
   calls over HTTP and EventBridge deliveries all pass through here.
2. `Rule.send_to_targets`: moto delivers to Logs/SQS/buses only and raises NotImplementedError for Lambda
   and Step Functions targets (swallowed for S3's notifications). We deliver those two kinds ourselves
   (headrace/local/targets.py, on moto through targets.py here), asynchronously and with the target's retry
   policy and dead-letter queue, as EventBridge does, and hand every other target back to moto.
   cloudwatch.py and scheduler.py hand moto's alarms and schedules to the evaluator and the runner.

3. SageMaker (sagemaker.py): training jobs and endpoints run as local containers (headrace/local/sagemaker/),
   `sagemaker` Step Functions tasks reach them (sfn_sagemaker.py), and the registry emits its events.
   Every SageMaker request is first checked as SageMaker checks it (sagemaker_requests.py).

4. IAM (iam.py, when the plane enforces it): every call a deployed resource makes is authorized as its role,
   and rule deliveries as EventBridge checks them (the target's role, the function's resource policy).

5. Step Functions' 256 KiB payload quota and its terminal States.DataLimitExceeded (sfn_payloads.py).

Nothing here knows about models, datasets or any pipeline step: it only moves events to code.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import moto.stepfunctions.models as stepfunctions_models
from moto.awslambda.models import LambdaFunction
from moto.core.exceptions import JsonRESTError
from moto.events.models import Rule
from moto.events.utils import EventTemplateParser
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from headrace.local.lambda_limits import RequestTooLarge, Throttled
from headrace.local.lambda_runtime import FunctionSpec, HandlerRuntime
from headrace.local.sagemaker.hosting import EndpointHosting
from headrace.local.sagemaker.training import TrainingCompute
from headrace.local.sagemaker.transform import TransformCompute
from headrace.local.sagemaker.tuning import TuningCompute
from headrace.local.seams.iam import LocalIam
from headrace.local.seams.iam_policies import bucket_policies_left_to_the_plane
from headrace.local.seams.iam_targets import RuleTargets
from headrace.local.seams.sagemaker import hosting_installed, training_installed
from headrace.local.seams.sagemaker_policies import group_policies_installed
from headrace.local.seams.sagemaker_requests import requests_checked
from headrace.local.seams.sagemaker_transform import transform_installed
from headrace.local.seams.sagemaker_tuning import tuning_installed
from headrace.local.seams.sfn_payloads import payloads_limited
from headrace.local.seams.targets import dead_letter_configs_kept
from headrace.local.targets import DEFAULT_DELIVERY_ATTEMPTS, Delivery, EventDelivery, delivered_here

log = logging.getLogger("headrace.local")


def function_spec(function: LambdaFunction) -> FunctionSpec:
    return FunctionSpec(
        name=function.function_name,
        arn=function.function_arn,
        handler=function.handler or "handler.handler",
        code_sha256=function.code_sha_256,
        environment={k: str(v) for k, v in (function.environment_vars or {}).items()},
        timeout_s=int(function.timeout),
        memory_mb=int(function.memory_size),
        role_arn=str(function.role or ""),
        reserved_concurrency=None
        if function.reserved_concurrency is None
        else int(function.reserved_concurrency),
    )


def normalize_event(event: dict[str, Any]) -> dict[str, Any]:
    """Give an event moto routes the shape AWS sends: an ISO time (moto: epoch seconds), and for S3's, a
    fresh id (moto: one fixed id), `etag` (moto: `eTag`) and a URL-encoded key (moto: the raw key)."""
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
    if "key" in obj:  # S3 form-encodes the key ("a b+c.csv" arrives as "a+b%2Bc.csv"); moto sends it raw
        obj["key"] = quote_plus(str(obj["key"]), safe="/")
    return event


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
def installed(
    runtime: HandlerRuntime,
    delivery: EventDelivery,
    training: TrainingCompute | None = None,
    hosting: EndpointHosting | None = None,
    iam: LocalIam | None = None,
    transform: TransformCompute | None = None,
    tuning: TuningCompute | None = None,
) -> Iterator[None]:
    """Patch moto for as long as the block runs; the originals are restored afterwards."""
    original_invoke: Callable[..., Any] = LambdaFunction._invoke_lambda
    original_send: Callable[..., Any] = Rule.send_to_targets

    def invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        payload = json.loads(event) if isinstance(event, str | bytes) and event else (event or {})
        try:
            result = runtime.invoke(function_spec(self), self.code_bytes, payload)
        except (RequestTooLarge, Throttled) as refused:  # Lambda answers 413 / 429 and runs nothing
            error = JsonRESTError(refused.code, str(refused))
            error.code = refused.status
            raise error from None
        return json.dumps(result.payload, default=str), result.errored, result.log

    def send_to_targets(self: Rule, original_event: dict[str, Any], transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(original_event):  # type: ignore[arg-type]
            return
        ours = [t for t in self.targets if delivered_here(t["Arn"])]
        theirs = [t for t in self.targets if t not in ours]
        if theirs:
            moto_rule = copy.copy(self)
            moto_rule.targets = theirs
            original_send(moto_rule, original_event, transform_input)
        event = normalize_event(original_event)
        for target in ours:
            if iam and (denied := RuleTargets(iam).denial(self.arn, target)):
                RuleTargets(iam).dead_letter(
                    self.arn, target, _target_event(target, event, transform_input), denied
                )
                continue
            attempts = target.get("RetryPolicy", {}).get(
                "MaximumRetryAttempts", DEFAULT_DELIVERY_ATTEMPTS - 1
            )
            delivery.submit(
                Delivery(
                    rule_arn=self.arn,
                    target=target,
                    event=_target_event(target, event, transform_input),
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
            requests_checked(),
            payloads_limited(),
            dead_letter_configs_kept(),
            bucket_policies_left_to_the_plane(),
            group_policies_installed(),
            training_installed(training) if training else contextlib.nullcontext(),
            transform_installed(transform) if transform else contextlib.nullcontext(),
            tuning_installed(tuning) if tuning else contextlib.nullcontext(),
            hosting_installed(hosting) if hosting else contextlib.nullcontext(),
            iam.installed() if iam else contextlib.nullcontext(),
        ):
            yield
    finally:
        LambdaFunction._invoke_lambda = original_invoke  # type: ignore[method-assign]
        Rule.send_to_targets = original_send  # type: ignore[method-assign]
        stepfunctions_models.stepfunctions_backends = original_backends
