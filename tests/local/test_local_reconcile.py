"""Reconciliation on start: a plane stopped mid-training (SIGKILLed or stopped) comes back with the job Failed
and a reason, the execution ended on its Catch path (RunFailed), the run recorded failed, and the same bytes
trainable again; an upload acknowledged but never ingested is delivered again, and a dataset recorded without
its run gets it started."""

from __future__ import annotations

import hashlib
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from headrace.config import load_models
from headrace.datagen import generate
from headrace.deployment import describe
from headrace.ingest.attempts import attempt_execution_name
from headrace.ingest.ports import StartedRun
from headrace.ledger import (
    DatasetItem,
    DatasetVersion,
    DynamoLedger,
    FileFormat,
    LedgerItem,
    RejectionItem,
    TrainingInput,
)
from headrace.local.control import start_detached, stop_detached
from headrace.local.plane_info import PlaneInfo, process_alive
from headrace.local.reconcile import (
    LOST_JOB_REASON,
    DataPlane,
    Upload,
    interrupted_state,
    named_job,
    redeliver,
    undelivered,
    unstarted,
)
from headrace.naming import Names, execution_name
from headrace.waiting import wait_for

from .conftest import LOADED_STOP_S

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


def test_the_job_a_task_creates_is_named_from_its_input() -> None:
    state = {"Parameters": {"TrainingJobName.$": "$.training.job_name"}}
    assert named_job(state, {"training": {"job_name": "churn-1"}}) == "churn-1"
    assert named_job({"Parameters": {"TrainingJobName": "fixed"}}, {}) == "fixed"
    assert named_job({"Parameters": {}}, {}) is None


NOW = datetime(2024, 5, 1, tzinfo=UTC)
MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:headrace-dev-churn-training"


def version(sha256: str, key: str, version_id: str) -> DatasetVersion:
    return DatasetVersion(
        model="churn",
        sha256=sha256,
        bucket="data",
        key=key,
        version_id=version_id,
        size_bytes=10,
        format=FileFormat.CSV,
        rows=600,
        columns=["tenure_months", "churned"],
        schema_fingerprint="f" * 16,
        statistics={},
        received_at=NOW,
        dataset_key=f"churn/datasets/{sha256}/data.csv",
    )


def dataset(sha256: str, key: str, version_id: str) -> DatasetItem:
    arn = MACHINE.replace(":stateMachine:", ":execution:") + ":" + execution_name("churn", sha256)
    return DatasetItem.started(version(sha256, key, version_id), arn, NOW)


def rejection(sha256: str, key: str, version_id: str) -> RejectionItem:
    return RejectionItem(
        model="churn",
        sha256=sha256,
        bucket="data",
        key=key,
        version_id=version_id,
        size_bytes=10,
        quarantine_key="churn/quarantine/x",
        reason_key="churn/quarantine/x.reason.json",
        rules=["schema"],
        received_at="2024-05-01T00:00:00Z",
        recorded_at="2024-05-01T00:00:00Z",
    )


class FakeUploads:
    def __init__(self, contents: dict[Upload, str]) -> None:
        self.contents = contents
        self.read: list[Upload] = []
        self.notified: list[Upload] = []

    def incoming(self, bucket: str, prefix: str) -> list[Upload]:
        return [u for u in self.contents if u.bucket == bucket and u.key.startswith(prefix)]

    def sha256(self, upload: Upload) -> str:
        self.read.append(upload)
        return self.contents[upload]

    def notify(self, upload: Upload) -> None:
        self.notified.append(upload)


class FakeRecords:
    def __init__(self, items: list[LedgerItem]) -> None:
        self.items = items

    def partition(self, model: str) -> list[LedgerItem]:
        return [item for item in self.items if item.model == model]


class FakeRuns:
    def __init__(self) -> None:
        self.started: list[tuple[str, str, str]] = []

    def start(self, model: str, name: str, payload: str) -> StartedRun:
        self.started.append((model, name, payload))
        return StartedRun(execution_arn=name, created=True)


def upload(key: str, version_id: str = "v1") -> Upload:
    return Upload("data", f"churn/incoming/{key}", version_id)


def test_an_upload_with_no_dataset_and_no_rejection_is_undelivered() -> None:
    uploads = {
        upload("accepted.csv"): "a" * 64,
        upload("rejected.csv"): "b" * 64,
        upload("lost.csv"): "c" * 64,
    }
    recorded: list[LedgerItem] = [
        dataset("a" * 64, "churn/incoming/accepted.csv", "v1"),
        rejection("b" * 64, "churn/incoming/rejected.csv", "v1"),
    ]
    fake = FakeUploads(uploads)

    assert undelivered(uploads, recorded, fake.sha256) == [upload("lost.csv")]
    assert fake.read == [upload("lost.csv")]  # recorded versions are not read


def test_a_duplicate_of_recorded_content_is_not_delivered_again() -> None:
    """A re-upload of recorded bytes records nothing of its own; sending it again could start a retry."""
    recorded: list[LedgerItem] = [dataset("a" * 64, "churn/incoming/first.csv", "v1")]
    uploads = [upload("first.csv"), upload("again.csv"), upload("first.csv", "v2")]

    assert undelivered(uploads, recorded, lambda _: "a" * 64) == []


def test_a_dataset_whose_execution_never_started_is_unstarted() -> None:
    started, lost = dataset("a" * 64, "k1", "v1"), dataset("b" * 64, "k2", "v1")

    assert unstarted([started, lost], exists=lambda arn: arn == started.execution_arn) == [lost]


def test_reconciling_starts_the_lost_run_and_sends_the_lost_event() -> None:
    lost_run = dataset("a" * 64, "churn/incoming/a.csv", "v1")
    uploads = FakeUploads({upload("a.csv"): "a" * 64, upload("lost.csv"): "c" * 64})
    runs = FakeRuns()
    data = DataPlane(
        bucket="data",
        incoming={"churn": "churn/incoming/"},
        records=FakeRecords([lost_run]),
        runs=runs,
        execution_exists=lambda _: False,
    )

    notes = redeliver(data, uploads)

    name = execution_name("churn", "a" * 64)
    assert runs.started == [("churn", name, TrainingInput.of(lost_run.version()).to_json())]
    assert uploads.notified == [upload("lost.csv")]
    assert len(notes) == 2


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


def kill(info: PlaneInfo) -> None:
    """SIGKILL the plane's daemon, as a crash would end it, and wait until it is gone."""
    os.kill(info.pid, signal.SIGKILL)
    wait_for(lambda: not process_alive(info.pid), "the killed plane to exit", timeout_s=30)


def in_progress(sagemaker: Any) -> list[dict[str, Any]]:
    jobs = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    return [j for j in jobs if j["TrainingJobStatus"] == "InProgress"]


def ended(sfn: Any, arn: str) -> dict[str, Any]:
    return wait_for(
        lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
        f"execution {arn} to end",
        timeout_s=90,
    )


def test_a_plane_stopped_mid_training_fails_the_run_and_lets_the_data_train_again(
    tmp_path: Path, slow_models: Path
) -> None:
    """Killed mid-training: the job fails, RunFailed runs, the run is recorded failed, and the same bytes
    start attempt 2; stopped (`local down`) during that one: it ends the same way."""
    work_dir, state_dir = tmp_path / "plane", tmp_path / "state"
    [model] = load_models(slow_models)
    body = generate(model, 3000, seed=21).to_csv(index=False).encode()
    sha256 = hashlib.sha256(body).hexdigest()
    info = start_detached(work_dir=work_dir, state_dir=state_dir, models_dir=slow_models)
    try:
        clients = info.clients()
        deployment = describe(clients.cloudformation, Names(info.stage), [model])
        clients.s3.put_object(Bucket=deployment.data_bucket, Key="churn/incoming/slow.csv", Body=body)
        wait_for(lambda: in_progress(clients.client("sagemaker")), "the training job in progress", 90)
        # The plane's own changes (the job the execution created) are committed within about a second; a
        # write request is answered only after a commit that began after it, so once this answers, the job
        # is on disk and the kill below interrupts a job the state knows of.
        clients.client("sqs").create_queue(QueueName="after-the-job-started")
    finally:
        kill(info)

    machine = deployment.model("churn").training_state_machine_arn
    first = machine.replace(":stateMachine:", ":execution:") + ":" + execution_name("churn", sha256)
    second = first.rsplit(":", 1)[0] + ":" + attempt_execution_name("churn", sha256, 2)
    info = start_detached(work_dir=work_dir, state_dir=state_dir, models_dir=slow_models)
    try:
        clients = info.clients()
        sagemaker, sfn = clients.client("sagemaker"), clients.client("stepfunctions")
        [job] = sagemaker.list_training_jobs()["TrainingJobSummaries"]
        described = sagemaker.describe_training_job(TrainingJobName=job["TrainingJobName"])
        assert described["TrainingJobStatus"] == "Failed"
        assert described["FailureReason"] == LOST_JOB_REASON
        assert ended(sfn, first)["status"] == "FAILED"
        history = sfn.get_execution_history(executionArn=first, maxResults=1000)["events"]
        entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
        assert "RunFailed" in entered[entered.index("Train") :]
        ledger = DynamoLedger(clients.client("dynamodb"), deployment.ledger_table)
        [run] = ledger.runs("churn")
        assert run.status == "failed" and LOST_JOB_REASON in (run.cause or "")

        # The same bytes again, through S3's notification: not a duplicate, attempt 2.
        clients.s3.put_object(Bucket=deployment.data_bucket, Key="churn/incoming/again.csv", Body=body)
        wait_for(
            lambda: (item := ledger.dataset("churn", sha256)) is not None and item.execution_arn == second,
            "attempt 2 recorded",
            timeout_s=60,
        )
        wait_for(lambda: in_progress(sagemaker), "attempt 2 training", 90)
    finally:
        stop_detached(work_dir, timeout_s=LOADED_STOP_S)

    info = start_detached(work_dir=work_dir, state_dir=state_dir, models_dir=slow_models)
    try:
        clients = info.clients()
        sfn = clients.client("stepfunctions")
        assert ended(sfn, second)["status"] == "FAILED"
        ledger = DynamoLedger(clients.client("dynamodb"), deployment.ledger_table)
        assert sorted(str(r.status) for r in ledger.runs("churn")) == ["failed", "failed"]
    finally:
        stop_detached(work_dir, timeout_s=LOADED_STOP_S)


def test_an_upload_acknowledged_before_a_crash_is_ingested_on_start(tmp_path: Path) -> None:
    """Killed right after S3 answered, before ingest ran (its sandbox is still starting): on start, S3's
    event is sent again, through EventBridge, and the dataset is recorded and its run started."""
    work_dir, state_dir = tmp_path / "plane", tmp_path / "state"
    [model] = load_models(REPO / "models")
    body = generate(model, 600, seed=5).to_csv(index=False).encode()
    sha256 = hashlib.sha256(body).hexdigest()
    info = start_detached(work_dir=work_dir, state_dir=state_dir)
    try:
        clients = info.clients()
        deployment = describe(clients.cloudformation, Names(info.stage), [model])
        clients.s3.put_object(Bucket=deployment.data_bucket, Key="churn/incoming/lost.csv", Body=body)
    finally:
        kill(info)

    info = start_detached(work_dir=work_dir, state_dir=state_dir)
    try:
        clients = info.clients()
        ledger = DynamoLedger(clients.client("dynamodb"), deployment.ledger_table)
        item = wait_for(lambda: ledger.dataset("churn", sha256), "the dataset recorded", timeout_s=60)
        assert item.key == "churn/incoming/lost.csv"
        sfn = clients.client("stepfunctions")
        assert sfn.describe_execution(executionArn=str(item.execution_arn))["status"]
        assert "delivered again" in (work_dir / "plane.log").read_text()
    finally:
        stop_detached(work_dir, timeout_s=LOADED_STOP_S)


def test_a_tuning_job_the_plane_lost_ends_failed_and_one_stopping_ends_stopped() -> None:
    from moto import mock_aws
    from moto.sagemaker.models import sagemaker_backends

    from headrace.local.seams.executions import end_interrupted

    account, region = "123456789012", "us-east-1"
    with mock_aws():
        client = boto3.client("sagemaker", region_name=region)
        for name in ("lost", "stopping", "done"):
            client.create_hyper_parameter_tuning_job(
                HyperParameterTuningJobName=name,
                HyperParameterTuningJobConfig={
                    "Strategy": "Random",
                    "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
                },
            )
        jobs = sagemaker_backends[account][region].hyper_parameter_tuning_jobs
        jobs["lost"].hyper_parameter_tuning_job_status = "InProgress"
        jobs["stopping"].hyper_parameter_tuning_job_status = "Stopping"
        jobs["done"].hyper_parameter_tuning_job_status = "Completed"
        notes = end_interrupted(account, region)
        describe = client.describe_hyper_parameter_tuning_job
        described = {n: describe(HyperParameterTuningJobName=n) for n in jobs}
    assert described["lost"]["HyperParameterTuningJobStatus"] == "Failed"
    assert described["lost"]["FailureReason"] == LOST_JOB_REASON
    assert described["stopping"]["HyperParameterTuningJobStatus"] == "Stopped"
    assert described["done"]["HyperParameterTuningJobStatus"] == "Completed"
    assert "tuning job lost: InProgress -> Failed" in notes
