"""TuningResult: a finished tuning job read as AWS answers it becomes `$.training` (the best trial's
description and every trial), the run's ledger item records it, and the lineage carries it."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from headrace.config import ModelConfig, load_models
from headrace.ledger import MemoryLedger, RunItem
from headrace.naming import (
    TRAINING_JOB_NAME_PATTERN,
    TUNING_JOB_NAME_MAX,
    is_tuning_job_of,
    tuning_job_name,
    tuning_job_name_glob,
)
from headrace.steps import StepError
from headrace.training.lineage import customer_metadata, lineage_document
from headrace.training.payloads import FailedState
from headrace.training.ports import Registry, TrainingPorts
from headrace.training.run_failed import failed_step, failure_cause
from headrace.training.tuning import (
    NoCompletedTrial,
    TuningResultRequest,
    parent_tuning_job,
    trial_hyperparameters,
    tuning_result,
)
from headrace.training_job import static_hyperparameters_for
from tests.fakes import FakeEvents, FakeMetrics, FakeStore, fixed_clock
from tests.unit.test_training_lineage import register_request

SHA = hashlib.sha256(b"data").hexdigest()
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
TUNING_JOB = tuning_job_name("churn", SHA, "churn-exec")
OBJECTIVE = "validation:auc"


def _tuned_churn() -> ModelConfig:
    churn = next(m for m in load_models() if m.name == "churn")
    document = churn.model_dump(mode="json", exclude_unset=True)
    trainer = document.get("trainer", {})
    fixed = {k: v for k, v in trainer.get("hyperparameters", {}).items() if k not in ("eta", "max_depth")}
    document["trainer"] = {
        **trainer,
        "hyperparameters": fixed,
        "tuning": {
            "max_jobs": 8,
            "max_parallel_jobs": 2,
            "ranges": {"eta": {"min": 0.01, "max": 0.5}, "max_depth": {"min": 2, "max": 8}},
        },
    }
    return ModelConfig.model_validate(document)


MODEL = _tuned_churn()


def _summary(number: int, status: str, objective: float | None) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "TrainingJobName": f"{TUNING_JOB}-{number:03d}-{number:08x}",
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:1:training-job/{TUNING_JOB}-{number:03d}",
        "CreationTime": NOW + timedelta(minutes=number),
        "TrainingJobStatus": status,
        "TunedHyperParameters": {"eta": f"0.{number}", "max_depth": str(2 + number % 5)},
        "ObjectiveStatus": "Succeeded" if objective is not None else "Failed",
    }
    if objective is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {"MetricName": OBJECTIVE, "Value": objective}
    return summary


class FakeTuningJobs:
    """Answers as SageMaker does; `training_jobs` pages through the summaries two at a time."""

    def __init__(
        self, summaries: list[dict[str, Any]], status: str = "Completed", jobs: tuple[str, ...] = ()
    ) -> None:
        self.summaries = summaries
        self.status = status
        self.jobs = list(jobs)
        self.described: list[str] = []
        self.pages = 0

    def describe(self, name: str) -> Mapping[str, Any]:
        scored = [s for s in self.summaries if s.get("FinalHyperParameterTuningJobObjectiveMetric")]
        best = max(
            scored, key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], default=None
        )
        return {
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobArn": f"arn:aws:sagemaker:us-east-1:1:hyper-parameter-tuning-job/{name}",
            "HyperParameterTuningJobStatus": self.status,
            "HyperParameterTuningJobConfig": {
                "Strategy": "Bayesian",
                "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": OBJECTIVE},
            },
            "WarmStartConfig": {
                "ParentHyperParameterTuningJobs": [
                    {"HyperParameterTuningJobName": "churn-11111111-22222222"}
                ],
                "WarmStartType": "TransferLearning",
            },
            **({"BestTrainingJob": best} if best else {}),
        }

    def training_jobs(self, name: str) -> Iterator[Mapping[str, Any]]:
        for start in range(0, len(self.summaries), 2):
            self.pages += 1
            yield from self.summaries[start : start + 2]

    def describe_training_job(self, name: str) -> Mapping[str, Any]:
        self.described.append(name)
        summary = next(s for s in self.summaries if s["TrainingJobName"] == name)
        return {
            "TrainingJobName": name,
            "TrainingJobArn": summary["TrainingJobArn"],
            "TrainingJobStatus": "Completed",
            "ModelArtifacts": {
                "S3ModelArtifacts": f"s3://data/churn/runs/x/output/{name}/output/model.tar.gz"
            },
            "HyperParameters": {**summary["TunedHyperParameters"], "_tuning_objective_metric": OBJECTIVE},
            "FinalMetricDataList": [{"MetricName": OBJECTIVE, "Value": 0.9, "Timestamp": NOW}],
            "TrainingStartTime": NOW,
            "AlgorithmSpecification": {"TrainingImage": "not handed on"},
        }

    def newest_completed(self, name_contains: str) -> list[str]:
        return [j for j in self.jobs if name_contains in j]


def _ports(ledger: MemoryLedger, jobs: FakeTuningJobs, metrics: FakeMetrics | None = None) -> TrainingPorts:
    return TrainingPorts(
        store=FakeStore(),
        ledger=ledger,
        registry=cast(Registry, object()),  # TuningResult never reads the registry
        events=FakeEvents(),
        metrics=metrics or FakeMetrics(),
        clock=fixed_clock(NOW),
        tuning=jobs,
    )


def _request(ledger: MemoryLedger) -> TuningResultRequest:
    run = register_request({"auc": 0.9}).run.model_copy(update={"tuning_job_name": TUNING_JOB})
    ledger.start_run(
        RunItem.started(
            "churn",
            run.job_name,
            dataset_sha256=SHA,
            dataset_key="k",
            dataset_version_id=None,
            hyperparameters=static_hyperparameters_for(MODEL),
            execution_arn=run.execution_arn,
            splits_prefix="s3://data/x/",
            rows={"train": 1, "validation": 1, "test": 1},
            at=NOW,
        )
    )
    return TuningResultRequest(
        model="churn", run=run, tuning={"HyperParameterTuningJobName": TUNING_JOB, "ignored": True}
    )


SUMMARIES = [
    _summary(1, "Completed", 0.81),
    _summary(2, "Completed", 0.86),
    _summary(3, "Stopped", 0.70),
    _summary(4, "Failed", None),
    _summary(5, "Completed", 0.84),
    _summary(6, "Completed", 0.79),
]


def test_the_best_trial_is_handed_on_as_a_single_training_jobs_description_with_every_trial() -> None:
    ledger = MemoryLedger()
    jobs = FakeTuningJobs(SUMMARIES)
    training = tuning_result(_request(ledger), MODEL, _ports(ledger, jobs))
    best = SUMMARIES[1]["TrainingJobName"]
    assert jobs.described == [best]
    assert training["TrainingJobName"] == best
    assert training["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"{best}/output/model.tar.gz")
    assert training["TrainingStartTime"] == NOW.isoformat()  # JSON, as a Lambda must return
    assert "AlgorithmSpecification" not in training
    json.dumps(training)
    tuning = training["tuning"]
    assert tuning["job_name"] == TUNING_JOB
    assert tuning["objective"] == {"name": OBJECTIVE, "type": "Maximize"}
    assert tuning["warm_start_parents"] == ["churn-11111111-22222222"]
    assert [t["name"] for t in tuning["trials"]] == [s["TrainingJobName"] for s in SUMMARIES]
    assert [t["objective"] for t in tuning["trials"]] == [0.81, 0.86, 0.70, None, 0.84, 0.79]
    assert tuning["trials"][2]["status"] == "Stopped"
    assert tuning["best"]["name"] == best
    assert tuning["best"]["objective"] == max(t["objective"] or 0 for t in tuning["trials"])
    assert tuning["best"]["why"] == (
        "highest validation:auc (0.86) of 4 completed trials (1 stopped early, 1 failed)"
    )


def test_every_page_of_trials_is_read() -> None:
    ledger = MemoryLedger()
    many = [_summary(n, "Completed", 0.5 + n / 100) for n in range(1, 24)]
    jobs = FakeTuningJobs(many)
    training = tuning_result(_request(ledger), MODEL, _ports(ledger, jobs))
    assert jobs.pages == 12
    assert len(training["tuning"]["trials"]) == 23
    assert training["tuning"]["best"]["name"] == many[-1]["TrainingJobName"]


def test_the_run_record_gets_the_tuning_and_the_best_trials_hyperparameters() -> None:
    ledger = MemoryLedger()
    metrics = FakeMetrics()
    request = _request(ledger)
    tuning_result(request, MODEL, _ports(ledger, FakeTuningJobs(SUMMARIES), metrics))
    [run] = ledger.runs("churn")
    recorded = json.loads(run.tuning or "{}")
    assert recorded["best"]["name"] == SUMMARIES[1]["TrainingJobName"]
    hyperparameters = json.loads(run.hyperparameters or "{}")
    assert hyperparameters == {**static_hyperparameters_for(MODEL), "eta": "0.2", "max_depth": "4"}
    assert "_tuning_objective_metric" not in hyperparameters
    assert run.status == "training"  # Evaluate decides the outcome
    assert metrics.counted == [("TuningJobsFinished", "churn")]


def test_a_tuning_job_without_a_completed_trial_fails_the_run_with_the_counts() -> None:
    ledger = MemoryLedger()
    jobs = FakeTuningJobs([_summary(1, "Failed", None), _summary(2, "Stopped", None)], status="Failed")
    with pytest.raises(NoCompletedTrial, match=r"no completed trial .*2 trials: 1 stopped, 1 failed"):
        tuning_result(_request(ledger), MODEL, _ports(ledger, jobs))
    [run] = ledger.runs("churn")
    assert run.tuning is None


def test_the_parent_is_the_newest_completed_tuning_job_of_this_model_only() -> None:
    own = TUNING_JOB
    older, newer = "churn-aaaaaaaa-00000001", "churn-bbbbbbbb-00000002"
    other_model = "churn-eu-cccccccc-00000003"  # NameContains "churn" matches it too
    jobs = FakeTuningJobs([], jobs=(own, other_model, newer, older))
    assert parent_tuning_job(MODEL, jobs, own) == newer
    assert parent_tuning_job(MODEL, FakeTuningJobs([], jobs=(own, other_model)), own) is None


def test_tuning_job_names_fit_sagemakers_limit_and_are_deterministic() -> None:
    long_model = "a-very-long-model-name-for-tuning-x"
    name = tuning_job_name(long_model, SHA, "exec-1")
    assert len(name) <= TUNING_JOB_NAME_MAX
    assert re.fullmatch(TRAINING_JOB_NAME_PATTERN, name)
    assert name == name.lower() == tuning_job_name(long_model, SHA, "exec-1")
    assert name != tuning_job_name(long_model, SHA, "exec-2")
    assert is_tuning_job_of(long_model, name)
    assert not is_tuning_job_of("churn", name)
    glob = tuning_job_name_glob(long_model)
    assert re.fullmatch(glob.replace("?", "."), name)
    # A trial SageMaker names `<tuning job>-<NNN>-<8 hex>` fits CreateTrainingJob's 63 characters.
    assert len(f"{name}-001-0123abcd") <= 63


def test_a_failed_tuning_jobs_cause_names_it_and_the_step_is_tune() -> None:
    described = {
        "HyperParameterTuningJobName": TUNING_JOB,
        "HyperParameterTuningJobStatus": "Failed",
        "FailureReason": "All training jobs failed",
    }
    cause = failure_cause(StepError(error="States.TaskFailed", cause=json.dumps(described)))
    assert cause == f"tuning job {TUNING_JOB} failed: All training jobs failed"
    state = {"model": "churn", "dataset": {"sha256": SHA}, "run": {"tuning_job_name": TUNING_JOB}}
    assert failed_step(FailedState.model_validate(state)) == "Tune"


def test_the_lineage_of_a_tuned_version_names_the_best_trial_and_lists_every_trial() -> None:
    ledger = MemoryLedger()
    tuning = tuning_result(_request(ledger), MODEL, _ports(ledger, FakeTuningJobs(SUMMARIES)))["tuning"]
    request = register_request({"auc": 0.86}).model_copy(update={"tuning": tuning})
    hyperparameters = trial_hyperparameters(MODEL, tuning["best"]["hyperparameters"])
    document = lineage_document(request, MODEL, hyperparameters, "s3://data/lineage.json")
    assert document["training"]["job_name"] == tuning["best"]["name"]
    assert document["training"]["hyperparameters"]["eta"] == "0.2"
    assert len(document["tuning"]["trials"]) == len(SUMMARIES)
    metadata = customer_metadata(request, hyperparameters, "s3://data/lineage.json")
    assert metadata["tuning_job"] == TUNING_JOB
    assert metadata["tuning_trials"] == "6"
    untuned = lineage_document(register_request({"auc": 0.86}), MODEL, hyperparameters, "s3://x")
    assert "tuning" not in untuned
