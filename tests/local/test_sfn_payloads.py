"""Step Functions' payload quota on the local plane (seams/sfn_payloads.py): more than 256 KiB as a task's
result, a state's output or a state's input after Parameters fails the state with States.DataLimitExceeded
(https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html), a terminal error that a Retry or
Catch on States.ALL does not see (https://docs.aws.amazon.com/step-functions/latest/dg/
concepts-error-handling.html); exactly 256 KiB passes.

moto's server with the seams installed in this process; the Lambda step runs in a sandbox (lambda_runtime.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from headrace.local.aws import Clients
from headrace.local.lambda_runtime import FunctionSpec, InvocationResult
from headrace.local.seams import installed
from headrace.local.seams.sfn_payloads import MAX_PAYLOAD_BYTES
from headrace.local.seams.targets import MotoTargets
from headrace.local.targets import EventDelivery, TargetDispatcher
from headrace.waiting import wait_for
from tests.support.moto import handler_zip, lambda_plane

ROLE = "arn:aws:iam::123456789012:role/payloads"
HANDLER = """
def handler(event, context):
    return "x" * event["bytes"]
"""
# Retried and caught on States.ALL, as the pipeline's catch-alls are: neither may see DataLimitExceeded.
CATCH_ALL = {
    "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 1}],
    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
}
CAUGHT = {"Caught": {"Type": "Pass", "Result": "caught", "End": True}}


@dataclass
class Plane:
    clients: Clients
    invocations: list[InvocationResult]


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    invocations: list[InvocationResult] = []

    def record(spec: FunctionSpec, result: InvocationResult) -> None:
        invocations.append(result)

    with lambda_plane(tmp_path_factory.mktemp("code"), "payloads") as moto:
        moto.runtime.listeners.append(record)
        delivery = EventDelivery(TargetDispatcher(MotoTargets()))
        with installed(moto.runtime, delivery):
            yield Plane(moto.clients, invocations)


def _run(plane: Plane, name: str, states: dict[str, Any], start: str, given: Any = None) -> dict[str, Any]:
    sfn = plane.clients.client("stepfunctions")
    definition = {"StartAt": start, "States": {**states, **CAUGHT}}
    machine = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input=json.dumps(given or {}))
    done: dict[str, Any] = wait_for(
        lambda: (
            (d := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] != "RUNNING" and d
        ),
        f"execution of {name}",
        timeout_s=60,
    )
    return done


def _string_of(total_bytes: int) -> str:
    """A string whose JSON encoding (quotes included) is `total_bytes` long."""
    return "x" * (total_bytes - 2)


def test_a_lambda_result_over_256_kib_fails_the_execution_past_a_catch_all(plane: Plane) -> None:
    arn = plane.clients.lambda_.create_function(
        FunctionName="talkative",
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": handler_zip({"handler.py": HANDLER})},
        Timeout=30,
    )["FunctionArn"]
    before = len(plane.invocations)
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": arn, "Payload.$": "$"},
        "OutputPath": "$.Payload",
        "End": True,
    }
    done = _run(plane, "lambda-too-much", {"Call": {**task, **CATCH_ALL}}, "Call", {"bytes": 300 * 1024})
    assert (done["status"], done.get("error")) == ("FAILED", "States.DataLimitExceeded")
    assert len(plane.invocations) == before + 1  # not retried

    fits = _run(plane, "lambda-enough", {"Call": {**task, **CATCH_ALL}}, "Call", {"bytes": 200 * 1024})
    assert fits["status"] == "SUCCEEDED"
    assert fits["output"].strip('"') == "x" * 200 * 1024  # moto leaves a string output unquoted


def test_a_pass_state_output_over_256_kib_fails_and_exactly_256_kib_passes(plane: Plane) -> None:
    over = _run(
        plane,
        "pass-over",
        {"Big": {"Type": "Pass", "Result": _string_of(MAX_PAYLOAD_BYTES + 1), "End": True}},
        "Big",
    )
    assert (over["status"], over.get("error")) == ("FAILED", "States.DataLimitExceeded")

    exact = _run(
        plane,
        "pass-exact",
        {"Big": {"Type": "Pass", "Result": _string_of(MAX_PAYLOAD_BYTES), "End": True}},
        "Big",
    )
    assert exact["status"] == "SUCCEEDED"


def test_an_input_over_256_kib_after_parameters_fails_past_a_catch_all(plane: Plane) -> None:
    """Each copy is under the quota, the Parameters that doubles it is not: the function is never invoked."""
    half = _string_of(150 * 1024)
    states = {
        "Doubled": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "talkative", "Payload": {"a.$": "$.text", "b.$": "$.text"}},
            **CATCH_ALL,
            "End": True,
        }
    }
    before = len(plane.invocations)
    done = _run(plane, "parameters-over", states, "Doubled", {"text": half})
    assert (done["status"], done.get("error")) == ("FAILED", "States.DataLimitExceeded")
    assert "after Parameters" in done["cause"]
    assert len(plane.invocations) == before
