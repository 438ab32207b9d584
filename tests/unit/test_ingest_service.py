"""The ingest flow through its ports, with in-memory fakes: what is recorded, started, copied, published."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from headrace.config import ModelConfig
from headrace.datagen import generate
from headrace.ingest import IngestResult, ObjectCreated, Outcome, ingest
from headrace.ingest.attempts import attempt_execution_name, last_job_name
from headrace.ingest.ports import IngestPorts, ObjectDigest, ObjectRef, StartedRun, StoredObject
from headrace.ledger import DatasetVersion, MemoryLedger, RunItem, RunStatus
from headrace.naming import execution_name
from tests.fakes import FakeEvents, FakeMetrics, MemoryOnce

BUCKET = "data"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:headrace-dev-churn-training"
RECEIVED = datetime(2026, 11, 23, 10, 15, 32, tzinfo=UTC)


@dataclass
class FakeStore:
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)
    copies: list[tuple[str, str]] = field(default_factory=list)

    def size(self, ref: ObjectRef) -> int:
        return len(self.objects[(ref.bucket, ref.key)])

    def read(self, ref: ObjectRef) -> StoredObject:
        self.reads.append(ref.key)
        return StoredObject(self.objects[(ref.bucket, ref.key)], ref.version_id)

    def digest(self, ref: ObjectRef) -> ObjectDigest:
        return ObjectDigest(hashlib.sha256(self.objects[(ref.bucket, ref.key)]).hexdigest(), ref.version_id)

    def copy(self, source: ObjectRef, key: str, size: int) -> None:
        self.copies.append((source.key, key))
        self.objects[(source.bucket, key)] = self.objects[(source.bucket, source.key)]

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.objects[(bucket, key)] = body


@dataclass
class FakeRuns:
    started: dict[str, str] = field(default_factory=dict)  # execution name -> input

    def start(self, model: str, name: str, payload: str) -> StartedRun:
        arn = f"{MACHINE.replace(':stateMachine:', ':execution:')}:{name}"
        if name in self.started:
            return StartedRun(arn, created=False)
        self.started[name] = payload
        return StartedRun(arn, created=True)


@dataclass
class World:
    store: FakeStore
    ledger: MemoryLedger
    runs: FakeRuns
    events: FakeEvents
    metrics: FakeMetrics
    once: MemoryOnce[IngestResult]
    models: dict[str, ModelConfig]

    @property
    def ports(self) -> IngestPorts:
        return IngestPorts(
            store=self.store,
            ledger=self.ledger,
            runs=self.runs,
            events=self.events,
            metrics=self.metrics,
            once=self.once,
            clock=lambda: RECEIVED,
        )

    def drop(self, key: str, body: bytes) -> IngestResult:
        self.store.objects[(BUCKET, key)] = body
        notice = ObjectCreated(
            bucket=BUCKET, key=key, version_id=None, size=len(body), etag="", time=RECEIVED, event_id="1"
        )
        return ingest(notice, self.models, self.ports)


@pytest.fixture
def world(example_model: ModelConfig) -> World:
    return World(
        FakeStore(),
        MemoryLedger(),
        FakeRuns(),
        FakeEvents(),
        FakeMetrics(),
        MemoryOnce[IngestResult](),
        {"churn": example_model},
    )


@pytest.fixture
def good(example_model: ModelConfig) -> bytes:
    return generate(example_model, 600, seed=5).to_csv(index=False).encode()


@pytest.fixture
def bad(example_model: ModelConfig) -> bytes:
    frame = generate(example_model, 600, seed=6).astype(object)
    frame.loc[3, "region"] = "atlantis"
    return frame.to_csv(index=False).encode()


def test_an_accepted_file_is_recorded_and_starts_one_run(world: World, good: bytes) -> None:
    result = world.drop("churn/incoming/customers.csv", good)

    sha256 = hashlib.sha256(good).hexdigest()
    assert (result.outcome, result.sha256) == (Outcome.STARTED, sha256)
    assert list(world.runs.started) == [execution_name("churn", sha256)]
    entry = world.ledger.dataset("churn", sha256)
    assert entry is not None
    assert entry.execution_arn == result.execution_arn
    assert world.metrics.counted == [("DatasetsAccepted", "churn")]


def test_the_run_input_is_the_model_and_its_dataset_version(world: World, good: bytes) -> None:
    world.drop("churn/incoming/customers.csv", good)

    [payload] = world.runs.started.values()
    started = json.loads(payload)
    version = DatasetVersion.model_validate(started["dataset"])
    assert started["model"] == "churn"
    assert (version.key, version.rows, version.size_bytes) == ("churn/incoming/customers.csv", 600, len(good))
    assert version.statistics["tenure_months"].kind == "numeric"


def test_an_accepted_file_is_copied_to_its_content_addressed_key_before_the_run(
    world: World, good: bytes
) -> None:
    result = world.drop("churn/incoming/customers.csv", good)

    assert world.store.objects[(BUCKET, f"churn/datasets/{result.sha256}/data.csv")] == good


def test_the_same_bytes_twice_start_one_run(world: World, good: bytes) -> None:
    first = world.drop("churn/incoming/monday.csv", good)
    second = world.drop("churn/incoming/tuesday.csv", good)

    assert (first.outcome, second.outcome) == (Outcome.STARTED, Outcome.DUPLICATE)
    assert second.execution_arn == first.execution_arn
    assert len(world.runs.started) == 1


def test_a_run_started_before_the_ledger_was_written_is_a_duplicate(world: World, good: bytes) -> None:
    sha256 = hashlib.sha256(good).hexdigest()
    world.runs.started[execution_name("churn", sha256)] = "{}"  # e.g. a crash between start and record

    result = world.drop("churn/incoming/customers.csv", good)

    assert result.outcome is Outcome.DUPLICATE
    assert world.ledger.dataset("churn", sha256) is not None
    assert len(world.runs.started) == 1


def test_a_rejected_file_is_copied_with_a_reason_and_announced(world: World, bad: bytes) -> None:
    result = world.drop("churn/incoming/2026-11-23/customers.csv", bad)

    sha256 = hashlib.sha256(bad).hexdigest()
    folder = f"churn/quarantine/2026-11-23/101532.000000-{sha256[:12]}-59520bc7/"
    assert (result.outcome, result.quarantine_key) == (Outcome.QUARANTINED, folder + "customers.csv")
    assert world.store.objects[(BUCKET, folder + "customers.csv")] == bad
    reason = json.loads(world.store.objects[(BUCKET, folder + "reason.json")])
    assert reason["source"] == {"bucket": BUCKET, "key": "churn/incoming/2026-11-23/customers.csv",
                                "version_id": None, "size": len(bad)}  # fmt: skip
    assert [p["rule"] for p in reason["problems"]] == ["category"]
    [(detail_type, detail)] = world.events.published
    assert (detail_type, detail["rules"], detail["quarantine_key"]) == (
        "Dataset Rejected",
        ["category"],
        folder + "customers.csv",
    )
    assert world.metrics.counted == [("DatasetsRejected", "churn")]
    assert [item["kind"] for item in world.ledger.items.values()] == ["rejection"]
    assert world.runs.started == {}


def test_a_rejected_file_is_never_deleted(world: World, bad: bytes) -> None:
    world.drop("churn/incoming/customers.csv", bad)

    assert world.store.objects[(BUCKET, "churn/incoming/customers.csv")] == bad


def test_a_replayed_rejection_is_quarantined_once(world: World, bad: bytes) -> None:
    world.drop("churn/incoming/customers.csv", bad)
    world.drop("churn/incoming/customers.csv", bad)

    assert len(world.events.published) == 1
    assert len(world.store.copies) == 1


def test_an_oversized_file_is_quarantined_without_being_read(
    world: World, example_model: ModelConfig
) -> None:
    limit = int(example_model.data.max_file_mb * 1024 * 1024)
    world.store.objects[(BUCKET, "churn/incoming/huge.csv")] = b"x"
    notice = ObjectCreated(
        bucket=BUCKET,
        key="churn/incoming/huge.csv",
        version_id=None,
        size=limit + 1,
        etag="",
        time=RECEIVED,
        event_id="1",
    )

    result = ingest(notice, world.models, world.ports)

    assert result.outcome is Outcome.QUARANTINED
    assert [p.rule.value for p in result.problems or []] == ["size"]
    assert world.store.reads == []


def test_a_key_outside_every_model_is_quarantined_with_rule_key_prefix(world: World, good: bytes) -> None:
    result = world.drop("other-team/incoming/x.csv", good)

    assert result.outcome is Outcome.QUARANTINED
    assert (result.quarantine_key or "").startswith("other-team/quarantine/2026-11-23/")
    assert [p.rule.value for p in result.problems or []] == ["key_prefix"]
    assert "known models: churn" in (result.problems or [])[0].message


@pytest.mark.parametrize(
    "key",
    [
        "churn/quarantine/2026-11-23/abc/reason.json",
        "churn/datasets/abc/data.csv",
        "unknown/quarantine/x.csv",
        "churn/incoming/",
    ],
)
def test_pipeline_output_and_folder_markers_are_ignored(world: World, key: str) -> None:
    result = world.drop(key, b"")

    assert result.outcome is Outcome.IGNORED
    assert world.events.published == []
    assert world.store.copies == []


def test_an_upload_named_reason_json_does_not_overwrite_its_reason(world: World, good: bytes) -> None:
    result = world.drop("churn/incoming/reason.json", good)

    assert (result.quarantine_key or "").endswith("/upload-reason.json")


def test_a_key_with_no_usable_model_segment_is_quarantined_under_the_unrouted_prefix(
    world: World, good: bytes
) -> None:
    result = world.drop("Bad_Name/incoming/x.csv", good)

    assert (result.quarantine_key or "").startswith("unknown/quarantine/")


def test_the_same_bad_bytes_dropped_under_two_keys_keep_two_reasons(world: World) -> None:
    first = world.drop("churn/incoming/a.csv", b"")
    second = world.drop("churn/incoming/b.csv", b"")

    assert first.quarantine_key != second.quarantine_key
    assert first.quarantine_key.rsplit("/", 1)[0] != second.quarantine_key.rsplit("/", 1)[0]  # type: ignore[union-attr]


def _run_ended(world: World, sha256: str, status: RunStatus) -> None:
    """The latest attempt's run item as the training steps leave it (RunFailed, Register, the gate)."""
    item = world.ledger.dataset("churn", sha256)
    assert item is not None and item.execution_arn
    job = last_job_name(item)
    assert job is not None
    world.ledger.update(
        RunItem(model="churn", job_name=job, status=status.value, execution_arn=item.execution_arn)
    )


def test_the_same_bytes_after_a_failed_run_start_a_second_attempt(world: World, good: bytes) -> None:
    first = world.drop("churn/incoming/monday.csv", good)
    sha256 = hashlib.sha256(good).hexdigest()
    _run_ended(world, sha256, RunStatus.FAILED)

    second = world.drop("churn/incoming/monday.csv", good)

    assert second.outcome is Outcome.STARTED
    assert second.execution_arn != first.execution_arn
    assert list(world.runs.started) == [
        execution_name("churn", sha256),
        attempt_execution_name("churn", sha256, 2),
    ]
    item = world.ledger.dataset("churn", sha256)
    assert item is not None and (item.attempt, item.execution_arn) == (2, second.execution_arn)


@pytest.mark.parametrize(
    "status", [RunStatus.TRAINING, RunStatus.EVALUATED, RunStatus.REGISTERED, RunStatus.REJECTED]
)
def test_the_same_bytes_while_a_run_goes_on_or_after_it_ended_well_are_a_duplicate(
    world: World, good: bytes, status: RunStatus
) -> None:
    first = world.drop("churn/incoming/monday.csv", good)
    _run_ended(world, hashlib.sha256(good).hexdigest(), status)

    second = world.drop("churn/incoming/tuesday.csv", good)

    assert (second.outcome, second.execution_arn) == (Outcome.DUPLICATE, first.execution_arn)
    assert len(world.runs.started) == 1


def test_the_same_bytes_before_the_run_is_recorded_are_a_duplicate(world: World, good: bytes) -> None:
    world.drop("churn/incoming/monday.csv", good)  # Prepare has not written the run item yet

    assert world.drop("churn/incoming/tuesday.csv", good).outcome is Outcome.DUPLICATE
    assert len(world.runs.started) == 1


def test_two_uploads_after_a_failed_run_start_one_new_attempt(world: World, good: bytes) -> None:
    world.drop("churn/incoming/monday.csv", good)
    _run_ended(world, hashlib.sha256(good).hexdigest(), RunStatus.FAILED)

    second = world.drop("churn/incoming/tuesday.csv", good)
    third = world.drop("churn/incoming/wednesday.csv", good)

    assert (second.outcome, third.outcome) == (Outcome.STARTED, Outcome.DUPLICATE)
    assert third.execution_arn == second.execution_arn
    assert len(world.runs.started) == 2


def test_a_failed_second_attempt_allows_a_third(world: World, good: bytes) -> None:
    sha256 = hashlib.sha256(good).hexdigest()
    world.drop("churn/incoming/monday.csv", good)
    _run_ended(world, sha256, RunStatus.FAILED)
    world.drop("churn/incoming/monday.csv", good)
    _run_ended(world, sha256, RunStatus.FAILED)

    third = world.drop("churn/incoming/monday.csv", good)

    assert third.outcome is Outcome.STARTED
    assert list(world.runs.started)[-1] == attempt_execution_name("churn", sha256, 3)


def test_an_attempt_started_before_the_ledger_moved_on_is_recorded_as_a_duplicate(
    world: World, good: bytes
) -> None:
    sha256 = hashlib.sha256(good).hexdigest()
    world.drop("churn/incoming/monday.csv", good)
    _run_ended(world, sha256, RunStatus.FAILED)
    world.runs.started[attempt_execution_name("churn", sha256, 2)] = "{}"  # a crash between start and record

    result = world.drop("churn/incoming/monday.csv", good)

    assert result.outcome is Outcome.DUPLICATE
    item = world.ledger.dataset("churn", sha256)
    assert item is not None and item.attempt == 2
