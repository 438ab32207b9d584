"""The AWS side of delivery to targets (headrace/local/targets.py), on moto's backends in this process.

A Lambda function is invoked through `LambdaFunction._invoke_lambda`, the seam that runs the function's own
code in-process once `seams.installed` has patched it; a state machine runs in the ASL-interpreting backend.
"""

from __future__ import annotations

from collections.abc import Mapping

from moto.awslambda.models import LambdaFunction, lambda_backends
from moto.sqs.models import sqs_backends
from moto.stepfunctions.parser.models import stepfunctions_parser_backends
from moto.utilities.arns import parse_arn


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
        result, errored, _ = self._function(function_arn)._invoke_lambda(event=payload)
        return str(result), bool(errored)

    def send_message(self, queue_arn: str, body: str, attributes: Mapping[str, str]) -> None:
        arn = parse_arn(queue_arn)
        sqs_backends[arn.account][arn.region].send_message(
            queue_name=arn.resource_id,
            message_body=body,
            message_attributes={
                name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
            },
        )
