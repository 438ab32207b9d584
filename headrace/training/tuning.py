"""Hyperparameter tuning: a tuned model's HyperParameterTuningJobConfig, and TuningResult, which turns a
finished tuning job into what the rest of the run reads.

The state machine runs `createHyperParameterTuningJob.sync` (stacks/training.py) with the config built
here; TuningResult then describes the tuning job, lists every training job it started, and describes the
best one, so that Evaluate and Register find at `$.training` the same DescribeTrainingJob fields a single
run leaves there, plus `tuning`: every trial and why the best was chosen. The run's ledger item records
`tuning` as soon as it is known, so a rejected tuned run still shows its trials.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ConfigDict

from headrace.config import ModelConfig, TuningConfig
from headrace.ledger import RunItem
from headrace.naming import is_tuning_job_of
from headrace.steps import NonEmpty, Payload
from headrace.training.payloads import RunInfo
from headrace.training.ports import TrainingPorts, TuningJobs
from headrace.training_job import hyperparameter_text, static_hyperparameters_for
from headrace.tuning_limits import SCALING_TYPES

log = logging.getLogger("headrace.training")

# The objective is the gate's metric on the validation channel, as the trainer logs it (metric_definitions).
OBJECTIVE_SPLIT = "validation"
# What DescribeTrainingJob returns that Evaluate, Register and RunFailed read at `$.training`.
TRAINING_FIELDS = (
    "TrainingJobName",
    "TrainingJobArn",
    "TrainingJobStatus",
    "ModelArtifacts",
    "HyperParameters",
    "FinalMetricDataList",
    "TrainingStartTime",
    "TrainingEndTime",
    "BillableTimeInSeconds",
)
TUNED_METRIC = "TuningJobsFinished"


def objective_metric(model: ModelConfig) -> str:
    """The tuning objective's MetricName: one of the job definition's MetricDefinitions."""
    return f"{OBJECTIVE_SPLIT}:{model.gate.metric}"


def parameter_ranges(model: ModelConfig) -> dict[str, list[dict[str, Any]]]:
    """ParameterRanges of `model`'s tuning config: every value a string, as the API takes them
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ParameterRanges.html); a kind with no
    range is left out."""
    tuning = _tuning(model)
    ranges: dict[str, list[dict[str, Any]]] = {}
    continuous = [
        {
            "Name": name,
            "MinValue": hyperparameter_text(spec.min),
            "MaxValue": hyperparameter_text(spec.max),
            "ScalingType": SCALING_TYPES[spec.scaling],
        }
        for name, spec in tuning.continuous()
    ]
    integer = [
        {
            "Name": name,
            "MinValue": hyperparameter_text(spec.min),
            "MaxValue": hyperparameter_text(spec.max),
            "ScalingType": SCALING_TYPES[spec.scaling],
        }
        for name, spec in tuning.integer()
    ]
    categorical = [
        {"Name": name, "Values": [hyperparameter_text(v) for v in spec.values or []]}
        for name, spec in tuning.categorical()
    ]
    for key, items in (
        ("ContinuousParameterRanges", continuous),
        ("IntegerParameterRanges", integer),
        ("CategoricalParameterRanges", categorical),
    ):
        if items:
            ranges[key] = items
    return ranges


def tuning_job_config(model: ModelConfig) -> dict[str, Any]:
    """CreateHyperParameterTuningJob's HyperParameterTuningJobConfig for a tuned model
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_HyperParameterTuningJobConfig.html)."""
    tuning = _tuning(model)
    return {
        "Strategy": tuning.strategy,
        "HyperParameterTuningJobObjective": {
            "Type": tuning.objective_type(model.gate.metric),
            "MetricName": objective_metric(model),
        },
        # Grid's max_jobs is the number of combinations of its values, which is what SageMaker asks for there
        # (headrace.config.TuningConfig).
        "ResourceLimits": {
            "MaxNumberOfTrainingJobs": tuning.max_jobs,
            "MaxParallelTrainingJobs": tuning.max_parallel_jobs,
        },
        "ParameterRanges": parameter_ranges(model),
        "TrainingJobEarlyStoppingType": "Auto" if tuning.early_stopping else "Off",
    }


def _tuning(model: ModelConfig) -> TuningConfig:
    tuning = model.trainer.tuning
    if tuning is None:
        raise ValueError(f"model '{model.name}' has no trainer.tuning")
    return tuning


# --- the tuning job as the API answers it ------------------------------------------------------------------


class NoCompletedTrial(RuntimeError):
    """The tuning job ended without one training job that completed with an objective value."""


class TuningResultRequest(Payload):
    """`{"model.$": "$.model", "run.$": "$.run", "tuning.$": "$.tuning"}`: `tuning` is
    DescribeHyperParameterTuningJob's response, as createHyperParameterTuningJob.sync leaves it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    model: NonEmpty
    run: RunInfo
    tuning: dict[str, Any]


def parent_tuning_job(model: ModelConfig, jobs: TuningJobs, own: str) -> str | None:
    """The newest Completed tuning job of `model` (not `own`): the parent a new one warm-starts from."""
    prefix = own.rsplit("-", 2)[0]
    for name in jobs.newest_completed(prefix):
        if name != own and is_tuning_job_of(model.name, name):
            return name
    return None


def _objective(summary: Mapping[str, Any]) -> float | None:
    final = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    value = final.get("Value")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _trial(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": summary["TrainingJobName"],
        "status": summary.get("TrainingJobStatus"),
        "objective_status": summary.get("ObjectiveStatus"),
        "hyperparameters": dict(summary.get("TunedHyperParameters") or {}),
        "objective": _objective(summary),
        "created_at": _iso(summary.get("CreationTime")),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (str(value) if value else None)


def _why(objective: Mapping[str, Any], best: float, trials: list[dict[str, Any]]) -> str:
    completed = sum(1 for t in trials if t["status"] == "Completed")
    stopped = sum(1 for t in trials if t["status"] == "Stopped")
    failed = sum(1 for t in trials if t["status"] == "Failed")
    word = "highest" if objective.get("Type") == "Maximize" else "lowest"
    return (
        f"{word} {objective.get('MetricName')} ({best:.6g}) of {completed} completed trials "
        f"({stopped} stopped early, {failed} failed)"
    )


def summarize(description: Mapping[str, Any], summaries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`tuning`: the job, every trial in the order they started, and the best one with the reason.

    Raises `NoCompletedTrial` when no trial completed with an objective value."""
    config = description.get("HyperParameterTuningJobConfig") or {}
    objective = config.get("HyperParameterTuningJobObjective") or {}
    trials = sorted((_trial(s) for s in summaries), key=lambda t: (t["created_at"] or "", t["name"]))
    best = description.get("BestTrainingJob") or {}
    best_objective = _objective(best)
    name = description.get("HyperParameterTuningJobName", "the tuning job")
    if not best.get("TrainingJobName") or best_objective is None:
        counts = ", ".join(
            f"{n} {status.lower()}"
            for status in ("Completed", "Stopped", "Failed")
            if (n := sum(1 for t in trials if t["status"] == status))
        )
        reason = description.get("FailureReason")
        raise NoCompletedTrial(
            f"tuning job {name} ({description.get('HyperParameterTuningJobStatus')}) has no completed trial "
            f"with an objective value ({len(trials)} trials: {counts or 'none started'})"
            + (f": {reason}" if reason else "")
        )
    parents = (description.get("WarmStartConfig") or {}).get("ParentHyperParameterTuningJobs") or []
    return {
        "job_name": name,
        "job_arn": description.get("HyperParameterTuningJobArn"),
        "status": description.get("HyperParameterTuningJobStatus"),
        "strategy": config.get("Strategy"),
        "objective": {"name": objective.get("MetricName"), "type": objective.get("Type")},
        "warm_start_parents": [p["HyperParameterTuningJobName"] for p in parents],
        "trials": trials,
        "best": {
            "name": best["TrainingJobName"],
            "objective": best_objective,
            "hyperparameters": dict(best.get("TunedHyperParameters") or {}),
            "why": _why(objective, best_objective, trials),
        },
    }


def trial_hyperparameters(model: ModelConfig, tuned: Mapping[str, str]) -> dict[str, str]:
    """One trial's hyperparameters as a single run of it would have had them: the static ones and its tuned
    values, keys sorted like hyperparameters_for's."""
    merged = {**static_hyperparameters_for(model), **tuned}
    return {key: merged[key] for key in sorted(merged)}


def tuning_result(request: TuningResultRequest, model: ModelConfig, ports: TrainingPorts) -> dict[str, Any]:
    """`$.training`: the best trial's DescribeTrainingJob fields and `tuning`; records `tuning` and the best
    trial's hyperparameters on the run's ledger item."""
    jobs = ports.tuning_jobs()
    name = str(request.tuning.get("HyperParameterTuningJobName") or request.run.tuning_job_name)
    description = jobs.describe(name)
    tuning = summarize(description, jobs.training_jobs(name))
    best = jobs.describe_training_job(tuning["best"]["name"])
    training = {key: best[key] for key in TRAINING_FIELDS if key in best}
    ports.ledger.update(
        RunItem.tuned(
            model.name,
            request.run.job_name,
            tuning=json.dumps(tuning, sort_keys=True),
            hyperparameters=trial_hyperparameters(model, tuning["best"]["hyperparameters"]),
            at=ports.clock(),
        )
    )
    ports.metrics.count(TUNED_METRIC, model.name)
    log.info(
        "tuning job %s: best trial %s (%s)",
        name,
        tuning["best"]["name"],
        tuning["best"]["why"],
        extra={"job_name": request.run.job_name, "trials": len(tuning["trials"])},
    )
    return {**_json_safe(training), "tuning": tuning}


def _json_safe(value: Any) -> Any:
    """boto3's datetimes as ISO text, so the Lambda's response is JSON."""
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
