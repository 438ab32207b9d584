"""A tuning job's trials as SageMaker describes them: the CreateTrainingJob request each one is started with,
its HyperParameterTrainingJobSummary, and the job's counters and best training job.

Shapes from botocore's SageMaker model (DescribeHyperParameterTuningJob,
ListTrainingJobsForHyperParameterTuningJob, https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_HyperParameterTrainingJobSummary.html).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

# The HyperParameterTrainingJobDefinition members a trial's CreateTrainingJob takes as they are.
_COPIED: Final = (
    "RoleArn",
    "InputDataConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "VpcConfig",
    "StoppingCondition",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "CheckpointConfig",
    "RetryStrategy",
    "Environment",
)
_ALGORITHM: Final = ("TrainingImage", "AlgorithmName", "TrainingInputMode", "MetricDefinitions")
# "to pass your objective metric to the tuning job for use during training, SageMaker AI adds
# _tuning_objective_metric automatically" (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-define-ranges.html).
OBJECTIVE_HYPERPARAMETER: Final = "_tuning_objective_metric"
ENDED: Final = frozenset({"Completed", "Failed", "Stopped"})


def trial_request(
    definition: dict[str, Any], name: str, tuned: dict[str, str], objective_metric: str
) -> dict[str, Any]:
    """The CreateTrainingJob request of one trial: the definition, its static hyperparameters and the tuned
    ones (a tuned name wins; the request checks refuse a name both static and tuned)."""
    algorithm = definition.get("AlgorithmSpecification") or {}
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "HyperParameters": {
            **(definition.get("StaticHyperParameters") or {}),
            **tuned,
            OBJECTIVE_HYPERPARAMETER: objective_metric,
        },
        "AlgorithmSpecification": {k: algorithm[k] for k in _ALGORITHM if k in algorithm},
    }
    request |= {key: definition[key] for key in _COPIED if definition.get(key) is not None}
    if "ResourceConfig" not in request:
        # HyperParameterTuningResourceConfig: the first instance configuration is the one a trial starts on.
        tuning_resources = definition.get("HyperParameterTuningResourceConfig") or {}
        configs = tuning_resources.get("InstanceConfigs") or [{}]
        shared = ("InstanceType", "InstanceCount", "VolumeSizeInGB")
        request["ResourceConfig"] = {k: v for k, v in configs[0].items() if v is not None} | {
            k: tuning_resources[k] for k in shared if k in tuning_resources
        }
    return request


@dataclass
class TrialRun:
    """What the tuning job knows of one trial beyond its training job's record."""

    name: str
    tuned: dict[str, str]
    steps: int = 0
    # The search's pruner said stop (early stopping or a Hyperband rung): stopped by the tuning job.
    prune: bool = False
    early_stopped: bool = False
    creation_failure: str | None = None
    # The search was told how it ended.
    told: bool = False


def objective_of(training_job: Any, metric: str) -> float | None:
    """The trial's final objective: its FinalMetricDataList value for the objective metric."""
    for entry in getattr(training_job, "final_metric_data_list", None) or []:
        if entry.get("MetricName") == metric:
            value = float(entry["Value"])
            return None if math.isnan(value) else value
    return None


def objective_status(status: str, objective: float | None) -> str:
    if status not in ENDED and status != "Stopping":
        return "Pending"
    return "Succeeded" if objective is not None else "Failed"


def summary(
    trial: TrialRun, training_job: Any | None, tuning_name: str, objective: dict[str, str]
) -> dict[str, Any]:
    """The trial's HyperParameterTrainingJobSummary."""
    if training_job is None:  # CreateTrainingJob refused it: SageMaker lists it Failed
        return {
            "TrainingJobName": trial.name,
            "TrainingJobArn": "",
            "TuningJobName": tuning_name,
            "TrainingJobStatus": "Failed",
            "TunedHyperParameters": trial.tuned,
            "FailureReason": trial.creation_failure,
            "ObjectiveStatus": "Failed",
        }
    status = str(training_job.training_job_status)
    value = objective_of(training_job, objective["MetricName"])
    found: dict[str, Any] = {
        "TrainingJobName": trial.name,
        "TrainingJobArn": training_job.arn,
        "TuningJobName": tuning_name,
        "CreationTime": training_job.creation_time,
        "TrainingStartTime": training_job.training_start_time,
        "TrainingEndTime": training_job.training_end_time if status in ENDED else None,
        "TrainingJobStatus": status,
        "TunedHyperParameters": trial.tuned,
        "FailureReason": getattr(training_job, "failure_reason", None) if status == "Failed" else None,
        "ObjectiveStatus": objective_status(status, value),
    }
    if value is not None and status in ENDED:
        found["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": objective["Type"],
            "MetricName": objective["MetricName"],
            "Value": value,
        }
    return {k: v for k, v in found.items() if v is not None}


def counters(summaries: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """TrainingJobStatusCounters and ObjectiveStatusCounters. A failed trial is a NonRetryableError: the local
    plane does not retry trials."""
    jobs = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    objectives = {"Succeeded": 0, "Pending": 0, "Failed": 0}
    for found in summaries:
        status = found["TrainingJobStatus"]
        key = {"Failed": "NonRetryableError", "Stopping": "InProgress"}.get(status, status)
        jobs[key] = jobs.get(key, 0) + 1
        objectives[found["ObjectiveStatus"]] += 1
    return jobs, objectives


def best(summaries: list[dict[str, Any]], maximize: bool) -> dict[str, Any] | None:
    """BestTrainingJob: the completed trial with the best final objective (the first of equals)."""
    scored = [
        s
        for s in summaries
        if s["TrainingJobStatus"] == "Completed" and "FinalHyperParameterTuningJobObjectiveMetric" in s
    ]
    if not scored:
        return None

    def value(s: dict[str, Any]) -> float:
        found = float(s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
        return -found if maximize else found

    return min(scored, key=value)
