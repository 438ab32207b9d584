"""The training steps' real handlers against moto in-process: S3, DynamoDB, SageMaker's Model Registry and
EventBridge. The training job in between is played by a hand-made model.tar.gz holding an evaluation.json,
at the key SageMaker would write it to."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer

from functions.evaluate import handler as evaluate_function
from functions.prepare import handler as prepare_function
from functions.register import handler as register_function
from functions.run_failed import handler as run_failed_function
from headrace.config import ModelConfig
from headrace.datagen import generate
from headrace.ledger import DatasetVersion, FileFormat
from headrace.naming import Names, execution_name, training_job_name
from headrace.steps import InvalidRequest
from headrace.training.evaluation import ArtifactError
from headrace.training.lineage import decode_metrics
from tests.support.moto import DATA_BUCKET, LEDGER_TABLE, REGION, LambdaContext, MotoAccount

ACCOUNT = "123456789012"
MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:headrace-dev-churn-training"
IMAGE = (
    f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/cdk-hnb659fds-container-assets-{ACCOUNT}-{REGION}:{'c' * 64}"
)
GROUP = Names("dev").model_package_group("churn")
# An invocation that changes nothing publishes no metric, and Powertools warns about an empty flush.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@dataclass(frozen=True)
class Cloud(MotoAccount):
    sagemaker: Any
    failures_queue: str
    monkeypatch: pytest.MonkeyPatch
    models_dir: Path

    def run_record(self, job: str) -> dict[str, Any]:
        item = self.dynamodb.get_item(
            TableName=LEDGER_TABLE,
            Key={"pk": {"S": "model#churn"}, "sk": {"S": f"run#{job}"}},
            ConsistentRead=True,
        )["Item"]
        return {k: TypeDeserializer().deserialize(v) for k, v in item.items()}

    def packages(self) -> list[dict[str, Any]]:
        listed = self.sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
        return [self.sagemaker.describe_model_package(ModelPackageName=p["ModelPackageArn"]) for p in listed]

    def failure_events(self) -> list[dict[str, Any]]:
        return self.received(self.failures_queue)

    def use_approval(self, approval: str) -> None:
        """Point the functions at a models/ folder whose churn model has this gate.approval."""
        folder = self.models_dir / approval
        folder.mkdir(exist_ok=True)
        text = (Path(__file__).resolve().parents[2] / "models" / "churn.yaml").read_text()
        (folder / "churn.yaml").write_text(text.replace("approval: auto", f"approval: {approval}"))
        self.monkeypatch.setenv("HEADRACE_MODELS_DIR", str(folder))


@pytest.fixture
def cloud(moto_account: MotoAccount, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cloud:
    failures_queue = moto_account.published(
        "failed-runs", {"source": ["headrace"], "detail-type": ["Training Run Failed"]}
    )
    for name, value in {
        "POWERTOOLS_SERVICE_NAME": "training",
        "POWERTOOLS_METRICS_NAMESPACE": "Headrace",
        "HEADRACE_STAGE": "dev",
        "DATA_BUCKET": DATA_BUCKET,
        "LEDGER_TABLE": LEDGER_TABLE,
        "EVENT_BUS_NAME": "default",
    }.items():
        monkeypatch.setenv(name, value)
    found = Cloud(
        **vars(moto_account),
        sagemaker=boto3.client("sagemaker", region_name=REGION),
        failures_queue=failures_queue,
        monkeypatch=monkeypatch,
        models_dir=tmp_path,
    )
    found.use_approval("auto")
    return found


@dataclass(frozen=True)
class Run:
    """One execution's inputs, and each step's result as the state machine keeps it."""

    state: dict[str, Any]
    execution: dict[str, str]

    @property
    def job(self) -> str:
        return str(self.state["run"]["job_name"])


def dataset_version(cloud: Cloud, model: ModelConfig, seed: int) -> DatasetVersion:
    """A dataset version as ingest leaves it: the content-addressed copy in place."""
    body = generate(model, 800, seed=seed).to_csv(index=False).encode()
    sha256 = hashlib.sha256(body).hexdigest()
    key = f"churn/datasets/{sha256}/data.csv"
    put = cloud.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body)
    return DatasetVersion(
        model="churn",
        sha256=sha256,
        bucket=DATA_BUCKET,
        key=f"churn/incoming/{seed}.csv",
        version_id=put["VersionId"],
        size_bytes=len(body),
        format=FileFormat.CSV,
        rows=800,
        columns=[c.name for c in model.data.columns],
        schema_fingerprint=model.data.fingerprint(),
        statistics={},
        received_at=datetime(2026, 11, 23, 10, 15, tzinfo=UTC),
        dataset_key=key,
    )


def invoke(function: Any, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = function.handler(json.loads(json.dumps(event)), LambdaContext())
    return result


def prepared(cloud: Cloud, model: ModelConfig, seed: int) -> Run:
    version = dataset_version(cloud, model, seed)
    name = execution_name("churn", version.sha256)
    state: dict[str, Any] = {"model": "churn", "dataset": version.model_dump(mode="json")}
    execution = {"name": name, "id": MACHINE.replace(":stateMachine:", ":execution:") + f":{name}"}
    state["run"] = invoke(prepare_function, {**state, "execution": execution})
    return Run(state, execution)


def trained(cloud: Cloud, run: Run, metrics: dict[str, float], slices: dict[str, Any] | None = None) -> None:
    """What a finished training job leaves: model.tar.gz under the output path, and its description."""
    evaluation = {
        "metric": "auc",
        "metrics": metrics,
        "slices": slices
        if slices is not None
        else {"region": {r: {"auc": metrics["auc"], "rows": 40} for r in ("north", "south", "east", "west")}},
        "best_iteration": 17,
        "device": "cpu",
        "train_seconds": 1.5,
    }
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, body in {"model.json": b"{}", "evaluation.json": json.dumps(evaluation).encode()}.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    key = f"churn/runs/{run.job}/output/{run.job}/output/model.tar.gz"
    cloud.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=archive.getvalue())
    run.state["training"] = {
        "TrainingJobName": run.job,
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{run.job}",
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://{DATA_BUCKET}/{key}"},
    }


def evaluated(run: Run) -> dict[str, Any]:
    artifacts = run.state["training"]["ModelArtifacts"]["S3ModelArtifacts"]
    base = {k: run.state[k] for k in ("model", "dataset", "run")}
    run.state["gate"] = invoke(evaluate_function, {**base, "model_artifacts": artifacts})
    return dict(run.state["gate"])


def registered(run: Run) -> dict[str, Any]:
    training = run.state["training"]
    event = {
        **{k: run.state[k] for k in ("model", "dataset", "run", "gate")},
        "model_artifacts": training["ModelArtifacts"]["S3ModelArtifacts"],
        "training_job_arn": training["TrainingJobArn"],
        "image": {"uri": IMAGE, "digest": "c" * 64},
        "serving_image": {"uri": IMAGE, "digest": "d" * 64},
    }
    run.state["registered"] = invoke(register_function, event)
    return dict(run.state["registered"])


def through_the_gate(cloud: Cloud, model: ModelConfig, seed: int, auc: float) -> Run:
    run = prepared(cloud, model, seed)
    trained(cloud, run, {"auc": auc, "logloss": 0.4, "accuracy": 0.8, "rows": 160})
    evaluated(run)
    return run


# --- Prepare ---------------------------------------------------------------------------------------------


def test_prepare_writes_three_csv_splits_and_the_run_record(cloud: Cloud, example_model: ModelConfig) -> None:
    run = prepared(cloud, example_model, seed=1)
    sha256 = run.state["dataset"]["sha256"]
    assert run.job == training_job_name("churn", sha256, run.execution["name"])
    assert run.state["run"]["rows"] == {"train": 480, "validation": 160, "test": 160}
    for split in ("train", "validation", "test"):
        assert run.state["run"][f"{split}_uri"] == f"s3://{DATA_BUCKET}/churn/runs/{run.job}/splits/{split}/"
        body = cloud.s3.get_object(Bucket=DATA_BUCKET, Key=f"churn/runs/{run.job}/splits/{split}/data.csv")[
            "Body"
        ]
        lines = body.read().decode().splitlines()
        assert lines[0].split(",") == [c.name for c in example_model.data.columns]
        assert len(lines) - 1 == run.state["run"]["rows"][split]
    assert run.state["run"]["output_uri"] == f"s3://{DATA_BUCKET}/churn/runs/{run.job}/output/"
    assert run.state["run"]["checkpoint_uri"] == f"s3://{DATA_BUCKET}/churn/runs/{run.job}/checkpoints/"
    assert run.state["run"]["execution_arn"] == run.execution["id"]
    record = cloud.run_record(run.job)
    assert record["status"] == "training"
    assert record["dataset_sha256"] == sha256
    assert record["execution_arn"] == run.execution["id"]
    assert json.loads(record["hyperparameters"])["eval_metric"] == "auc"


def test_a_replayed_prepare_returns_the_same_run(cloud: Cloud, example_model: ModelConfig) -> None:
    run = prepared(cloud, example_model, seed=1)
    again = invoke(
        prepare_function, {**{k: run.state[k] for k in ("model", "dataset")}, "execution": run.execution}
    )
    assert again == run.state["run"]


def test_prepare_refuses_a_dataset_file_that_is_not_the_version_it_was_given(
    cloud: Cloud, example_model: ModelConfig
) -> None:
    version = dataset_version(cloud, example_model, seed=1)
    cloud.s3.put_object(Bucket=DATA_BUCKET, Key=version.dataset_key, Body=b"tenure_months\n1\n")
    execution = {"name": "x", "id": "arn:aws:states:us-east-1:123456789012:execution:m:x"}
    with pytest.raises(ValueError, match="SHA-256"):
        invoke(
            prepare_function,
            {"model": "churn", "dataset": version.model_dump(mode="json"), "execution": execution},
        )


def test_a_payload_without_the_execution_is_refused_naming_the_field(cloud: Cloud) -> None:
    with pytest.raises(InvalidRequest, match="execution: Field required"):
        invoke(prepare_function, {"model": "churn", "dataset": {}})


# --- Evaluate and Register -----------------------------------------------------------------------------


def test_the_first_model_passes_on_its_thresholds_and_registers_approved_with_lineage(
    cloud: Cloud, example_model: ModelConfig
) -> None:
    run = through_the_gate(cloud, example_model, seed=1, auc=0.83)
    gate = run.state["gate"]
    assert gate["passed"] is True
    assert gate["champion"] is None
    assert gate["evaluation_uri"] == f"s3://{DATA_BUCKET}/churn/runs/{run.job}/evaluation.json"
    assert cloud.run_record(run.job)["status"] == "evaluated"

    result = registered(run)

    assert result["approval_status"] == "Approved"
    assert result["version"] == 1
    assert result["created"] is True
    [package] = cloud.packages()
    assert package["ModelPackageArn"] == result["model_package_arn"]
    assert package["ModelApprovalStatus"] == "Approved"
    lineage = package["CustomerMetadataProperties"]
    assert lineage["dataset_sha256"] == run.state["dataset"]["sha256"]
    assert lineage["training_job"] == run.job
    assert lineage["execution_arn"] == run.execution["id"]
    assert lineage["image_uri"] == IMAGE
    assert decode_metrics(lineage["metrics"])["auc"] == 0.83
    [container] = package["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == run.state["training"]["ModelArtifacts"]["S3ModelArtifacts"]
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == gate["evaluation_uri"]
    written = json.loads(
        cloud.s3.get_object(Bucket=DATA_BUCKET, Key=f"churn/runs/{run.job}/lineage.json")["Body"].read()
    )
    assert written["training"]["hyperparameters"]["max_depth"] == "5"
    record = cloud.run_record(run.job)
    assert record["status"] == "registered"
    assert record["model_package_arn"] == result["model_package_arn"]
    assert record["approval_status"] == "Approved"


def test_a_worse_candidate_is_rejected_with_a_reason_naming_the_metric_and_both_values(
    cloud: Cloud, example_model: ModelConfig
) -> None:
    registered(through_the_gate(cloud, example_model, seed=1, auc=0.85))

    worse = through_the_gate(cloud, example_model, seed=2, auc=0.75)

    gate = worse.state["gate"]
    assert gate["passed"] is False
    [reason] = gate["reasons"]
    assert "auc" in reason and "0.75" in reason and "0.85" in reason
    assert gate["champion"]["version"] == 1
    assert gate["champion"]["metrics"]["auc"] == 0.85
    record = cloud.run_record(worse.job)
    assert record["status"] == "rejected"
    assert record["reasons"] == [reason]
    assert len(cloud.packages()) == 1


def test_a_candidate_within_the_allowed_regression_becomes_version_two(
    cloud: Cloud, example_model: ModelConfig
) -> None:
    registered(through_the_gate(cloud, example_model, seed=1, auc=0.85))
    second = through_the_gate(cloud, example_model, seed=2, auc=0.845)
    assert second.state["gate"]["passed"] is True
    assert registered(second)["version"] == 2


def test_a_manual_approval_policy_registers_the_version_pending(
    cloud: Cloud, example_model: ModelConfig
) -> None:
    cloud.use_approval("manual")
    run = through_the_gate(cloud, example_model, seed=1, auc=0.83)

    assert registered(run)["approval_status"] == "PendingManualApproval"
    [package] = cloud.packages()
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    # A pending version is no champion: the next candidate is judged on its thresholds alone.
    assert through_the_gate(cloud, example_model, seed=2, auc=0.72).state["gate"]["champion"] is None


def test_a_replayed_register_returns_the_version_it_created(cloud: Cloud, example_model: ModelConfig) -> None:
    run = through_the_gate(cloud, example_model, seed=1, auc=0.83)
    first = registered(run)
    again = registered(run)
    assert again == {**first, "created": False}
    assert len(cloud.packages()) == 1


def test_a_slice_gap_rejects_the_candidate(cloud: Cloud, example_model: ModelConfig) -> None:
    run = prepared(cloud, example_model, seed=1)
    slices = {"region": {"north": {"auc": 0.95}, "south": {"auc": 0.7}, "east": {"auc": None}}}
    trained(cloud, run, {"auc": 0.83}, slices)
    gate = evaluated(run)
    assert gate["passed"] is False
    assert "across 'region' slices" in gate["reasons"][0]


def test_an_artifact_without_an_evaluation_fails_evaluate(cloud: Cloud, example_model: ModelConfig) -> None:
    run = prepared(cloud, example_model, seed=1)
    trained(cloud, run, {"auc": 0.8})
    key = run.state["training"]["ModelArtifacts"]["S3ModelArtifacts"].removeprefix(f"s3://{DATA_BUCKET}/")
    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w:gz"):
        pass
    cloud.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=empty.getvalue())
    with pytest.raises(ArtifactError, match=r"no evaluation\.json"):
        evaluated(run)


# --- RunFailed -----------------------------------------------------------------------------------------


def test_run_failed_records_the_training_jobs_failure_reason_and_announces_it(
    cloud: Cloud, example_model: ModelConfig
) -> None:
    run = prepared(cloud, example_model, seed=1)
    reason = "AlgorithmError: hyperparameter 'max_depth': -1 is not valid"
    described = {"TrainingJobName": run.job, "TrainingJobStatus": "Failed", "FailureReason": reason}
    state = {**run.state, "error": {"Error": "States.TaskFailed", "Cause": json.dumps(described)}}

    failure = invoke(run_failed_function, {"state": state, "execution": run.execution})

    assert failure["failed_step"] == "Train"
    assert failure["cause"] == f"training job {run.job} failed: {reason}"
    record = cloud.run_record(run.job)
    assert record["status"] == "failed"
    assert record["cause"] == failure["cause"]
    assert record["error"] == "States.TaskFailed"
    assert record["dataset_sha256"] == run.state["dataset"]["sha256"]  # Prepare's fields are kept
    [event] = cloud.failure_events()
    assert event["source"] == "headrace"
    assert event["detail-type"] == "Training Run Failed"
    assert event["detail"]["job_name"] == run.job
    assert event["detail"]["cause"] == failure["cause"]
    # The registry is untouched: not even the model's package group exists.
    assert cloud.sagemaker.list_model_package_groups(NameContains=GROUP)["ModelPackageGroupSummaryList"] == []


def test_run_failed_creates_the_run_record_when_prepare_never_wrote_one(cloud: Cloud) -> None:
    sha256 = "f" * 64
    execution = {"name": "churn-ffff", "id": "arn:aws:states:us-east-1:123456789012:execution:m:churn-ffff"}
    lambda_error = {
        "errorType": "SplitError",
        "errorMessage": "the dataset needs more rows",
        "stackTrace": [],
    }
    state = {
        "model": "churn",
        "dataset": {"sha256": sha256},
        "error": {"Error": "SplitError", "Cause": json.dumps(lambda_error)},
    }

    failure = invoke(run_failed_function, {"state": state, "execution": execution})

    job = training_job_name("churn", sha256, "churn-ffff")
    assert failure["job_name"] == job
    record = cloud.run_record(job)
    assert record["status"] == "failed"
    assert record["failed_step"] == "Prepare"
    assert record["cause"] == "SplitError: the dataset needs more rows"
    assert record["execution_arn"] == execution["id"]
