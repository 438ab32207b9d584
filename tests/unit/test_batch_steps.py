"""Resolve and Record, the batch state machine's Lambda steps, with in-memory fakes: which Model scores a
batch, the transform job's name, and how its end is recorded (a failed job presents no output)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
import pytest

from headrace.batch.payloads import BatchInput, RecordRequest, Resolved, ResolveRequest
from headrace.batch.ports import BatchPorts, ServedModel
from headrace.batch.record import BATCH_COMPLETED, BATCH_FAILED, record
from headrace.batch.resolve import NothingToScoreWith, resolve
from headrace.config import ModelConfig
from headrace.datagen import generate
from headrace.drift import DriftResult
from headrace.ledger import BatchItem, MemoryLedger
from headrace.naming import Names, transform_job_name
from headrace.steps import Execution, StepError
from tests.fakes import FakeEvents, FakeStore
from tests.unit.test_monitoring_check import _model_tar

NAMES = Names("dev")
STARTED = datetime(2026, 12, 1, 2, 3, 4, tzinfo=UTC)
SHA = "ab" * 32
BATCH = BatchInput(
    model="churn",
    sha256=SHA,
    source_key="churn/batch/incoming/may.csv",
    input_prefix=f"churn/batch/input/{SHA}/",
    rows=1000,
)
EXECUTION = Execution(
    name="churn-x-batch", id="arn:aws:states:eu-west-1:123456789012:execution:m:churn-x-batch"
)
SERVING_CONFIG = "headrace-dev-churn-v3-0123abcd"
MODEL_DATA_URL = "s3://data/churn/runs/r1/output/model.tar.gz"


@dataclass
class FakeHosting:
    serving: ServedModel | None = None
    approvals: dict[int, str] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)

    def served(self, endpoint: str) -> ServedModel | None:
        return self.serving

    def approval(self, group: str, version: int) -> str | None:
        return self.approvals.get(version)

    def newest_model(self, name_prefix: str) -> str | None:
        return next((m for m in self.models if m.startswith(name_prefix)), None)

    def model_data_url(self, model_name: str) -> str:
        return MODEL_DATA_URL


@dataclass
class FakeBatchMetrics:
    finished_jobs: list[tuple[str, str, int]] = field(default_factory=list)

    def finished(self, model: str, status: str, rows: int) -> None:
        self.finished_jobs.append((model, status, rows))


@dataclass
class FakeDriftMetrics:
    published: list[tuple[str, list[str]]] = field(default_factory=list)
    counted: list[tuple[str, int]] = field(default_factory=list)

    def publish(self, model: str, result: DriftResult) -> None:
        self.published.append((model, result.drifted_features))

    def rows(self, model: str, rows: int) -> None:
        self.counted.append((model, rows))


@dataclass
class World:
    hosting: FakeHosting = field(default_factory=FakeHosting)
    ledger: MemoryLedger = field(default_factory=MemoryLedger)
    events: FakeEvents = field(default_factory=FakeEvents)
    metrics: FakeBatchMetrics = field(default_factory=FakeBatchMetrics)

    store: FakeStore = field(default_factory=FakeStore)
    drift: FakeDriftMetrics = field(default_factory=FakeDriftMetrics)

    @property
    def ports(self) -> BatchPorts:
        return BatchPorts(
            self.hosting,
            self.ledger,
            self.events,
            self.metrics,
            clock=lambda: STARTED,
            store=self.store,
            drift=self.drift,
        )


def _resolve(world: World, model: ModelConfig, version: int | None = None) -> Resolved:
    batch = BATCH.model_copy(update={"version": version})
    request = ResolveRequest(model="churn", batch=batch, execution=EXECUTION, started=STARTED)
    return resolve(request, model, world.ports, names=NAMES, bucket="data")


def test_the_serving_versions_model_scores_by_default(example_model: ModelConfig) -> None:
    world = World(FakeHosting(serving=ServedModel(SERVING_CONFIG, SERVING_CONFIG)))
    resolved = _resolve(world, example_model)

    assert (resolved.version, resolved.model_name) == (3, SERVING_CONFIG)
    assert (
        resolved.job_name
        == "churn-batch-abababab-20261201020304"
        == transform_job_name("churn", SHA, STARTED)
    )
    assert resolved.input_uri == f"s3://data/churn/batch/input/{SHA}/"
    assert resolved.output_uri == f"s3://data/churn/batch/output/{resolved.job_name}/"
    [item] = world.ledger.batches("churn")
    assert (item.status, item.rows, item.version) == ("InProgress", 1000, 3)


def test_without_a_serving_endpoint_resolve_says_how_to_name_a_version(example_model: ModelConfig) -> None:
    with pytest.raises(NothingToScoreWith, match=r"no serving endpoint.*batch/incoming/v<N>/"):
        _resolve(World(), example_model)


def test_a_named_version_must_be_approved_and_have_a_model(example_model: ModelConfig) -> None:
    model_name = "headrace-dev-churn-v2-feedbeef"
    world = World(FakeHosting(approvals={1: "Rejected", 2: "Approved", 4: "Approved"}, models=[model_name]))

    assert _resolve(world, example_model, 2).model_name == model_name
    with pytest.raises(NothingToScoreWith, match="version 1 of model 'churn' is Rejected"):
        _resolve(world, example_model, 1)
    with pytest.raises(NothingToScoreWith, match="version 9 of model 'churn' does not exist"):
        _resolve(world, example_model, 9)
    with pytest.raises(NothingToScoreWith, match=r"version 4 .* never deployed"):
        _resolve(world, example_model, 4)


def _resolved() -> Resolved:
    job = transform_job_name("churn", SHA, STARTED)
    return Resolved(
        model="churn",
        version=3,
        model_name=SERVING_CONFIG,
        job_name=job,
        input_uri=f"s3://data/churn/batch/input/{SHA}/",
        output_uri=f"s3://data/churn/batch/output/{job}/",
    )


def test_a_completed_job_is_recorded_with_its_output_an_event_and_rows_scored(
    example_model: ModelConfig,
) -> None:
    world = World()
    _stored_batch(world, example_model, generate(example_model, 1000, seed=5))
    request = RecordRequest(
        batch=BATCH, resolved=_resolved(), execution=EXECUTION, transform={"TransformJobStatus": "Completed"}
    )
    outcome = record(request, example_model, world.ports)

    assert (outcome.status, outcome.output_uri) == ("Completed", _resolved().output_uri)
    item = world.ledger.batch("churn", _resolved().job_name)
    assert (
        isinstance(item, BatchItem) and item.status == "Completed" and item.output_uri == outcome.output_uri
    )
    assert [t for t, _ in world.events.published] == [BATCH_COMPLETED]
    assert world.metrics.finished_jobs == [("churn", "Completed", 1000)]
    # Its inputs were checked against the version's profile: stable, reported, published.
    assert outcome.drift is not None and (outcome.drift.status, outcome.drift.rows) == ("stable", 1000)
    assert item.drift_status == "stable" and item.drift_report_uri == outcome.drift.report_uri
    assert world.drift.published == [("churn", [])] and world.drift.counted == [("churn", 1000)]
    folder = f"churn/monitoring/batches/{_resolved().job_name}"
    assert world.store.exists("data", f"{folder}/result.json") and world.store.exists(
        "data", f"{folder}/report.html"
    )


def test_a_failed_job_records_sagemakers_reason_and_presents_no_output(example_model: ModelConfig) -> None:
    world = World()
    cause = json.dumps({"TransformJobStatus": "Failed", "FailureReason": "ClientError: bad row 7"})
    request = RecordRequest(
        batch=BATCH,
        resolved=_resolved(),
        execution=EXECUTION,
        error=StepError(Error="States.TaskFailed", Cause=cause),
    )
    outcome = record(request, example_model, world.ports)

    assert (outcome.status, outcome.output_uri) == ("Failed", None)
    assert outcome.failure_reason == "States.TaskFailed: ClientError: bad row 7"
    item = world.ledger.batch("churn", _resolved().job_name)
    assert item is not None and (item.status, item.output_uri) == ("Failed", None)
    assert [t for t, _ in world.events.published] == [BATCH_FAILED]
    assert world.metrics.finished_jobs == [("churn", "Failed", 0)]
    assert outcome.drift is None and world.drift.counted == []


def test_a_drifted_batch_publishes_the_drift_checks_metrics(example_model: ModelConfig) -> None:
    world = World()
    _stored_batch(world, example_model, generate(example_model, 1000, seed=6, drift=1.0))
    request = RecordRequest(
        batch=BATCH, resolved=_resolved(), execution=EXECUTION, transform={"TransformJobStatus": "Completed"}
    )
    outcome = record(request, example_model, world.ports)

    assert outcome.drift is not None and outcome.drift.status == "drifted"
    assert "tenure_months" in outcome.drift.drifted_features
    assert world.drift.published == [("churn", outcome.drift.drifted_features)]


def test_a_drift_check_that_fails_leaves_the_completed_scores_and_says_why(
    example_model: ModelConfig,
) -> None:
    world = World()  # no model artifact stored: the reference cannot be read
    request = RecordRequest(
        batch=BATCH, resolved=_resolved(), execution=EXECUTION, transform={"TransformJobStatus": "Completed"}
    )
    outcome = record(request, example_model, world.ports)

    assert (outcome.status, outcome.output_uri) == ("Completed", _resolved().output_uri)
    assert outcome.drift is not None and outcome.drift.status.startswith("error: ")
    assert world.drift.published == []


def _stored_batch(world: World, model: ModelConfig, frame: pd.DataFrame) -> None:
    """The version's artifact and the batch's input as ingest writes it (two objects, no header)."""
    world.store.put("data", MODEL_DATA_URL.removeprefix("s3://data/"), _model_tar(model), "application/gzip")
    features = [c.name for c in model.data.features]
    half = len(frame) // 2
    for index, part in enumerate((frame.iloc[:half], frame.iloc[half:])):
        body = part[features].to_csv(header=False, index=False).encode()
        world.store.put("data", f"{BATCH.input_prefix}part-{index:05d}.csv", body, "text/csv")
