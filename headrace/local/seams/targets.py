"""The AWS side of delivery to targets (headrace/local/targets.py), on moto's backends in this process.

A Lambda function is invoked through `LambdaFunction._invoke_lambda`, the seam that runs the function's own
code in-process once `seams.installed` has patched it; a state machine runs in the ASL-interpreting backend.
A function's asynchronous settings come from moto's EventInvokeConfig and from its DeadLetterConfig, which
moto drops and `dead_letter_configs_kept` keeps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from moto.awslambda.models import LambdaFunction, lambda_backends
from moto.core.exceptions import JsonRESTError
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends
from moto.stepfunctions.parser.models import stepfunctions_parser_backends
from moto.utilities.arns import parse_arn

from headrace.local import lambda_limits
from headrace.local.lambda_async import AsyncConfig

# Where moto's LambdaFunction keeps the DeadLetterConfig it was created with, once the seam below is on.
DEAD_LETTER_ATTRIBUTE = "headrace_dead_letter_config"


@contextlib.contextmanager
def dead_letter_configs_kept() -> Iterator[None]:
    """moto accepts DeadLetterConfig (CreateFunction, AWS::Lambda::Function) and forgets it: keep it on the
    function, for Lambda's asynchronous queue to send failed events to."""
    original_init: Callable[..., None] = LambdaFunction.__init__
    original_cfn = LambdaFunction.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def init(self: LambdaFunction, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original_init(self, account_id, spec, *args, **kwargs)
        setattr(self, DEAD_LETTER_ATTRIBUTE, spec.get("DeadLetterConfig") or {})

    def from_cloudformation(
        cls: type[LambdaFunction],
        resource_name: str,
        cloudformation_json: dict[str, Any],
        *args: Any,
        **kw: Any,
    ) -> LambdaFunction:
        function: LambdaFunction = original_cfn(cls, resource_name, cloudformation_json, *args, **kw)
        config = cloudformation_json.get("Properties", {}).get("DeadLetterConfig") or {}
        setattr(function, DEAD_LETTER_ATTRIBUTE, config)
        return function

    LambdaFunction.__init__ = init  # type: ignore[method-assign]
    LambdaFunction.create_from_cloudformation_json = classmethod(from_cloudformation)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        LambdaFunction.__init__ = original_init  # type: ignore[method-assign]
        LambdaFunction.create_from_cloudformation_json = classmethod(original_cfn)  # type: ignore[method-assign,assignment]


class MotoTargets:
    """`TargetServices` on moto's Step Functions, Lambda and SQS backends."""

    def start_execution(self, state_machine_arn: str, name: str, payload: str) -> None:
        arn = parse_arn(state_machine_arn)
        backend = stepfunctions_parser_backends[arn.account][arn.region]
        backend.start_execution(state_machine_arn, name=name, execution_input=payload)

    def _function(self, function_arn: str) -> LambdaFunction:
        arn = parse_arn(function_arn)
        return lambda_backends[arn.account][arn.region].get_function(function_arn)  # raises when missing

    def require_function(self, function_arn: str) -> None:
        self._function(function_arn)

    def invoke_function(self, function_arn: str, payload: str) -> tuple[str, bool]:
        try:
            result, errored, _ = self._function(function_arn)._invoke_lambda(event=payload)
        except JsonRESTError as refused:  # the seam's answer for lambda_limits.Throttled
            if refused.error_type == lambda_limits.Throttled.code:
                raise lambda_limits.Throttled(refused.message) from refused
            raise
        return str(result), bool(errored)

    def async_config(self, function_arn: str) -> AsyncConfig:
        function = self._function(function_arn)
        invoke_config = function.event_invoke_config[0].config if function.event_invoke_config else {}
        destinations = invoke_config.get("DestinationConfig", {})
        return AsyncConfig(
            maximum_retry_attempts=int(
                invoke_config.get("MaximumRetryAttempts", lambda_limits.ASYNC_RETRY_ATTEMPTS)
            ),
            maximum_event_age_s=float(
                invoke_config.get("MaximumEventAgeInSeconds", lambda_limits.ASYNC_MAXIMUM_EVENT_AGE_S)
            ),
            on_success=destinations.get("OnSuccess", {}).get("Destination"),
            on_failure=destinations.get("OnFailure", {}).get("Destination"),
            dead_letter=getattr(function, DEAD_LETTER_ATTRIBUTE, {}).get("TargetArn"),
        )

    def send_message(self, queue_arn: str, body: str, attributes: Mapping[str, str]) -> None:
        """To a queue, or to a topic (a function's dead-letter target or destination may be either)."""
        arn = parse_arn(queue_arn)
        if arn.service == "sns":
            sns_backends[arn.account][arn.region].publish(
                message=body,
                arn=queue_arn,
                message_attributes={
                    name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
                },
            )
            return
        sqs_backends[arn.account][arn.region].send_message(
            queue_name=arn.resource_id,
            message_body=body,
            message_attributes={
                name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
            },
        )
