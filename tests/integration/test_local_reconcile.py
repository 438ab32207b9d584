"""Reconciliation on start: a plane stopped mid-training comes back with the job Failed and a reason, the
execution ended on its Catch path (RunFailed), the run recorded failed, and the same bytes trainable again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from headrace.config import load_models
from headrace.datagen import generate
from headrace.deployment import describe
from headrace.ledger import DynamoLedger
from headrace.local.control import start_detached, stop_detached
from headrace.local.reconcile import LOST_JOB_REASON, caught, interrupted_state
from headrace.naming import Names, execution_name
from headrace.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]

DEFINITION = {
    "StartAt": "Train",
    "States": {
        "Train": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RunFailed"}],
            "End": True,
        },
        "RunFailed": {"Type": "Pass", "End": True},
    },
}


def test_the_interrupted_state_is_the_last_entered_and_not_exited() -> None:
    history = [
        {"id": 1, "type": "ExecutionStarted"},
        {"id": 2, "stateEnteredEventDetails": {"name": "Prepare", "input": "{}"}},
        {"id": 3, "stateExitedEventDetails": {"name": "Prepare"}},
        {"id": 4, "stateEnteredEventDetails": {"name": "Train", "input": '{"model": "churn"}'}},
        {"id": 5, "type": "TaskSubmitted"},
    ]

    where = interrupted_state(history)

    assert where is not None
    assert (where.state, where.state_input, where.last_event_id) == ("Train", {"model": "churn"}, 5)


def test_a_finished_history_has_no_interrupted_state() -> None:
    history = [
        {"id": 1, "stateEnteredEventDetails": {"name": "Train", "input": "{}"}},
        {"id": 2, "stateExitedEventDetails": {"name": "Train"}},
    ]
    assert interrupted_state(history) is None


def test_the_catch_gets_the_error_at_its_result_path() -> None:
    target, given = caught(DEFINITION, "Train", {"model": "churn"}, "States.TaskFailed", "lost")

    assert target == "RunFailed"
    assert given == {"model": "churn", "error": {"Error": "States.TaskFailed", "Cause": "lost"}}


def test_a_state_without_a_matching_catch_says_so() -> None:
    definition = {"States": {"Train": {"Type": "Task"}}}
    with pytest.raises(LookupError):
        caught(definition, "Train", {}, "States.TaskFailed", "lost")


@pytest.fixture
def slow_models(tmp_path: Path) -> Path:
    """The example model, trained long enough (many rounds) to be stopped while it trains."""
    churn = yaml.safe_load((REPO / "models" / "churn.yaml").read_text())
    churn["trainer"]["hyperparameters"] = churn["trainer"]["hyperparameters"] | {
        "num_round": 100000,
        "eta": 0.001,
    }
    directory = tmp_path / "models"
    directory.mkdir()
    (directory / "churn.yaml").write_text(yaml.safe_dump(churn))
    return directory


def test_a_plane_stopped_mid_training_fails_the_run_and_lets_the_data_train_again(
    tmp_path: Path, slow_models: Path, load_event: Callable[..., dict[str, Any]]
) -> None:
    work_dir, state_dir = tmp_path / "plane", tmp_path / "state"
    [model] = load_models(slow_models)
    body = generate(model, 3000, seed=21).to_csv(index=False).encode()
    sha256 = hashlib.sha256(body).hexdigest()
    info = start_detached(work_dir=work_dir, state_dir=state_dir, models_dir=slow_models)
    try:
        clients = info.clients()
        deployment = describe(clients.cloudformation, Names(info.stage), [model])
        clients.s3.put_object(Bucket=deployment.data_bucket, Key="churn/incoming/slow.csv", Body=body)
        sagemaker = clients.client("sagemaker")
        wait_for(
            lambda: [
                j
                for j in sagemaker.list_training_jobs()["TrainingJobSummaries"]
                if j["TrainingJobStatus"] == "InProgress"
            ],
            "the training job in progress",
            timeout_s=60,
        )
    finally:
        stop_detached(work_dir)

    info = start_detached(work_dir=work_dir, state_dir=state_dir, models_dir=slow_models)
    try:
        clients = info.clients()
        sagemaker, sfn = clients.client("sagemaker"), clients.client("stepfunctions")
        [job] = sagemaker.list_training_jobs()["TrainingJobSummaries"]
        described = sagemaker.describe_training_job(TrainingJobName=job["TrainingJobName"])
        assert described["TrainingJobStatus"] == "Failed"
        assert described["FailureReason"] == LOST_JOB_REASON
        machine = deployment.model("churn").training_state_machine_arn
        arn = machine.replace(":stateMachine:", ":execution:") + ":" + execution_name("churn", sha256)
        ended = wait_for(
            lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
            "the interrupted execution to end",
            timeout_s=60,
        )
        assert ended["status"] == "FAILED"
        history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
        assert "RunFailed" in entered[entered.index("Train") :]
        ledger = DynamoLedger(clients.client("dynamodb"), deployment.ledger_table)
        [run] = ledger.runs("churn")
        assert run.status == "failed" and LOST_JOB_REASON in (run.cause or "")

        event = load_event("s3_object_created")
        again = clients.s3.put_object(
            Bucket=deployment.data_bucket, Key="churn/incoming/again.csv", Body=body
        )
        event["detail"]["bucket"]["name"] = deployment.data_bucket
        event["detail"]["object"].update(
            {"key": "churn/incoming/again.csv", "size": len(body), "version-id": again.get("VersionId")}
        )
        response = clients.lambda_.invoke(FunctionName="headrace-dev-ingest", Payload=json.dumps(event))
        result = json.loads(response["Payload"].read())
        assert result["outcome"] == "started"
        assert result["execution_arn"] != arn
    finally:
        stop_detached(work_dir)
