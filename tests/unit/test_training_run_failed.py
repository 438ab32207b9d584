"""RunFailed's reading of a caught error: the cause in words, and which step failed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from headrace.naming import Names, training_job_name
from headrace.training.payloads import Execution, FailedState, RunFailedRequest, StepError
from headrace.training.ports import StartedRun
from headrace.training.run_failed import failed_step, failure_cause, record_failure

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


class Ledger:
    def __init__(self) -> None:
        self.updates: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []

    def start_run(self, item: Mapping[str, Any]) -> StartedRun:
        raise AssertionError("RunFailed never starts a run")

    def update_run(
        self, model: str, job: str, fields: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
    ) -> None:
        self.updates.append((model, job, dict(fields), dict(defaults or {})))


class Events:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        self.published.append((detail_type, dict(detail)))


class Counter:
    def __init__(self) -> None:
        self.counted: list[tuple[str, str]] = []

    def count(self, name: str, model: str) -> None:
        self.counted.append((name, model))


def test_a_failure_before_prepare_returned_is_recorded_under_the_job_prepare_would_have_named() -> None:
    execution = Execution(name="churn-exec", id="arn:aws:states:us-east-1:1:execution:m:churn-exec")
    request = RunFailedRequest(
        state=FailedState.model_validate(
            {"model": "churn", "dataset": {"sha256": SHA}, "error": {"Error": "Boom", "Cause": "bad"}}
        ),
        execution=execution,
    )
    ledger, events, counter = Ledger(), Events(), Counter()
    failure = record_failure(
        request, names=Names("dev"), ledger=ledger, events=events, metrics=counter, clock=lambda: NOW
    )
    job = training_job_name("churn", SHA, "churn-exec")
    assert failure.job_name == job
    [(model, recorded_job, fields, defaults)] = ledger.updates
    assert (model, recorded_job) == ("churn", job)
    assert fields["status"] == "failed" and fields["cause"] == "bad" and fields["failed_step"] == "Prepare"
    assert defaults["execution_arn"] == execution.id and defaults["dataset_sha256"] == SHA
    [(detail_type, detail)] = events.published
    assert detail_type == "Training Run Failed"
    assert detail["job_name"] == job and detail["stage"] == "dev"
    assert counter.counted == [("TrainingRunsFailed", "churn")]


def test_a_failure_of_a_malformed_input_is_still_announced() -> None:
    request = RunFailedRequest(
        state=FailedState.model_validate({"error": {"Error": "InvalidRequest", "Cause": "no model"}}),
        execution=Execution(name="x", id="arn:aws:states:us-east-1:1:execution:m:x"),
    )
    ledger, events = Ledger(), Events()
    failure = record_failure(
        request, names=Names("dev"), ledger=ledger, events=events, metrics=Counter(), clock=lambda: NOW
    )
    assert failure.model is None and failure.job_name is None
    assert ledger.updates == []
    assert events.published[0][1]["error"] == "InvalidRequest"
