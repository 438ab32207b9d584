"""Lambda runs concurrently on the local plane, as on AWS: the real ingest function's idempotency holds
against 20 simultaneous deliveries of the same upload, reserved concurrency throttles, and an asynchronous
function error is retried by Lambda and ends in the function's dead-letter queue or on-failure destination.

moto's server and the seams in this process, functions in their sandboxes (lambda_runtime.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from botocore.exceptions import ClientError

from headrace.config import ModelConfig
from headrace.datagen import generate
from headrace.local.aws import Clients
from headrace.local.lambda_async import AsyncInvocations
from headrace.local.lambda_runtime import FunctionSpec, HandlerRuntime, InvocationResult
from headrace.local.seams import installed
from headrace.local.seams.targets import MotoTargets
from headrace.local.targets import Delivery, EventDelivery, TargetDispatcher
from headrace.waiting import wait_for
from tests.support.moto import handler_zip, lambda_plane

ROLE = "arn:aws:iam::123456789012:role/concurrency"
RULE = "arn:aws:events:us-east-1:123456789012:rule/arrivals"
BUCKET = "headrace-dev-data-concurrency"
TABLE = "headrace-dev-ledger-concurrency"
HANDLER = """
import time
def handler(event, context):
    time.sleep(event.get("sleep_s", 0))
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"ok": True}
"""
# An invocation that changes nothing (a duplicate) publishes no metric; Powertools warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@dataclass
class Plane:
    clients: Clients
    delivery: EventDelivery
    queue: AsyncInvocations
    runtime: HandlerRuntime
    runs: list[tuple[str, InvocationResult]]  # (function name, result) of every invocation, in order


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    runs: list[tuple[str, InvocationResult]] = []
    lock = threading.Lock()

    def record(spec: FunctionSpec, result: InvocationResult) -> None:
        with lock:
            runs.append((spec.name, result))

    with lambda_plane(tmp_path_factory.mktemp("code"), "concurrency") as moto:
        moto.runtime.listeners.append(record)
        queue = AsyncInvocations(MotoTargets(), delay_scale=0.01)
        delivery = EventDelivery(TargetDispatcher(MotoTargets(), queue))
        delivery.start()
        with installed(moto.runtime, delivery):
            yield Plane(moto.clients, delivery, queue, moto.runtime, runs)
        delivery.stop()


def _function(plane: Plane, name: str, code: bytes, **options: Any) -> str:
    return str(
        plane.clients.lambda_.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=ROLE,
            Handler="handler.handler",
            Code={"ZipFile": code},
            Timeout=60,
            MemorySize=1024,
            **options,
        )["FunctionArn"]
    )


def _queue(plane: Plane, name: str) -> tuple[str, str]:
    sqs = plane.clients.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _received(plane: Plane, url: str) -> list[dict[str, Any]]:
    response = plane.clients.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return list(response.get("Messages", []))


def _overlapping(results: list[InvocationResult]) -> int:
    """The most invocations that were running at one moment."""
    moments = sorted([(r.started_at, 1) for r in results] + [(r.ended_at, -1) for r in results])
    running = most = 0
    for _, change in moments:
        running += change
        most = max(most, running)
    return most


def test_twenty_concurrent_identical_uploads_start_exactly_one_training_run(
    plane: Plane, repo_root: Path, example_model: ModelConfig, load_event: Callable[[str], dict[str, Any]]
) -> None:
    s3, sfn = plane.clients.client("s3"), plane.clients.client("stepfunctions")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    plane.clients.client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    plane.clients.client("events").create_event_bus(Name="headrace-dev-concurrency")
    waiting = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}}}
    machine = sfn.create_state_machine(
        name="headrace-dev-churn-training-concurrency", definition=json.dumps(waiting), roleArn=ROLE
    )["stateMachineArn"]
    handler = (repo_root / "functions" / "ingest" / "handler.py").read_text()
    environment = {
        "POWERTOOLS_SERVICE_NAME": "ingest",
        "POWERTOOLS_METRICS_NAMESPACE": "Headrace",
        "HEADRACE_STAGE": "dev",
        "DATA_BUCKET": BUCKET,
        "LEDGER_TABLE": TABLE,
        "TRAINING_STATE_MACHINES": json.dumps({"churn": machine}),
        "EVENT_BUS_NAME": "headrace-dev-concurrency",
        "HEADRACE_MODELS_DIR": str(repo_root / "models"),
    }
    ingest = _function(
        plane,
        "headrace-dev-ingest-concurrency",
        handler_zip({"handler.py": handler}),
        Environment={"Variables": environment},
    )
    # Twenty uploads of the same bytes under twenty keys (a retried `aws s3 cp` loop, a twice-run sync job),
    # each with its own S3 event, all delivered at once.
    body = generate(example_model, 600, seed=7).to_csv(index=False).encode()
    events = []
    for index in range(20):
        key = f"churn/incoming/2026-11-23/customers-{index}.csv"
        put = s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        event = load_event("s3_object_created")
        event["detail"]["bucket"]["name"] = BUCKET
        event["detail"]["object"].update(
            {"key": quote_plus(key, safe="/"), "size": len(body), "version-id": put["VersionId"]}
        )
        events.append(event)

    # An invocation that finds another one in progress fails (IdempotencyAlreadyInProgressError) and Lambda
    # retries it, a minute later on AWS: here 6 s, longer than the first one takes on a loaded machine.
    plane.queue.delay_scale = 0.1
    try:
        for event in events:
            plane.delivery.submit(Delivery(RULE, {"Id": "ingest", "Arn": ingest}, event, attempts_left=1))
        assert plane.delivery.wait_idle(timeout_s=110)
    finally:
        plane.queue.delay_scale = 0.01

    results = [result for name, result in plane.runs if name == "headrace-dev-ingest-concurrency"]
    assert _overlapping(results) >= 2, "the invocations ran one at a time"
    ended = [c["condition"] for c in plane.queue.completed if c["function"] == ingest]
    assert ended == ["Success"] * 20  # every event was handled, none dropped
    # A replay answers with the first invocation's saved result, so every "started" names the same run.
    started = {
        r.payload["execution_arn"] for r in results if not r.errored and r.payload["outcome"] == "started"
    }
    [execution] = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert started == {execution["executionArn"]}


def test_reserved_concurrency_throttles_a_synchronous_invoke_and_delays_an_asynchronous_one(
    plane: Plane,
) -> None:
    lambda_ = plane.clients.lambda_
    arn = _function(plane, "reserved", handler_zip({"handler.py": HANDLER}))
    lambda_.put_function_concurrency(FunctionName="reserved", ReservedConcurrentExecutions=1)
    busy = threading.Thread(
        target=lambda: lambda_.invoke(FunctionName="reserved", Payload=json.dumps({"sleep_s": 3}))
    )
    busy.start()
    try:
        wait_for(lambda: plane.runtime.running("reserved") == 1, "the first invocation", timeout_s=30)
        with pytest.raises(ClientError) as refused:
            lambda_.invoke(FunctionName="reserved", Payload="{}")
    finally:
        busy.join()
    status = refused.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert (refused.value.response["Error"]["Code"], status) == ("TooManyRequestsException", 429)
    for n in range(3):  # queued events wait for the unit instead of failing
        plane.delivery.submit(Delivery(RULE, {"Id": "reserved", "Arn": arn}, {"n": n}, attempts_left=1))
    assert plane.delivery.wait_idle(timeout_s=60)
    results = [r for name, r in plane.runs if name == "reserved"]
    assert len(results) == 4 and not any(r.errored for r in results)
    assert _overlapping(results) == 1


def test_an_asynchronous_function_error_is_retried_twice_then_dead_lettered(plane: Plane) -> None:
    failed_url, failed_arn = _queue(plane, "failing-failed")
    undelivered_url, undelivered_arn = _queue(plane, "failing-undelivered")
    arn = _function(
        plane, "failing", handler_zip({"handler.py": HANDLER}), DeadLetterConfig={"TargetArn": failed_arn}
    )
    target = {"Id": "failing", "Arn": arn, "DeadLetterConfig": {"Arn": undelivered_arn}}
    plane.delivery.submit(Delivery(RULE, target, {"fail": True}, attempts_left=3))
    assert plane.delivery.wait_idle(timeout_s=60)

    assert len([r for name, r in plane.runs if name == "failing"]) == 3  # the first try and two retries
    [message] = _received(plane, failed_url)
    assert json.loads(message["Body"]) == {"fail": True}
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert (attributes["ErrorCode"], attributes["ErrorMessage"]) == ("200", "asked to fail")
    assert _received(plane, undelivered_url) == []  # EventBridge delivered it; the failure was the function's


def test_an_asynchronous_function_error_goes_to_the_on_failure_destination_per_its_invoke_config(
    plane: Plane,
) -> None:
    url, destination = _queue(plane, "flaky-failures")
    arn = _function(plane, "flaky", handler_zip({"handler.py": HANDLER}))
    plane.clients.lambda_.put_function_event_invoke_config(
        FunctionName="flaky",
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": destination}},
    )
    plane.delivery.submit(Delivery(RULE, {"Id": "flaky", "Arn": arn}, {"fail": True}, attempts_left=1))
    assert plane.delivery.wait_idle(timeout_s=60)

    [message] = _received(plane, url)
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestPayload"] == {"fail": True}
    assert record["responsePayload"]["errorType"] == "ValueError"
