"""RunFailed's reading of a caught error: the cause in words, and which step failed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

from headrace.ledger import MemoryLedger, RunItem
from headrace.naming import Names, training_job_name
from headrace.steps import Execution, StepError
from headrace.training.payloads import FailedState, RunFailedRequest
from headrace.training.ports import Registry, TrainingPorts
from headrace.training.run_failed import failed_step, failure_cause, record_failure
from tests.fakes import FakeEvents, FakeMetrics, FakeStore, fixed_clock

SHA = "a" * 64
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_a_failed_training_jobs_cause_is_sagemakers_failure_reason() -> None:
    described = {
        "TrainingJobName": "churn-aaaaaaaaaaaa-01234567",
        "TrainingJobStatus": "Failed",
        "FailureReason": "AlgorithmError: the target column 'churned' is missing from the train channel",
        "ModelArtifacts": {},
    }
    cause = failure_cause(StepError(error="States.TaskFailed", cause=json.dumps(described)))
    assert cause == (
        "training job churn-aaaaaaaaaaaa-01234567 failed: "
        "AlgorithmError: the target column 'churned' is missing from the train channel"
    )


def test_a_failed_lambda_functions_cause_is_its_error_type_and_message() -> None:
    cause = json.dumps({"errorType": "SplitError", "errorMessage": "too few rows", "stackTrace": []})
    assert failure_cause(StepError(error="SplitError", cause=cause)) == "SplitError: too few rows"


def test_a_plain_cause_is_kept_and_a_missing_one_falls_back_to_the_error_name() -> None:
    assert failure_cause(StepError(error="States.Timeout", cause="took too long")) == "took too long"
    assert failure_cause(StepError(error="States.Timeout")) == "States.Timeout"


def test_a_huge_cause_is_cut() -> None:
    assert len(failure_cause(StepError(error="E", cause="x" * 100_000))) == 8192


def test_the_failed_step_is_read_from_how_far_the_state_got() -> None:
    base: dict[str, Any] = {"model": "churn", "dataset": {"sha256": SHA}}
    assert failed_step(FailedState.model_validate(base)) == "Prepare"
    assert failed_step(FailedState.model_validate(base | {"run": {}})) == "Train"
    assert failed_step(FailedState.model_validate(base | {"run": {}, "training": {}})) == "Evaluate"
    assert (
        failed_step(FailedState.model_validate(base | {"run": {}, "training": {}, "gate": {}})) == "Register"
    )
    assert failed_step(FailedState.model_validate({})) == "Unknown"


def _ports(ledger: MemoryLedger, events: FakeEvents, counter: FakeMetrics) -> TrainingPorts:
    return TrainingPorts(
        store=FakeStore(),
        ledger=ledger,
        registry=cast(Registry, object()),  # RunFailed never reads the registry
        events=events,
        metrics=counter,
        clock=fixed_clock(NOW),
    )


def test_a_failure_before_prepare_returned_is_recorded_under_the_job_prepare_would_have_named() -> None:
    execution = Execution(name="churn-exec", id="arn:aws:states:us-east-1:1:execution:m:churn-exec")
    request = RunFailedRequest(
        state=FailedState.model_validate(
            {"model": "churn", "dataset": {"sha256": SHA}, "error": {"Error": "Boom", "Cause": "bad"}}
        ),
        execution=execution,
    )
    ledger, events, counter = MemoryLedger(), FakeEvents(), FakeMetrics()
    failure = record_failure(request, _ports(ledger, events, counter), names=Names("dev"))
    job = training_job_name("churn", SHA, "churn-exec")
    assert failure.job_name == job
    [run] = ledger.runs("churn")
    assert (run.model, run.job_name) == ("churn", job)
    assert (run.status, run.cause, run.failed_step) == ("failed", "bad", "Prepare")
    assert (run.execution_arn, run.dataset_sha256) == (execution.id, SHA)
    [(detail_type, detail)] = events.published
    assert detail_type == "Training Run Failed"
    assert detail["job_name"] == job and detail["stage"] == "dev"
    assert counter.counted == [("TrainingRunsFailed", "churn")]


def test_a_failure_of_a_malformed_input_is_still_announced() -> None:
    request = RunFailedRequest(
        state=FailedState.model_validate({"error": {"Error": "InvalidRequest", "Cause": "no model"}}),
        execution=Execution(name="x", id="arn:aws:states:us-east-1:1:execution:m:x"),
    )
    ledger, events = MemoryLedger(), FakeEvents()
    failure = record_failure(request, _ports(ledger, events, FakeMetrics()), names=Names("dev"))
    assert failure.model is None and failure.job_name is None
    assert ledger.items == {}
    assert events.published[0][1]["error"] == "InvalidRequest"


def test_a_failure_after_prepare_keeps_what_prepare_recorded() -> None:
    job = training_job_name("churn", SHA, "churn-exec")
    ledger = MemoryLedger()
    ledger.start_run(
        RunItem.started(
            "churn",
            job,
            dataset_sha256=SHA,
            dataset_key=f"churn/datasets/{SHA}/data.csv",
            dataset_version_id=None,
            hyperparameters={"max_depth": "6"},
            execution_arn="arn:aws:states:us-east-1:1:execution:m:first",
            splits_prefix=f"s3://bucket/churn/runs/{job}/splits/",
            rows={"train": 8, "validation": 1, "test": 1},
            at=NOW,
        )
    )
    request = RunFailedRequest(
        state=FailedState.model_validate(
            {
                "model": "churn",
                "dataset": {"sha256": SHA},
                "run": {"job_name": job},
                "error": {"Error": "States.TaskFailed", "Cause": "bad"},
            }
        ),
        execution=Execution(name="churn-exec", id="arn:aws:states:us-east-1:1:execution:m:churn-exec"),
    )
    record_failure(request, _ports(ledger, FakeEvents(), FakeMetrics()), names=Names("dev"))

    [run] = ledger.runs("churn")
    assert (run.status, run.failed_step) == ("failed", "Train")
    assert run.execution_arn == "arn:aws:states:us-east-1:1:execution:m:first"
    assert run.rows == {"train": 8, "validation": 1, "test": 1}
    assert run.started_at == "2026-11-23T12:00:00.000000Z"
