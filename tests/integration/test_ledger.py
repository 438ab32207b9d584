"""The ledger's one adapter on DynamoDB (moto) and the in-memory one the unit tests use, held to the same
contract: the same calls leave the same items and read back the same typed models."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest
from boto3.dynamodb.types import TypeDeserializer

from headrace.ledger import (
    DatasetItem,
    DatasetVersion,
    DeploymentItem,
    DriftCheckItem,
    DynamoLedger,
    FileFormat,
    IdleDecision,
    LedgerItem,
    MemoryLedger,
    RejectionItem,
    RetrainDecision,
    RunItem,
    plain,
)
from tests.support.moto import LEDGER_TABLE, MotoAccount

NOW = datetime(2026, 11, 23, 10, 15, 32, tzinfo=UTC)
SHA = "c" * 64


class Ledger(Protocol):
    """What both adapters offer (DynamoLedger and MemoryLedger)."""

    def record(self, item: LedgerItem, *, expires_at: datetime | None = None) -> None: ...
    def record_dataset(self, item: DatasetItem) -> bool: ...
    def record_attempt(self, item: DatasetItem, previous_execution_arn: str) -> bool: ...
    def run(self, model: str, job_name: str) -> RunItem | None: ...
    def start_run(self, item: RunItem) -> Any: ...
    def update(self, item: LedgerItem, keep_existing: Any = ()) -> None: ...
    def dataset(self, model: str, sha256: str) -> DatasetItem | None: ...
    def newest_dataset(self, model: str) -> DatasetItem | None: ...
    def runs(self, model: str) -> list[RunItem]: ...
    def deployments(self, model: str) -> list[DeploymentItem]: ...
    def drift_checks(self, model: str, limit: int | None = None) -> list[DriftCheckItem]: ...
    def retrains(self, model: str, since: datetime) -> list[RetrainDecision]: ...
    def partition(self, model: str) -> list[LedgerItem]: ...


@pytest.fixture(params=["dynamo", "memory"])
def adapter(request: pytest.FixtureRequest) -> Iterator[tuple[Ledger, Any]]:
    """(ledger, read_stored): read_stored(item) is the raw item the table holds under item's key."""
    if request.param == "memory":
        memory = MemoryLedger()
        yield memory, memory.stored
        return
    account: MotoAccount = request.getfixturevalue("moto_account")
    deserialize = TypeDeserializer().deserialize

    def read_stored(item: LedgerItem) -> dict[str, Any] | None:
        key = {name: {"S": value} for name, value in item.table_key.items()}
        found = account.dynamodb.get_item(TableName=LEDGER_TABLE, Key=key).get("Item")
        return None if found is None else {k: plain(deserialize(v)) for k, v in found.items()}

    yield DynamoLedger(account.dynamodb, LEDGER_TABLE), read_stored


def _version(sha: str = SHA, received_at: datetime = NOW) -> DatasetVersion:
    return DatasetVersion(
        model="churn",
        sha256=sha,
        bucket="data",
        key="churn/incoming/customers.csv",
        version_id=None,
        size_bytes=10,
        format=FileFormat.CSV,
        rows=3,
        columns=["x", "churned"],
        schema_fingerprint="f" * 16,
        statistics={},
        received_at=received_at,
        dataset_key=f"churn/datasets/{sha}/data.csv",
    )


def _run(job: str = "churn-job", execution_arn: str = "arn:first") -> RunItem:
    return RunItem.started(
        "churn",
        job,
        dataset_sha256=SHA,
        dataset_key=f"churn/datasets/{SHA}/data.csv",
        dataset_version_id=None,
        hyperparameters={"eta": "0.1"},
        execution_arn=execution_arn,
        splits_prefix="s3://data/churn/runs/churn-job/splits/",
        rows={"train": 8, "validation": 1, "test": 1},
        at=NOW,
    )


def test_the_first_dataset_writer_wins(adapter: tuple[Ledger, Any]) -> None:
    ledger, _ = adapter
    first = DatasetItem.started(_version(), "arn:first", NOW)

    assert ledger.record_dataset(first)
    assert not ledger.record_dataset(DatasetItem.started(_version(), "arn:second", NOW))
    assert ledger.dataset("churn", SHA) == first
    assert ledger.dataset("churn", "d" * 64) is None


def test_only_one_of_two_racing_attempts_moves_the_dataset_on(adapter: tuple[Ledger, Any]) -> None:
    ledger, _ = adapter
    first = DatasetItem.started(_version(), "arn:first", NOW)
    ledger.record_dataset(first)

    assert ledger.record_attempt(first.attempted(2, "arn:second", NOW), "arn:first")
    assert not ledger.record_attempt(first.attempted(2, "arn:twin", NOW), "arn:first")
    stored = ledger.dataset("churn", SHA)
    assert stored is not None and (stored.attempt, stored.execution_arn) == (2, "arn:second")


def test_a_run_reads_back_by_its_job_name(adapter: tuple[Ledger, Any]) -> None:
    ledger, _ = adapter
    ledger.update(RunItem(model="churn", job_name="churn-job", status="failed"))

    run = ledger.run("churn", "churn-job")
    assert run is not None and run.status == "failed"
    assert ledger.run("churn", "other-job") is None


def test_a_dataset_item_keeps_an_explicit_null_and_reads_back_as_its_version(
    adapter: tuple[Ledger, Any],
) -> None:
    ledger, read_stored = adapter
    item = DatasetItem.started(_version(), "arn:first", NOW)
    ledger.record_dataset(item)

    stored = read_stored(item)
    assert stored["pk"] == "model#churn" and stored["sk"] == f"dataset#{SHA}"
    assert "version_id" in stored and stored["version_id"] is None
    assert ledger.dataset("churn", SHA).version() == _version()  # type: ignore[union-attr]


def test_the_newest_dataset_is_the_one_received_last(adapter: tuple[Ledger, Any]) -> None:
    ledger, _ = adapter
    ledger.record_dataset(DatasetItem.started(_version("b" * 64, NOW), "arn:b", NOW))
    ledger.record_dataset(DatasetItem.started(_version("a" * 64, NOW + timedelta(days=1)), "arn:a", NOW))

    newest = ledger.newest_dataset("churn")
    assert newest is not None and newest.sha256 == "a" * 64
    assert ledger.newest_dataset("fraud") is None


def test_a_replayed_run_start_returns_the_first_start(adapter: tuple[Ledger, Any]) -> None:
    ledger, _ = adapter
    first = ledger.start_run(_run())
    again = ledger.start_run(_run().model_copy(update={"started_at": "2026-11-24T00:00:00.000000Z"}))

    assert (first.created, first.started_at) == (True, NOW)
    assert (again.created, again.started_at) == (False, NOW)


def test_a_run_update_sets_only_its_fields_and_keeps_what_it_is_told_to(adapter: tuple[Ledger, Any]) -> None:
    ledger, read_stored = adapter
    ledger.start_run(_run())
    failed = RunItem.failed(
        "churn",
        "churn-job",
        error="States.TaskFailed",
        cause="boom",
        failed_step="Train",
        execution_arn="arn:other",
        dataset_sha256=SHA,
        at=NOW + timedelta(hours=1),
    )
    ledger.update(failed, keep_existing=RunItem.FAILURE_DEFAULTS)
    ledger.update(RunItem.approval("churn", "churn-job", "Approved"))

    [run] = ledger.runs("churn")
    assert (run.status, run.cause, run.approval_status) == ("failed", "boom", "Approved")
    assert (run.execution_arn, run.rows, run.hyperparameters) == (
        "arn:first",
        {"train": 8, "validation": 1, "test": 1},
        '{"eta": "0.1"}',
    )
    assert read_stored(run)["kind"] == "run"


def test_a_failure_creates_the_run_item_prepare_never_wrote(adapter: tuple[Ledger, Any]) -> None:
    ledger, read_stored = adapter
    failed = RunItem.failed(
        "churn",
        "churn-job",
        error="E",
        cause="c",
        failed_step="Prepare",
        execution_arn="arn:x",
        dataset_sha256=None,
        at=NOW,
    )
    ledger.update(failed, keep_existing=RunItem.FAILURE_DEFAULTS)

    stored = read_stored(failed)
    assert {k: stored[k] for k in ("kind", "model", "job_name", "execution_arn", "status")} == {
        "kind": "run",
        "model": "churn",
        "job_name": "churn-job",
        "execution_arn": "arn:x",
        "status": "failed",
    }
    assert "dataset_sha256" not in stored


def test_deployments_are_updated_in_place_and_listed_newest_first(adapter: tuple[Ledger, Any]) -> None:
    ledger, read_stored = adapter
    first = DeploymentItem(
        model="churn",
        deployment_id="2026-01-01T00:00:00.000000Z#a",
        status="deploying",
        version=1,
        previous_version=None,
        action="create",
    )
    ledger.update(first)
    ledger.update(
        DeploymentItem(model="churn", deployment_id=first.deployment_id, status="serving", version=1)
    )
    ledger.update(
        DeploymentItem(
            model="churn", deployment_id="2026-01-02T00:00:00.000000Z#b", status="deploying", version=2
        )
    )

    assert [(d.version, d.status, d.action) for d in ledger.deployments("churn")] == [
        (2, "deploying", None),
        (1, "serving", "create"),
    ]
    stored = read_stored(first)
    assert stored["sk"] == "deploy#2026-01-01T00:00:00.000000Z#a"
    assert "model" not in stored and "deployment_id" not in stored  # both live in the key
    assert "previous_version" in stored and stored["previous_version"] is None


def test_drift_checks_read_newest_first_and_leave_out_what_they_lack(adapter: tuple[Ledger, Any]) -> None:
    ledger, read_stored = adapter
    for hour in range(3):
        ledger.record(
            DriftCheckItem(
                model="churn",
                check_id=f"2026-11-23T1{hour}#x",
                until=f"u{hour}",
                since=None,
                status="stable",
                psi='{"x": 0.5}',
            )
        )

    checks = ledger.drift_checks("churn", 2)
    assert [c.until for c in checks] == ["u2", "u1"]
    assert "since" not in read_stored(checks[0])
    assert read_stored(checks[0])["kind"] == "drift"


def test_retrain_decisions_since_a_time_newest_first(adapter: tuple[Ledger, Any]) -> None:
    ledger, read_stored = adapter
    for hours in (0, 2, 4):
        ledger.record(
            RetrainDecision(
                model="churn",
                alarm="a",
                episode=f"e{hours}",
                decision="skipped",
                reason="r",
                decided_at=NOW + timedelta(hours=hours),
            )
        )

    recent = ledger.retrains("churn", NOW + timedelta(hours=1))
    assert [d.episode for d in recent] == ["e4", "e2"]
    assert read_stored(recent[0])["sk"] == "retrain#2026-11-23T14:15:32.000000Z"
    assert "execution_arn" not in read_stored(recent[0])


def test_an_expiring_item_carries_the_ttl_attribute(adapter: tuple[Ledger, Any]) -> None:
    ledger, read_stored = adapter
    kept = IdleDecision(
        model="churn",
        endpoint="e",
        decision="kept",
        reason="r",
        idle_hours=1,
        decided_at=NOW,
        invocations=2.5,
    )
    ledger.record(kept, expires_at=NOW + timedelta(days=14))

    stored = read_stored(kept)
    assert stored["expiration"] == int((NOW + timedelta(days=14)).timestamp())
    assert stored["invocations"] == 2.5


def test_the_partition_reads_every_kind_in_sort_key_order(adapter: tuple[Ledger, Any]) -> None:
    ledger, _ = adapter
    ledger.record_dataset(DatasetItem.started(_version(), "arn", NOW))
    ledger.record(
        RejectionItem(
            model="churn",
            sha256=SHA,
            bucket="data",
            key="k",
            version_id=None,
            size_bytes=0,
            quarantine_key="q",
            reason_key="r",
            rules=["empty"],
            received_at="t",
            recorded_at="t",
        )
    )
    ledger.start_run(_run())

    assert [type(i).__name__ for i in ledger.partition("churn")] == [
        "DatasetItem",
        "RejectionItem",
        "RunItem",
    ]
