"""The pieces every Lambda function is made of: one function per folder under functions/, its environment
computed from the settings class its handler parses (stacks/wiring.py), and the state that invokes a workflow
step with the retries Headrace uses everywhere."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from headrace.config import ModelConfig
from headrace.lambda_env import FunctionSettings
from headrace.layers import LAMBDA_ARCHITECTURE, LAMBDA_PYTHON_RUNTIME
from headrace.stages import StageSettings
from stacks import checkov, nag
from stacks.assets import FUNCTIONS_DIR, ManagedLayers, stage_function_asset, staging_directory
from stacks.stage import LAMBDA_LOGS, log_group
from stacks.wiring import Wiring

# SQS's longest retention: time to look at what could not be delivered or processed before it is gone.
DLQ_RETENTION = Duration.days(14)

_ARCHITECTURES = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}

# Transient failures worth a retry: Lambda's service's own.
LAMBDA_TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
]


@dataclass(frozen=True)
class StepFunction:
    """One Lambda function: its folder under functions/, the settings class its handler parses (which
    decides its environment), its name and its sizing."""

    construct_id: str
    folder: str
    settings: type[FunctionSettings]
    function_name: str
    description: str
    memory_mb: int
    timeout: Duration
    needs_pandas: bool
    # Invoked asynchronously (an EventBridge target, not a workflow step): what still fails after Lambda's
    # own retries goes to a dead-letter queue of its own.
    invoked_async: bool = False
    # Powertools' service name (a dimension of every metric the function emits); the function's name if unset.
    service_name: str | None = None


@dataclass(frozen=True)
class FunctionFactory:
    """Builds every function of a stage the same way: its asset (its folder, headrace/ and the stage's
    models.json), the managed layers, its own log group and role, and the environment its settings ask for."""

    models: Sequence[ModelConfig]
    stage: StageSettings
    key: kms.IKey
    wiring: Wiring

    def function(self, scope: Construct, step: StepFunction, layers: ManagedLayers) -> lambda_.Function:
        """The function in a construct of its own, `step.construct_id`, under `scope`."""
        return self.function_in(Construct(scope, step.construct_id), step, layers)

    def function_in(self, owner: Construct, step: StepFunction, layers: ManagedLayers) -> lambda_.Function:
        """The function, its log group (encrypted with the stage key), role and dead-letter queue as children
        of `owner` itself."""
        function_logs = log_group(owner, "Logs", f"{LAMBDA_LOGS}{step.function_name}", self.stage, self.key)
        code = stage_function_asset(FUNCTIONS_DIR / step.folder, self.models, staging_directory(owner))
        failed = dead_letter_queue(owner, "FailedInvocations", self.key) if step.invoked_async else None
        function = lambda_.Function(
            owner,
            "Function",
            function_name=step.function_name,
            description=step.description,
            runtime=lambda_.Runtime(LAMBDA_PYTHON_RUNTIME, lambda_.RuntimeFamily.PYTHON),
            architecture=_ARCHITECTURES[LAMBDA_ARCHITECTURE],
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(code)),
            layers=[layers.powertools] + ([layers.sdk_for_pandas] if step.needs_pandas else []),
            memory_size=step.memory_mb,
            timeout=step.timeout,
            log_group=function_logs,
            role=execution_role(owner, function_logs, step.function_name),
            environment=self.wiring.environment(
                step.settings, step.service_name or step.function_name, pandas_layer=step.needs_pandas
            ),
            dead_letter_queue=failed,
            retry_attempts=2 if step.invoked_async else None,
        )
        nag.accept_pinned_runtime(function)
        checkov.accept_function(function, invoked_async=step.invoked_async)
        return function


def dead_letter_queue(scope: Construct, construct_id: str, key: kms.IKey) -> sqs.Queue:
    """A queue for what failed, encrypted with the stage key (the key policy lets EventBridge use it; a
    function is granted it with the queue) and reachable over TLS only."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=DLQ_RETENTION,
    )


def execution_role(scope: Construct, log_group: logs.ILogGroup, function_name: str) -> iam.Role:
    """A function's role, allowed to write to its own log group and nothing else yet.

    In place of the AWSLambdaBasicExecutionRole managed policy CDK attaches by default, which may create and
    write every log group of the account.
    """
    role = iam.Role(
        scope,
        "Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"Lambda function {function_name}",
    )
    log_group.grant_write(role)
    return role


def invoke_step(
    scope: Construct,
    construct_id: str,
    function: lambda_.IFunction,
    payload: Mapping[str, Any],
    result_path: str,
) -> tasks.LambdaInvoke:
    """A Lambda step whose result (the function's response only) lands at `result_path`."""
    task = tasks.LambdaInvoke(
        scope,
        construct_id,
        lambda_function=function,
        payload=sfn.TaskInput.from_object(dict(payload)),
        payload_response_only=True,
        retry_on_service_exceptions=False,
        result_path=result_path,
        # Past the function's own timeout: a task stuck beyond this is retried (States.Timeout).
        task_timeout=sfn.Timeout.duration(_task_timeout(function)),
    )
    task.add_retry(
        errors=LAMBDA_TRANSIENT,
        interval=Duration.seconds(2),
        max_attempts=5,
        backoff_rate=2,
        jitter_strategy=sfn.JitterType.FULL,
    )
    task.add_retry(errors=[sfn.Errors.TIMEOUT], interval=Duration.seconds(10), max_attempts=2, backoff_rate=2)
    return task


def execution_payload() -> dict[str, str]:
    """`$$.Execution`'s name and ARN, as every step's `execution` field."""
    return {
        "name": sfn.JsonPath.string_at("$$.Execution.Name"),
        "id": sfn.JsonPath.string_at("$$.Execution.Id"),
    }


def _task_timeout(function: lambda_.IFunction) -> Duration:
    timeout = function.timeout if isinstance(function, lambda_.Function) else None
    seconds = timeout.to_seconds() if timeout is not None else 900
    return Duration.seconds(seconds + 60)
