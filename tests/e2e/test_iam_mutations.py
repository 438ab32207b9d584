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
from botocore.exceptions import ClientError

from headrace.datagen import generate
from headrace.naming import Names
from headrace.waiting import wait_for

from .conftest import REPO, RunningPlane
from .test_cli_and_state import headrace

pytestmark = pytest.mark.e2e

MODEL = "returns"
NAMES = Names("dev")


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
            if not changed:
                continue
            revoked = True
            if mutated["Statement"]:
                iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(mutated))
            else:  # IAM refuses a policy without statements (MalformedPolicyDocument): remove it whole
                iam.delete_role_policy(RoleName=role, PolicyName=name)
        assert revoked, f"{role} has no inline statement allowing {action}"
        yield str(iam.get_role(RoleName=role)["Role"]["Arn"])
    finally:
        for name, document in originals.items():
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))


def _denied(text: str, action: str) -> None:
    assert f"is not authorized to perform: {action} on resource: " in text, text[:2000]


# --- a function: the ingest Lambda, triggered as in production -------------------------------------------


def _dead_letter(plane: RunningPlane, queue: str, marker: str, timeout_s: float = 60) -> dict[str, Any]:
    """The message carrying `marker` in its body from the stack's queue named `queue`, deleted once read
    (the queue is shared with other tests: other messages stay visible)."""
    sqs = plane.clients.client("sqs")
    urls = [u for u in sqs.list_queues().get("QueueUrls", []) if queue in u.rsplit("/", 1)[-1]]
    assert len(urls) == 1, f"{queue}: {urls}"

    def ours() -> dict[str, Any] | None:
        messages = sqs.receive_message(
            QueueUrl=urls[0],
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=0,
            WaitTimeSeconds=1,
        ).get("Messages", [])
        return next((dict(m) for m in messages if marker in m["Body"]), None)

    message = wait_for(ours, f"a message about {marker} in {queue}", timeout_s=timeout_s, interval_s=0.5)
    sqs.delete_message(QueueUrl=urls[0], ReceiptHandle=message["ReceiptHandle"])
    return message


def _drop(plane: RunningPlane) -> str:
    """A fresh, valid file under the model's incoming prefix: S3 reports it to EventBridge, whose rule
    invokes ingest asynchronously, as in production. Returns its key."""
    frame = generate(plane.models[MODEL], 200, seed=uuid.uuid4().int % 10_000)
    key = f"{MODEL}/incoming/iam-{uuid.uuid4().hex}.csv"
    plane.clients.s3.put_object(
        Bucket=plane.deployment.data_bucket, Key=key, Body=frame.to_csv(index=False).encode()
    )
    return key


@pytest.mark.parametrize(
    "action",
    [
        "s3:GetObjectVersion",  # reading the dropped file: the version its event names
        "kms:Decrypt",  # ... which the bucket's key encrypted
        "dynamodb:PutItem",  # recording the dataset version in the ledger
        "states:StartExecution",  # starting the training run
    ],
)
def test_the_ingest_function_fails_naming_a_permission_its_role_lost(
    plane: RunningPlane, action: str
) -> None:
    """Lambda's asynchronous path: the attempt and its two retries fail, then the event lands in the
    function's dead-letter queue with the error (invocation-async.html)."""
    with _revoked(plane, "IngestRole", action):
        key = _drop(plane)
        message = _dead_letter(plane, "IngestFailedInvocations", key)
    assert json.loads(message["Body"])["detail"]["object"]["key"] == key
    _denied(message["MessageAttributes"]["ErrorMessage"]["StringValue"], action)


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
        ("drift", f"Drift{MODEL.title()}StateMachineRole", "lambda:InvokeFunction"),
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
        # The drift machine's first step reads who started the check (`headrace drift` says "cli").
        payload = {"trigger": "cli"} if machine == "drift" else {"model": MODEL}
        _denied(_failed_execution(plane, arn, payload), action)


# --- a SageMaker execution role: the machine's training job, created directly ------------------------------


def _walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        yield from _walk(child)


def _resolved(node: Any, values: dict[str, str]) -> Any:
    """An ASL Parameters block with its `"<key>.$": "<path>"` fields filled from `values` (by path)."""
    if isinstance(node, list):
        return [_resolved(child, values) for child in node]
    if not isinstance(node, dict):
        return node
    return {
        key.removesuffix(".$"): values[child] if key.endswith(".$") else _resolved(child, values)
        for key, child in node.items()
    }


def _training_request(plane: RunningPlane, name: str, run: str) -> dict[str, Any]:
    """The CreateTrainingJob request the training machine makes (image, role, channels, keys), for a run
    of the test's own under `run`, with fewer boosting rounds."""
    sfn = plane.clients.client("stepfunctions")
    definition = sfn.describe_state_machine(
        stateMachineArn=plane.deployment.model(MODEL).training_state_machine_arn
    )["definition"]
    (parameters,) = [
        node
        for node in _walk(json.loads(definition))
        if isinstance(node, dict) and "AlgorithmSpecification" in node and "RoleArn" in node
    ]
    uri = f"s3://{plane.deployment.data_bucket}/{run}"
    request: dict[str, Any] = _resolved(
        parameters,
        {
            "$.run.job_name": name,
            "$.run.train_uri": f"{uri}/splits/train/",
            "$.run.validation_uri": f"{uri}/splits/validation/",
            "$.run.test_uri": f"{uri}/splits/test/",
            "$.run.output_uri": f"{uri}/output/",
            "$.run.checkpoint_uri": f"{uri}/checkpoints/",
            "$.run.champion_uri": f"{uri}/splits/champion/",
        },
    )
    request["HyperParameters"] |= {"num_round": "5"}
    return request


@pytest.mark.parametrize(
    "action",
    [
        "s3:ListBucket",  # listing a channel's prefix
        "s3:GetObject",  # downloading the channel's objects
        "kms:Decrypt",  # ... which the bucket's key encrypted
        "s3:PutObject",  # uploading the model artifact
    ],
)
def test_a_training_job_fails_naming_a_permission_its_execution_role_lost(
    plane: RunningPlane, action: str
) -> None:
    """The job fails with the denial as its FailureReason, as SageMaker reports S3's answer."""
    sagemaker = plane.clients.client("sagemaker")
    run = f"{MODEL}/runs/iam-{uuid.uuid4().hex[:8]}"
    for channel, seed in (("train", 3), ("validation", 4), ("test", 5)):
        plane.clients.s3.put_object(
            Bucket=plane.deployment.data_bucket,
            Key=f"{run}/splits/{channel}/{channel}.csv",
            Body=generate(plane.models[MODEL], 100, seed=seed).to_csv(index=False),
        )
    # No champion to compare with: the channel holds the marker Prepare writes then (training.layout).
    plane.clients.s3.put_object(
        Bucket=plane.deployment.data_bucket,
        Key=f"{run}/splits/champion/none.json",
        Body=json.dumps({"champion": None, "reason": "the test's own run"}).encode(),
    )
    name = f"iam-{uuid.uuid4().hex[:20]}"
    request = _training_request(plane, name, run)
    with _revoked(plane, f"Training{MODEL.title()}SageMakerRole", action) as role_arn:
        assert request["RoleArn"] == role_arn
        sagemaker.create_training_job(**request)
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
    assert job["TrainingJobStatus"] == "Failed", job["TrainingJobStatus"]
    _denied(job["FailureReason"], action)


# --- rule and schedule targets: their roles ----------------------------------------------------------------


def _approval_event(plane: RunningPlane) -> tuple[dict[str, Any], str]:
    """A model package approval for the deploy rule's pattern, and the package ARN that marks it."""
    event = json.loads((REPO / "events" / "sagemaker_model_package_state_change.json").read_text())
    detail = event["detail"]
    detail["ModelPackageGroupName"] = NAMES.model_package_group(MODEL)
    package = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{MODEL}/{uuid.uuid4().int % 10**9}"
    detail["ModelPackageArn"] = package
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(detail),
        "Resources": event.get("resources", []),
    }
    return entry, package


def test_a_rule_whose_target_role_lost_start_execution_dead_letters_the_event(plane: RunningPlane) -> None:
    """EventBridge does not retry a delivery its target role may not make: the event goes to the target's
    dead-letter queue with ERROR_CODE NO_PERMISSIONS (EventBridge user guide, "Using dead-letter queues")."""
    entry, package = _approval_event(plane)
    with _revoked(plane, f"Deploy{MODEL.title()}StateMachineEventsRole", "states:StartExecution"):
        plane.clients.client("events").put_events(Entries=[entry])
        message = _dead_letter(plane, "UndeliveredApprovals", package, timeout_s=30)
    assert message["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "NO_PERMISSIONS"
    _denied(message["MessageAttributes"]["ERROR_MESSAGE"]["StringValue"], "states:StartExecution")


def test_a_rule_whose_target_role_does_not_trust_eventbridge_dead_letters_the_event(
    plane: RunningPlane,
) -> None:
    entry, package = _approval_event(plane)
    with _untrusted(plane, f"Deploy{MODEL.title()}StateMachineEventsRole") as role_arn:
        plane.clients.client("events").put_events(Entries=[entry])
        message = _dead_letter(plane, "UndeliveredApprovals", package, timeout_s=30)
    _untrusted_by(
        message["MessageAttributes"]["ERROR_MESSAGE"]["StringValue"], "events.amazonaws.com", role_arn
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


# --- trust policies: a service assumes a resource's role only if the role trusts it -------------------------


@contextlib.contextmanager
def _untrusted(plane: RunningPlane, logical_prefix: str) -> Iterator[str]:
    """The role trusting only EC2 for as long as the block runs; yields the role's ARN."""
    iam = plane.clients.client("iam")
    role = iam.get_role(RoleName=_role(plane, logical_prefix))["Role"]
    ec2_only = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.update_assume_role_policy(RoleName=role["RoleName"], PolicyDocument=json.dumps(ec2_only))
    try:
        yield str(role["Arn"])
    finally:
        iam.update_assume_role_policy(
            RoleName=role["RoleName"], PolicyDocument=json.dumps(role["AssumeRolePolicyDocument"])
        )


def _untrusted_by(text: str, service: str, role_arn: str) -> None:
    assert f"User: {service} is not authorized to perform: sts:AssumeRole on resource: {role_arn}" in text, (
        text
    )


def test_a_function_whose_role_does_not_trust_lambda_is_not_run(plane: RunningPlane) -> None:
    lambda_ = plane.clients.client("lambda")
    function = plane.deployment.ingest_function
    variables = lambda_.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    with _untrusted(plane, "IngestRole") as role_arn:
        # A new configuration gets new execution environments, which assume the role; warm ones keep the
        # credentials they started with, as on Lambda.
        probe = {**variables, "HEADRACE_TRUST_PROBE": uuid.uuid4().hex}
        lambda_.update_function_configuration(FunctionName=function, Environment={"Variables": probe})
        try:
            with pytest.raises(ClientError) as refused:
                lambda_.invoke(FunctionName=function, Payload=b"{}")
        finally:
            lambda_.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
    message = str(refused.value)
    assert "The role defined for the function cannot be assumed by Lambda." in message
    _untrusted_by(message, "lambda.amazonaws.com", role_arn)


def test_a_state_machine_whose_role_does_not_trust_step_functions_fails(plane: RunningPlane) -> None:
    arn = plane.deployment.model(MODEL).training_state_machine_arn
    assert arn
    with _untrusted(plane, f"Training{MODEL.title()}StateMachineRole") as role_arn:
        failed = _failed_execution(plane, arn, {"model": MODEL})
    assert "Neither the global service principal states.amazonaws.com" in failed
    _untrusted_by(failed, "states.amazonaws.com", role_arn)


def test_a_training_job_whose_role_does_not_trust_sagemaker_fails(plane: RunningPlane) -> None:
    sagemaker = plane.clients.client("sagemaker")
    name = f"iam-{uuid.uuid4().hex[:20]}"
    request = _training_request(plane, name, f"{MODEL}/runs/iam-{uuid.uuid4().hex[:8]}")
    with _untrusted(plane, f"Training{MODEL.title()}SageMakerRole") as role_arn:
        sagemaker.create_training_job(**request)
        job = wait_for(
            lambda: (
                d
                if (d := sagemaker.describe_training_job(TrainingJobName=name))["TrainingJobStatus"]
                in ("Failed", "Completed", "Stopped")
                else None
            ),
            f"training job {name}",
            timeout_s=60,
            interval_s=0.5,
        )
    assert job["TrainingJobStatus"] == "Failed"
    assert f"Could not assume role {role_arn}" in job["FailureReason"], job["FailureReason"]


def test_a_schedule_whose_role_does_not_trust_scheduler_reports_its_target_unreachable(
    plane: RunningPlane,
) -> None:
    assert plane.work_dir
    with _untrusted(plane, f"Drift{MODEL.title()}ScheduleRole") as role_arn:
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
    _untrusted_by(str(fired.get("error")), "scheduler.amazonaws.com", role_arn)
