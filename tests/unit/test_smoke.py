"""headrace/smoke.py against a scripted stage: the ledger in memory, S3 and SageMaker as small fakes whose
"pipeline" answers a dropped file the way ingest, training and deploy record it. Each test scripts one way a
stage can behave and checks the verdict and the words of each step."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from headrace.config import ModelConfig, load_models
from headrace.deployment import ModelInfo, SchemaInfo
from headrace.ingest.attempts import last_job_name
from headrace.ledger import DatasetItem, DeploymentItem, RejectionItem, RunItem
from headrace.ledger.memory import MemoryLedger
from headrace.smoke import PROBE_ROWS, Smoke, SmokeClients, SmokeReport

REPO = Path(__file__).resolve().parents[2]
BUCKET = "data-bucket"
ENDPOINT = "headrace-dev-churn"
MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:headrace-dev-churn-training"


@pytest.fixture(scope="module")
def churn() -> ModelConfig:
    return next(m for m in load_models(REPO / "models") if m.name == "churn")


def info(config: ModelConfig) -> ModelInfo:
    schema = SchemaInfo(columns=[], target=config.data.target, fingerprint=config.data.fingerprint())
    return ModelInfo(
        name=config.name,
        data_bucket=BUCKET,
        incoming_prefix=config.incoming_prefix,
        quarantine_prefix=config.quarantine_prefix,
        datasets_prefix=config.datasets_prefix,
        schema_=schema,
        training_state_machine_arn=MACHINE,
        endpoint_name=ENDPOINT,
    )


class Stage:
    """The fake stage: `on_drop(key, sha256)` is the pipeline's reaction to a file, scripted per test."""

    def __init__(self, ledger: MemoryLedger, on_drop: Callable[[str, str], None]) -> None:
        self.ledger, self.on_drop = ledger, on_drop
        self.objects: dict[str, bytes] = {}
        self.endpoint: dict[str, Any] | None = None
        self.invocations: list[dict[str, Any]] = []
        self.answer: Callable[[int], list[float]] = lambda n: [0.25] * n

    # s3
    def put_object(self, Bucket: str, Key: str, Body: bytes) -> dict[str, Any]:
        self.objects[Key] = Body
        self.on_drop(Key, hashlib.sha256(Body).hexdigest())
        return {}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "no such key"}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[Key])}

    # sagemaker
    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        if self.endpoint is None:
            message = f'Could not find endpoint "{EndpointName}".'
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": message}}, "DescribeEndpoint"
            )
        return self.endpoint

    # sagemaker-runtime
    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        self.invocations.append(request)
        rows = len(json.loads(request["Body"])["instances"])
        return {"Body": io.BytesIO(json.dumps({"predictions": self.answer(rows)}).encode())}

    def serve(self, version: int) -> None:
        self.endpoint = {
            "EndpointStatus": "InService",
            "EndpointConfigName": f"{ENDPOINT}-v{version}-0123abcd",
        }


def dataset(model: str, key: str, sha256: str) -> DatasetItem:
    execution = f"{MACHINE.replace(':stateMachine:', ':execution:')}:{model}-{sha256[:40]}"
    return DatasetItem(
        model=model,
        sha256=sha256,
        bucket=BUCKET,
        key=key,
        version_id=None,
        size_bytes=1,
        format="csv",
        rows=200,
        columns=["x"],
        schema_fingerprint="f",
        statistics="{}",
        received_at="2025-01-01T00:00:00.000000Z",
        dataset_key=key,
        execution_arn=execution,
        status="started",
        recorded_at="2025-01-01T00:00:00.000000Z",
    )


def registered(ledger: MemoryLedger, item: DatasetItem, version: int, approval: str) -> None:
    job = last_job_name(item)
    assert job is not None
    ledger.record(item)
    ledger.record(
        RunItem(
            model=item.model, job_name=job, status="registered", version=version, approval_status=approval
        )
    )


def smoke(config: ModelConfig, stage: Stage, timeout_s: float = 5.0) -> SmokeReport:
    clients = SmokeClients(s3=stage, sagemaker=stage, runtime=stage)
    return Smoke(
        "dev", config, info(config), stage.ledger, clients, rows=200, seed=3, timeout_s=timeout_s, poll_s=0.01
    ).run()


def statuses(report: SmokeReport) -> list[str]:
    return [s.status for s in report.steps]


def test_auto_approved_version_deployed_and_answering_passes(churn: ModelConfig) -> None:
    ledger = MemoryLedger()

    def pipeline(key: str, sha256: str) -> None:
        registered(ledger, dataset("churn", key, sha256), 4, "Approved")
        ledger.record(DeploymentItem(model="churn", deployment_id="2025-a", status="serving", version=4))
        stage.serve(4)

    stage = Stage(ledger, pipeline)
    report = smoke(churn, stage)
    assert statuses(report) == ["passed"] * 5, report
    assert report.passed
    assert report.steps[2].detail.startswith("v4 Approved")
    assert "InService on v4" in report.steps[3].detail
    assert report.steps[4].detail.startswith(f"v4 answered {PROBE_ROWS} predictions")
    # The sample dropped is the model's: a header with its columns, under its incoming prefix.
    ((key, body),) = stage.objects.items()
    assert key.startswith("churn/incoming/smoke-") and key.endswith("-3.csv")
    assert body.decode().splitlines()[0].split(",") == [c.name for c in churn.data.columns]
    # The probe sends features only: the target is what the endpoint predicts.
    instance = json.loads(stage.invocations[0]["Body"])["instances"][0]
    assert churn.data.target not in instance and len(instance) == len(churn.data.columns) - 1


def test_manual_stage_registers_without_deploying_and_passes(churn: ModelConfig) -> None:
    ledger = MemoryLedger()
    stage = Stage(
        ledger, lambda key, sha: registered(ledger, dataset("churn", key, sha), 1, "PendingManualApproval")
    )
    report = smoke(churn, stage)
    assert statuses(report) == ["passed", "passed", "passed", "skipped", "skipped"]
    assert report.passed
    assert report.steps[3].detail.startswith(
        "registered v1, PendingManualApproval: not deployed (stage policy manual"
    )
    assert "no version of churn is deployed in dev" in report.steps[4].detail


def test_manual_stage_checks_the_version_already_serving(churn: ModelConfig) -> None:
    ledger = MemoryLedger()
    stage = Stage(
        ledger, lambda key, sha: registered(ledger, dataset("churn", key, sha), 3, "PendingManualApproval")
    )
    stage.serve(2)
    report = smoke(churn, stage)
    assert statuses(report) == ["passed", "passed", "passed", "skipped", "passed"]
    assert report.steps[4].detail.startswith("v2 answered")


def test_gate_rejection_fails_with_its_reasons(churn: ModelConfig) -> None:
    ledger = MemoryLedger()

    def pipeline(key: str, sha256: str) -> None:
        item = dataset("churn", key, sha256)
        ledger.record(item)
        job = last_job_name(item) or ""
        reasons = ["auc 0.61 is below the threshold 0.7"]
        ledger.record(RunItem(model="churn", job_name=job, status="rejected", reasons=reasons))

    report = smoke(churn, Stage(ledger, pipeline))
    assert statuses(report) == ["passed", "passed", "failed", "skipped", "skipped"]
    assert not report.passed
    assert "rejected by the gate: auc 0.61 is below the threshold 0.7" in report.steps[2].detail


def test_failed_run_fails_with_the_step_and_cause(churn: ModelConfig) -> None:
    ledger = MemoryLedger()

    def pipeline(key: str, sha256: str) -> None:
        item = dataset("churn", key, sha256)
        ledger.record(item)
        failed = RunItem(
            model="churn",
            job_name=last_job_name(item) or "",
            status="failed",
            failed_step="Train",
            cause="AlgorithmError: out of memory\ntraceback...",
        )
        ledger.record(failed)

    report = smoke(churn, Stage(ledger, pipeline))
    assert report.steps[2].status == "failed"
    assert report.steps[2].detail.endswith("failed in Train: AlgorithmError: out of memory")


def test_quarantined_file_fails_with_the_rules(churn: ModelConfig) -> None:
    ledger = MemoryLedger()

    def pipeline(key: str, sha256: str) -> None:
        ledger.record(
            RejectionItem(
                model="churn",
                sha256=sha256,
                bucket=BUCKET,
                key=key,
                version_id=None,
                size_bytes=1,
                quarantine_key="churn/quarantine/x/file.csv",
                reason_key="churn/quarantine/x/reason.json",
                rules=["value_range"],
                received_at="2025-01-01T00:00:00.000000Z",
                recorded_at="2025-01-01T00:00:00.000000Z",
            )
        )

    report = smoke(churn, Stage(ledger, pipeline))
    assert statuses(report) == ["passed", "failed", "skipped", "skipped", "skipped"]
    assert report.steps[1].detail == "quarantined as churn/quarantine/x/file.csv: value_range"


def test_rolled_back_deployment_fails(churn: ModelConfig) -> None:
    ledger = MemoryLedger()

    def pipeline(key: str, sha256: str) -> None:
        registered(ledger, dataset("churn", key, sha256), 2, "Approved")
        ledger.record(
            DeploymentItem(
                model="churn", deployment_id="2025-b", status="rolled_back", version=2, cause="5xx alarm"
            )
        )
        stage.serve(1)

    stage = Stage(ledger, pipeline)
    report = smoke(churn, stage)
    assert statuses(report) == ["passed", "passed", "passed", "failed", "skipped"]
    assert report.steps[3].detail == "the deployment of v2 ended rolled_back v2: 5xx alarm"


def test_endpoint_answering_too_few_predictions_fails(churn: ModelConfig) -> None:
    ledger = MemoryLedger()

    def pipeline(key: str, sha256: str) -> None:
        registered(ledger, dataset("churn", key, sha256), 1, "Approved")
        ledger.record(DeploymentItem(model="churn", deployment_id="2025-a", status="serving", version=1))
        stage.serve(1)

    stage = Stage(ledger, pipeline)
    stage.answer = lambda n: [0.5] * (n - 1)
    report = smoke(churn, stage)
    assert report.steps[4].status == "failed"
    assert report.steps[4].detail == f"{PROBE_ROWS} rows sent, {PROBE_ROWS - 1} predictions answered"


def test_nothing_happening_fails_on_the_timeout(churn: ModelConfig) -> None:
    report = smoke(churn, Stage(MemoryLedger(), lambda key, sha: None), timeout_s=0.2)
    assert statuses(report) == ["passed", "failed", "skipped", "skipped", "skipped"]
    assert report.steps[1].detail.startswith(
        "timed out after 0s waiting for ingest to record churn/incoming/"
    )
    assert not report.passed
