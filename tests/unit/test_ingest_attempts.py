"""The duplicate rule: which attempt a dataset's content may start, given its latest run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from headrace.ingest.attempts import (
    Attempt,
    DatasetNotFound,
    RunInProgress,
    attempt_execution_name,
    last_job_name,
    next_attempt,
    retrain_dataset,
    start_attempt,
)
from headrace.ingest.ports import StartedRun
from headrace.ledger import DatasetItem, FileFormat, MemoryLedger, RunItem, RunStatus
from headrace.naming import execution_name, training_job_name

SHA = "ab" * 32
NOW = datetime(2026, 12, 1, tzinfo=UTC)
ARN = "arn:aws:states:us-east-1:123456789012:execution:headrace-dev-churn-training:"


def _dataset(attempt: int = 1) -> DatasetItem:
    name = attempt_execution_name("churn", SHA, attempt)
    return DatasetItem(
        model="churn",
        sha256=SHA,
        bucket="data",
        key="churn/incoming/a.csv",
        version_id=None,
        size_bytes=10,
        format=FileFormat.CSV,
        rows=1,
        columns=["a"],
        schema_fingerprint="f",
        statistics="{}",
        received_at="2026-12-01T00:00:00.000000Z",
        dataset_key=f"churn/datasets/{SHA}/data.csv",
        execution_arn=ARN + name,
        attempt=attempt,
        status="started",
        recorded_at="2026-12-01T00:00:00.000000Z",
    )


def _run(status: RunStatus) -> RunItem:
    return RunItem(model="churn", job_name="job", status=status.value)


def test_new_content_starts_the_first_attempt() -> None:
    assert next_attempt(None, None) == 1


def test_a_run_not_yet_recorded_is_in_progress() -> None:
    assert next_attempt(_dataset(), None) is None
    assert next_attempt(_dataset(), None, after_finished=True) is None


@pytest.mark.parametrize("status", [RunStatus.TRAINING, RunStatus.EVALUATED])
def test_a_run_in_progress_allows_no_other(status: RunStatus) -> None:
    assert next_attempt(_dataset(), _run(status)) is None
    assert next_attempt(_dataset(), _run(status), after_finished=True) is None


def test_a_failed_run_allows_the_next_attempt() -> None:
    assert next_attempt(_dataset(attempt=2), _run(RunStatus.FAILED)) == 3


@pytest.mark.parametrize("status", [RunStatus.REGISTERED, RunStatus.REJECTED])
def test_a_run_that_ended_well_makes_a_reupload_a_duplicate_but_allows_an_explicit_retrain(
    status: RunStatus,
) -> None:
    assert next_attempt(_dataset(), _run(status)) is None
    assert next_attempt(_dataset(), _run(status), after_finished=True) == 2


def test_the_first_attempt_keeps_the_execution_name_runs_always_had() -> None:
    assert attempt_execution_name("churn", SHA, 1) == execution_name("churn", SHA)
    assert attempt_execution_name("churn", SHA, 2) != execution_name("churn", SHA)


def test_the_last_job_is_named_from_the_latest_attempt_execution() -> None:
    name = attempt_execution_name("churn", SHA, 2)
    assert last_job_name(_dataset(attempt=2)) == training_job_name("churn", SHA, name)


class _Runs:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, model: str, name: str, payload: str) -> StartedRun:
        created = name not in self.started
        if created:
            self.started.append(name)
        return StartedRun(ARN + name, created)


def _recorded(ledger: MemoryLedger, status: RunStatus | None) -> DatasetItem:
    item = _dataset()
    ledger.record(item)
    job = last_job_name(item)
    if status is not None and job:
        ledger.update(RunItem(model="churn", job_name=job, status=status.value))
    return item


def test_retrain_starts_the_next_attempt_of_a_finished_run() -> None:
    ledger, runs = MemoryLedger(), _Runs()
    _recorded(ledger, RunStatus.REGISTERED)

    started = retrain_dataset("churn", SHA, ledger, runs, lambda: NOW)

    assert started.created
    assert runs.started == [attempt_execution_name("churn", SHA, 2)]
    stored = ledger.dataset("churn", SHA)
    assert stored is not None and (stored.attempt, stored.execution_arn) == (2, started.execution_arn)


def test_retrain_twice_at_once_starts_one_run() -> None:
    ledger, runs = MemoryLedger(), _Runs()
    seen = _recorded(ledger, RunStatus.FAILED)
    twin = Attempt(2, seen)

    first = start_attempt(seen.version(), twin, ledger, runs, lambda: NOW)
    second = start_attempt(seen.version(), twin, ledger, runs, lambda: NOW)

    assert (first.created, second.created) == (True, False)
    assert first.execution_arn == second.execution_arn
    assert len(runs.started) == 1


def test_retrain_refuses_while_the_run_goes_on() -> None:
    ledger = MemoryLedger()
    _recorded(ledger, RunStatus.TRAINING)

    with pytest.raises(RunInProgress, match="still training"):
        retrain_dataset("churn", SHA, ledger, _Runs(), lambda: NOW)


def test_retrain_of_an_unknown_dataset_says_so() -> None:
    with pytest.raises(DatasetNotFound):
        retrain_dataset("churn", SHA, MemoryLedger(), _Runs(), lambda: NOW)
