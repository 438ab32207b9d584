"""IAM on the local plane, proved by mutation: take one permission the code needs out of its role's
synthesized policy (through the IAM API, as an operator would), run the narrowest step that needs it, and the
step fails as on AWS, with AccessDenied naming that action and the resource, along AWS's failure path (the
function errors, the execution fails, the training job fails, the rule's event lands in its dead-letter
queue, the schedule reports its target unreachable). The policy is restored after each case.

One shared plane (the e2e session's); the model `returns` is used because no other e2e module trains it.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from headrace.datagen import generate
from headrace.naming import Names
from headrace.waiting import wait_for

from .conftest import REPO, RunningPlane
from .test_cli_and_state import headrace

pytestmark = pytest.mark.e2e

MODEL = "returns"
NAMES = Names("dev")
# Cases written but not yet passing (issue 12, work in progress): each says what is left to do.
WIP_INGEST = pytest.mark.xfail(
    reason="WIP: the put_object raises S3's own event, so the rule's delivery races the direct invocation "
    "(outcome 'duplicate'); trigger through the rule and read the failure from IngestFailedInvocations",
    strict=False,
)


def _roles(plane: RunningPlane) -> list[str]:
    iam = plane.clients.client("iam")
    return [r["RoleName"] for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]]


def _role(plane: RunningPlane, logical_prefix: str) -> str:
    """The role CloudFormation named `<stack>-<logical id prefix><hash>-<suffix>`."""
    matches = [r for r in _roles(plane) if f"-{logical_prefix}" in r]
    assert len(matches) == 1, f"{logical_prefix}: {matches}"
    return matches[0]


def _without(document: dict[str, Any], action: str) -> tuple[dict[str, Any], bool]:
    """The policy with every Allow pattern that covers `action` taken out; whether any was."""
    changed = False
    statements = []
    for statement in document["Statement"]:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else list(actions)
        kept = [a for a in actions if not fnmatch.fnmatch(action.lower(), a.lower())]
        if statement.get("Effect") == "Allow" and len(kept) != len(actions):
            changed = True
            if not kept:
                continue
            statement = {**statement, "Action": kept}
        statements.append(statement)
    return {**document, "Statement": statements}, changed


@contextlib.contextmanager
def _revoked(plane: RunningPlane, logical_prefix: str, action: str) -> Iterator[str]:
    """The role's inline policies without `action` for as long as the block runs; yields the role's ARN."""
    iam = plane.clients.client("iam")
    role = _role(plane, logical_prefix)
    originals = {
        name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    }
    revoked = False
    try:
        for name, document in originals.items():
            mutated, changed = _without(copy.deepcopy(document), action)
            if changed:
                iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(mutated))
                revoked = True
        assert revoked, f"{role} has no inline statement allowing {action}"
        yield str(iam.get_role(RoleName=role)["Role"]["Arn"])
    finally:
        for name, document in originals.items():
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))


def _denied(text: str, action: str) -> None:
    assert f"is not authorized to perform: {action} on resource: " in text, text[:2000]


# --- functions: invoked directly, as EventBridge would ---------------------------------------------------


def _drop_event(plane: RunningPlane, good: bool = True) -> dict[str, Any]:
    """A fresh object under the model's incoming prefix, and the S3 event EventBridge would deliver for it."""
    model = plane.models[MODEL]
    frame = generate(model, 200, seed=uuid.uuid4().int % 10_000)
    if not good:
        frame = frame.drop(columns=[model.data.target])
    key = f"{MODEL}/incoming/iam-{uuid.uuid4().hex}.csv"
    body = frame.to_csv(index=False).encode()
    # Put without raising an event: the direct invocation below is the only delivery.
    plane.clients.s3.put_object(Bucket=plane.deployment.data_bucket, Key=key, Body=body)
    event = json.loads((REPO / "events" / "s3_object_created.json").read_text())
    event["id"] = str(uuid.uuid4())
    event["resources"] = [f"arn:aws:s3:::{plane.deployment.data_bucket}"]
    event["detail"]["bucket"]["name"] = plane.deployment.data_bucket
    event["detail"]["object"] |= {"key": key, "size": len(body)}
    event["detail"]["object"].pop("version-id", None)
    return dict(event)


def _invoke_ingest(plane: RunningPlane, event: dict[str, Any]) -> str:
    response = plane.clients.client("lambda").invoke(
        FunctionName=plane.deployment.ingest_function, Payload=json.dumps(event).encode()
    )
    payload = response["Payload"].read().decode()
    assert response.get("FunctionError"), f"the function did not fail: {payload[:1000]}"
    return str(payload)


@WIP_INGEST
@pytest.mark.parametrize(
    ("action", "good"),
    [
        ("s3:GetObject", True),  # reading the dropped file
        ("kms:Decrypt", True),  # ... which the bucket's key encrypted
        ("states:StartExecution", True),  # starting the training run
        ("dynamodb:PutItem", True),  # recording the dataset version in the ledger
    ],
)
def test_the_ingest_function_fails_naming_a_permission_its_role_lost(
    plane: RunningPlane, action: str, good: bool
) -> None:
    event = _drop_event(plane, good)
    with _revoked(plane, "IngestRole", action):
        _denied(_invoke_ingest(plane, event), action)


# --- state machines: an execution started directly --------------------------------------------------------


def _failed_execution(plane: RunningPlane, machine_arn: str, payload: dict[str, Any]) -> str:
    sfn = plane.clients.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=machine_arn, name=f"iam-{uuid.uuid4().hex}", input=json.dumps(payload)
    )["executionArn"]
    wait_for(
        lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING" or None,
        f"execution {arn}",
        timeout_s=60,
        interval_s=0.3,
    )
    described = sfn.describe_execution(executionArn=arn)
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    assert described["status"] == "FAILED", described["status"]
    return json.dumps([described, history], default=str)


@pytest.mark.parametrize(
    ("machine", "role", "action"),
    [
        ("training", f"Training{MODEL.title()}StateMachineRole", "lambda:InvokeFunction"),
        ("deploy", f"Deploy{MODEL.title()}StateMachineRole", "lambda:InvokeFunction"),
        pytest.param(
            "drift",
            f"Drift{MODEL.title()}StateMachineRole",
            "lambda:InvokeFunction",
            marks=pytest.mark.xfail(
                reason="WIP: the drift machine needs a `trigger` in its input", strict=False
            ),
        ),
    ],
)
def test_a_state_machine_fails_naming_a_permission_its_role_lost(
    plane: RunningPlane, machine: str, role: str, action: str
) -> None:
    info = plane.deployment.model(MODEL)
    arn = {
        "training": info.training_state_machine_arn,
        "deploy": info.deploy_state_machine_arn,
        "drift": info.drift_state_machine_arn,
    }[machine]
    assert arn
    with _revoked(plane, role, action):
        _denied(_failed_execution(plane, arn, {"model": MODEL}), action)


# --- a SageMaker execution role: a training job created directly ------------------------------------------


def _training_image(plane: RunningPlane) -> str:
    sfn = plane.clients.client("stepfunctions")
    definition = sfn.describe_state_machine(
        stateMachineArn=plane.deployment.model(MODEL).training_state_machine_arn
    )["definition"]
    found = [m for m in _walk(json.loads(definition)) if isinstance(m, dict) and "TrainingImage" in m]
    return str(found[0]["TrainingImage"])


def _walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        yield from _walk(child)


@pytest.mark.xfail(
    reason="WIP: S3 denials reached boto3 without their message (fixed in seams/iam_errors.py, unverified)",
    strict=False,
)
def test_a_training_job_fails_naming_a_permission_its_execution_role_lost(plane: RunningPlane) -> None:
    sagemaker = plane.clients.client("sagemaker")
    run = f"{MODEL}/runs/iam-{uuid.uuid4().hex[:8]}"
    frame = generate(plane.models[MODEL], 100, seed=3)
    plane.clients.s3.put_object(
        Bucket=plane.deployment.data_bucket, Key=f"{run}/splits/train.csv", Body=frame.to_csv(index=False)
    )
    name = f"iam-{uuid.uuid4().hex[:20]}"
    with _revoked(plane, f"Training{MODEL.title()}SageMakerRole", "s3:GetObject") as role_arn:
        sagemaker.create_training_job(
            TrainingJobName=name,
            RoleArn=role_arn,
            AlgorithmSpecification={"TrainingImage": _training_image(plane), "TrainingInputMode": "File"},
            InputDataConfig=[
                {
                    "ChannelName": "train",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": f"s3://{plane.deployment.data_bucket}/{run}/splits/",
                        }
                    },
                }
            ],
            OutputDataConfig={"S3OutputPath": f"s3://{plane.deployment.data_bucket}/{run}/output/"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": 600},
        )
        job = wait_for(
            lambda: (
                d
                if (d := sagemaker.describe_training_job(TrainingJobName=name))["TrainingJobStatus"]
                in ("Failed", "Completed", "Stopped")
                else None
            ),
            f"training job {name}",
            timeout_s=90,
            interval_s=0.5,
        )
    assert job["TrainingJobStatus"] == "Failed"
    _denied(job["FailureReason"], "s3:GetObject")


# --- rule and schedule targets: their roles ----------------------------------------------------------------


@pytest.mark.xfail(reason="WIP: the approvals DLQ is not found by its URL's name", strict=False)
def test_a_rule_whose_target_role_lost_start_execution_dead_letters_the_event(plane: RunningPlane) -> None:
    event = json.loads((REPO / "events" / "sagemaker_model_package_state_change.json").read_text())
    detail = event["detail"]
    detail["ModelPackageGroupName"] = NAMES.model_package_group(MODEL)
    detail["ModelPackageArn"] = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{MODEL}/99"
    sqs = plane.clients.client("sqs")
    queues = [u for u in sqs.list_queues().get("QueueUrls", []) if f"Deploy{MODEL.title()}" in u]
    assert len(queues) == 1, queues
    with _revoked(plane, f"Deploy{MODEL.title()}StateMachineEventsRole", "states:StartExecution"):
        plane.clients.client("events").put_events(
            Entries=[
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(detail),
                    "Resources": event.get("resources", []),
                }
            ]
        )
        message = wait_for(
            lambda: next(
                iter(
                    sqs.receive_message(
                        QueueUrl=queues[0], MessageAttributeNames=["All"], WaitTimeSeconds=1
                    ).get("Messages", [])
                ),
                None,
            ),
            "the undelivered approval in its dead-letter queue",
            timeout_s=30,
        )
    _denied(message["MessageAttributes"]["ERROR_MESSAGE"]["StringValue"], "states:StartExecution")


@pytest.mark.xfail(
    reason="WIP: put_role_policy refuses the mutated schedule policy (its only statement is dropped)",
    strict=False,
)
def test_a_schedule_whose_role_lost_start_execution_reports_its_target_unreachable(
    plane: RunningPlane,
) -> None:
    assert plane.work_dir
    with _revoked(plane, f"Drift{MODEL.title()}ScheduleRole", "states:StartExecution"):
        ticked = headrace(
            "local",
            "tick",
            "--schedules",
            "--name",
            NAMES.drift_schedule(MODEL),
            "--json",
            "--work-dir",
            str(plane.work_dir),
            plane=plane,
        )
    assert ticked.returncode == 0, ticked.stdout + ticked.stderr
    (fired,) = json.loads(ticked.stdout)["schedules"]
    _denied(str(fired.get("error")), "states:StartExecution")
