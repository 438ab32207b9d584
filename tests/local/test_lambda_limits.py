"""Lambda's limits on the local plane: a function over its Timeout or MemorySize fails as Lambda reports it
(https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), its sandbox is replaced, and the
caller's path follows: a Step Functions Catch on the error name, an asynchronous event's retries and its
dead-letter queue. Payloads over the quotas are refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from headrace.local.aws import Clients
from headrace.local.lambda_limits import RequestTooLarge
from headrace.local.lambda_runtime import FunctionSpec, HandlerRuntime
from headrace.local.seams import installed
from headrace.local.seams.targets import MotoTargets
from headrace.local.targets import Delivery, EventDelivery, TargetDispatcher
from headrace.waiting import wait_for
from tests.support.moto import handler_zip, lambda_plane

HANDLER = """
import os, time
def handler(event, context):
    if event.get("sleep_s"):
        time.sleep(event["sleep_s"])
    if event.get("allocate_mb"):
        blob = b"x" * (event["allocate_mb"] * 1024 * 1024)  # written, so resident
        return len(blob)
    if event.get("respond_mb"):
        return "x" * (event["respond_mb"] * 1024 * 1024)
    return {"pid": os.getpid(), "remaining_ms": context.get_remaining_time_in_millis()}
"""
ROLE = "arn:aws:iam::123456789012:role/local"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:limited"


CODE = handler_zip({"handler.py": HANDLER})


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HandlerRuntime]:
    runtime = HandlerRuntime(tmp_path_factory.mktemp("code"), {})
    yield runtime
    runtime.close()


def _spec(timeout_s: float = 30, memory_mb: int = 128) -> FunctionSpec:
    return FunctionSpec(
        name="limited",
        arn=ARN,
        handler="handler.handler",
        code_sha256="limited-v1",
        environment={},
        timeout_s=timeout_s,
        memory_mb=memory_mb,
    )


def test_a_function_over_its_timeout_fails_as_lambda_reports_it(runtime: HandlerRuntime) -> None:
    result = runtime.invoke(_spec(timeout_s=1), CODE, {"sleep_s": 10})
    assert result.errored
    assert result.payload["errorType"] == "Sandbox.Timedout"
    assert result.payload["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert "Task timed out after 1.00 seconds" in result.log
    assert result.duration_ms < 5000


def test_a_timed_out_sandbox_is_replaced_by_a_fresh_one(runtime: HandlerRuntime) -> None:
    spec = _spec(timeout_s=2)
    before = runtime.invoke(spec, CODE, {}).payload["pid"]
    assert runtime.invoke(spec, CODE, {}).payload["pid"] == before  # warm: the same environment
    runtime.invoke(spec, CODE, {"sleep_s": 10})
    assert runtime.invoke(spec, CODE, {}).payload["pid"] != before


def test_a_function_over_its_memory_is_killed_as_lambda_reports_it(runtime: HandlerRuntime) -> None:
    result = runtime.invoke(_spec(memory_mb=128), CODE, {"allocate_mb": 200})
    assert result.errored
    assert result.payload["errorType"] == "Runtime.OutOfMemory"
    assert result.payload["errorMessage"].endswith("Runtime exited with error: signal: killed")
    assert result.max_memory_mb > 128
    assert "Memory Size: 128 MB" in result.log


def test_a_function_within_its_memory_runs_and_reports_what_it_used(runtime: HandlerRuntime) -> None:
    result = runtime.invoke(_spec(memory_mb=512), CODE, {"allocate_mb": 100})
    assert not result.errored and result.payload == 100 * 1024 * 1024
    assert 100 < result.max_memory_mb < 512


def test_a_response_over_six_mb_is_replaced_by_lambdas_error(runtime: HandlerRuntime) -> None:
    result = runtime.invoke(_spec(memory_mb=512), CODE, {"respond_mb": 7})
    assert result.errored
    assert result.payload["errorType"] == "Function.ResponseSizeTooLarge"


def test_an_event_over_the_quota_is_refused_before_anything_runs(runtime: HandlerRuntime) -> None:
    with pytest.raises(RequestTooLarge, match="6291456 bytes"):
        runtime.invoke(_spec(), CODE, {"padding": "x" * (6 * 1024 * 1024)})
    with pytest.raises(RequestTooLarge, match="1048576 bytes"):
        runtime.invoke(_spec(), CODE, {"padding": "x" * (1024 * 1024)}, asynchronous=True)
    runtime.invoke(_spec(), CODE, {"padding": "x" * (512 * 1024)}, asynchronous=True)


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Clients, EventDelivery]]:
    with lambda_plane(tmp_path_factory.mktemp("code"), "local") as moto:
        delivery = EventDelivery(TargetDispatcher(MotoTargets()))
        delivery.start()
        with installed(moto.runtime, delivery):
            yield moto.clients, delivery
        delivery.stop()


def _function(
    clients: Clients, name: str, timeout_s: int = 30, memory_mb: int = 128, dead_letter: str | None = None
) -> str:
    return str(
        clients.lambda_.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=ROLE,
            Handler="handler.handler",
            Code={"ZipFile": CODE},
            Timeout=timeout_s,
            MemorySize=memory_mb,
            **({"DeadLetterConfig": {"TargetArn": dead_letter}} if dead_letter else {}),
        )["FunctionArn"]
    )


def test_a_state_machine_catches_a_lambda_timeout_by_its_error_name(plane: Any) -> None:
    clients, _ = plane
    arn = _function(clients, "slow", timeout_s=1)
    sfn = clients.client("stepfunctions")
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload.$": "$"},
                "Catch": [{"ErrorEquals": ["Sandbox.Timedout"], "Next": "TimedOut"}],
                "End": True,
            },
            "TimedOut": {"Type": "Pass", "Result": {"timed_out": True}, "End": True},
        },
    }
    machine = sfn.create_state_machine(name="limits", definition=json.dumps(definition), roleArn=ROLE)
    execution = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], name="slow-1", input=json.dumps({"sleep_s": 10})
    )["executionArn"]
    done = wait_for(
        lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d,
        "the execution",
        timeout_s=60,
    )
    assert (done["status"], json.loads(done["output"])) == ("SUCCEEDED", {"timed_out": True})


def test_an_async_event_that_runs_out_of_memory_is_retried_then_dead_lettered(plane: Any) -> None:
    """Lambda retries the function error (twice, by default) and sends the event to the function's own
    dead-letter queue; the rule target's queue is for events EventBridge could not hand over."""
    clients, delivery = plane
    sqs = clients.client("sqs")
    queues = {}
    for name in ("hungry-failed", "hungry-undelivered"):
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queues[name] = (url, arn)
    arn = _function(clients, "hungry", memory_mb=128, dead_letter=queues["hungry-failed"][1])
    target = {"Id": "hungry", "Arn": arn, "DeadLetterConfig": {"Arn": queues["hungry-undelivered"][1]}}
    rule = "arn:aws:events:us-east-1:123456789012:rule/arrivals"
    delivery.submit(Delivery(rule, target, {"allocate_mb": 200}, attempts_left=3))
    assert delivery.wait_idle(timeout_s=120)
    url = queues["hungry-failed"][0]
    [message] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(message["Body"]) == {"allocate_mb": 200}
    error = message["MessageAttributes"]["ErrorMessage"]["StringValue"]
    assert "signal: killed" in error
    assert "Messages" not in sqs.receive_message(QueueUrl=queues["hungry-undelivered"][0])


def test_an_oversized_synchronous_invoke_is_refused_with_413(plane: Any) -> None:
    clients, _ = plane
    _function(clients, "refusing")
    with pytest.raises(ClientError) as refused:
        clients.lambda_.invoke(FunctionName="refusing", Payload=json.dumps({"x": "y" * (6 * 1024 * 1024)}))
    assert refused.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
