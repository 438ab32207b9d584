"""Hyperparameter tuning jobs on a small local plane: moto's server, the training compute running a stand-in
image as subprocesses, and the tuning compute starting its trials through the plane's own API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from headrace.local.aws import Clients
from headrace.local.sagemaker.containers import ImageRegistry
from headrace.local.sagemaker.training import TrainingCompute
from headrace.local.sagemaker.tuning import ApiTrialJobs, TuningCompute
from headrace.local.seams import installed
from headrace.local.seams.sagemaker_tuning import MotoTuningRecords
from headrace.local.seams.targets import MotoTargets
from headrace.local.targets import EventDelivery, TargetDispatcher
from headrace.waiting import wait_for
from tests.support.moto import lambda_plane

ROLE = "arn:aws:iam::123456789012:role/local"
# A trial's objective is 1 - (eta - 0.3)^2, reached over `epochs` epochs; the last line is the kept one's.
TRAIN_SCRIPT = """
import json, os, pathlib, time
root = pathlib.Path(os.environ["HEADRACE_OPT_ML"])
hp = json.loads((root / "input/config/hyperparameters.json").read_text())
eta, epochs = float(hp["eta"]), int(hp.get("epochs", "3"))
final = 1 - (eta - 0.3) ** 2
for r in range(epochs):
    print(f"[{r}] validation-auc={final * (r + 1) / epochs:.6f};", flush=True)
    time.sleep(float(hp.get("sleep", "0.05")))
print(f"[best {epochs - 1}] validation-auc={final:.6f};", flush=True)
(root / "model/model.txt").write_text(f"eta {eta}")
"""


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    with lambda_plane(tmp_path_factory.mktemp("code"), "local") as moto:
        delivery = EventDelivery(TargetDispatcher(MotoTargets()))
        clients = moto.clients
        images = ImageRegistry()
        image_dir = tmp_path_factory.mktemp("image")
        (image_dir / "train").write_text(TRAIN_SCRIPT)
        images.add("fake-trainer", image_dir)
        records = MotoTuningRecords(clients.account, clients.region)
        training = TrainingCompute(clients, images, tmp_path_factory.mktemp("jobs"), records)
        tuning = TuningCompute(records, ApiTrialJobs({clients.account: clients}), poll_s=0.05)
        training.on_metric = tuning.observe
        with installed(moto.runtime, delivery, training, tuning=tuning):
            clients.s3.create_bucket(Bucket="tuning")
            clients.s3.put_object(Bucket="tuning", Key="in/part.csv", Body=b"a,b\n1,2\n")
            yield clients


def _request(name: str, **config: Any) -> dict[str, Any]:
    static = config.pop("static", {})
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.9", "ScalingType": "Linear"}
                ]
            },
            "TrainingJobEarlyStoppingType": "Off",
        }
        | config,
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"epochs": "3", **static},
            "AlgorithmSpecification": {
                "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/assets:fake-trainer",
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "validation:auc", "Regex": "validation-auc=([^;]+);"}],
            },
            "RoleArn": ROLE,
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://tuning/in/"}},
                }
            ],
            "OutputDataConfig": {"S3OutputPath": "s3://tuning/out/"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        },
    }


def _ended(clients: Clients, name: str, timeout_s: float = 90) -> dict[str, Any]:
    sagemaker = clients.client("sagemaker")
    found: dict[str, Any] = wait_for(
        lambda: (
            (d := sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name))[
                "HyperParameterTuningJobStatus"
            ]
            in ("Completed", "Failed", "Stopped")
            and d
        ),
        f"tuning job {name}",
        timeout_s=timeout_s,
    )
    return found


def _trials(clients: Clients, name: str) -> list[dict[str, Any]]:
    pages = clients.client("sagemaker").get_paginator("list_training_jobs_for_hyper_parameter_tuning_job")
    return [
        s for page in pages.paginate(HyperParameterTuningJobName=name) for s in page["TrainingJobSummaries"]
    ]


def test_a_bayesian_tuning_job_runs_every_trial_two_at_a_time_and_names_the_best(plane: Clients) -> None:
    plane.client("sagemaker").create_hyper_parameter_tuning_job(**_request("tune-bayes"))
    described = _ended(plane, "tune-bayes")
    trials = _trials(plane, "tune-bayes")

    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert "HyperParameterTuningEndTime" in described and "OverallBestTrainingJob" not in described
    assert described["TrainingJobStatusCounters"]["Completed"] == 6
    assert described["ObjectiveStatusCounters"] == {"Succeeded": 6, "Pending": 0, "Failed": 0}
    assert len(trials) == 6 and all(
        re.fullmatch(r"tune-bayes-\d{3}-[0-9a-f]{8}", t["TrainingJobName"]) for t in trials
    )
    objectives = {
        t["TrainingJobName"]: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials
    }
    for t in trials:  # the objective is the trial's last (kept) value: 1 - (eta - 0.3)^2
        eta = float(t["TunedHyperParameters"]["eta"])
        assert objectives[t["TrainingJobName"]] == pytest.approx(1 - (eta - 0.3) ** 2, abs=1e-5)
    best = described["BestTrainingJob"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(objectives.values())
    assert best["TrainingJobName"] == max(objectives, key=objectives.__getitem__)
    trial = plane.client("sagemaker").describe_training_job(TrainingJobName=best["TrainingJobName"])
    assert trial["TuningJobArn"] == described["HyperParameterTuningJobArn"]
    assert trial["HyperParameters"]["_tuning_objective_metric"] == "validation:auc"
    spans = sorted((t["TrainingStartTime"], t["TrainingEndTime"]) for t in trials)
    at_once = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert at_once <= 2


def test_a_request_sagemaker_refuses_is_answered_400_naming_the_rule(plane: Clients) -> None:
    request = _request("tune-refused", Strategy="Hyperband", TrainingJobEarlyStoppingType="Auto")
    with pytest.raises(ClientError) as refused:
        plane.client("sagemaker").create_hyper_parameter_tuning_job(**request)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "TrainingJobEarlyStoppingType must be Off to use the Hyperband strategy" in str(refused.value)


def test_stop_ends_the_running_trials_and_the_job_stopped(plane: Clients) -> None:
    sagemaker = plane.client("sagemaker")
    sagemaker.create_hyper_parameter_tuning_job(**_request("tune-stop", static={"epochs": "200"}))
    wait_for(lambda: len(_trials(plane, "tune-stop")) == 2, "two trials started", timeout_s=30)
    sagemaker.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-stop")
    described = _ended(plane, "tune-stop")
    assert described["HyperParameterTuningJobStatus"] == "Stopped"
    assert {t["TrainingJobStatus"] for t in _trials(plane, "tune-stop")} == {"Stopped"}


def test_early_stopping_stops_a_trial_worse_than_the_median_of_earlier_ones(plane: Clients) -> None:
    request = _request(
        "tune-early",
        Strategy="Random",
        RandomSeed=7,
        TrainingJobEarlyStoppingType="Auto",
        ResourceLimits={"MaxNumberOfTrainingJobs": 5, "MaxParallelTrainingJobs": 1},
        static={"epochs": "10"},
    )
    plane.client("sagemaker").create_hyper_parameter_tuning_job(**request)
    described = _ended(plane, "tune-early")
    trials = _trials(plane, "tune-early")
    stopped = [t for t in trials if t["TrainingJobStatus"] == "Stopped"]
    assert stopped, [(t["TunedHyperParameters"], t["TrainingJobStatus"]) for t in trials]
    assert described["TrainingJobStatusCounters"]["Stopped"] == len(stopped)
    completed = [t for t in trials if t["TrainingJobStatus"] == "Completed"]
    assert described["BestTrainingJob"]["TrainingJobName"] in {t["TrainingJobName"] for t in completed}
