"""The local tuning jobs' search (tuning_search.py) and trial bookkeeping (tuning_trials.py), in process."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import optuna
import pytest

from headrace.local.sagemaker.tuning_search import MedianStoppingRule, Range, ranges_of, search_for
from headrace.local.sagemaker.tuning_trials import TrialRun, best, counters, summary, trial_request


def _config(**overrides: Any) -> dict[str, Any]:
    return {
        "Strategy": "Bayesian",
        "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": 12, "MaxParallelTrainingJobs": 2},
        "ParameterRanges": {
            "ContinuousParameterRanges": [
                {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5", "ScalingType": "Logarithmic"},
                {
                    "Name": "subsample",
                    "MinValue": "0.5",
                    "MaxValue": "0.99",
                    "ScalingType": "ReverseLogarithmic",
                },
            ],
            "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "10"}],
            "CategoricalParameterRanges": [{"Name": "grow_policy", "Values": ["depthwise", "lossguide"]}],
        },
    } | overrides


def test_suggested_values_are_strings_inside_their_ranges() -> None:
    search = search_for(_config(), 12)
    for _ in range(20):
        values = search.suggest(search.study.ask())
        assert 0.01 <= float(values["eta"]) <= 0.5
        assert 0.5 <= float(values["subsample"]) <= 0.99
        assert 2 <= int(values["max_depth"]) <= 10
        assert values["grow_policy"] in {"depthwise", "lossguide"}


def test_bayesian_search_uses_a_model_based_sampler_that_improves_on_random() -> None:
    config = _config(
        ParameterRanges={"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"}]}
    )
    config["RandomSeed"] = 3
    search = search_for(config, 30)
    assert isinstance(search.study.sampler, optuna.samplers.TPESampler)
    for _ in range(30):
        trial = search.study.ask()
        x = float(search.suggest(trial)["x"])
        search.study.tell(trial, -((x - 0.7) ** 2))
    late = [t.params["x"] for t in search.study.trials[-10:]]
    assert sum(abs(x - 0.7) < 0.15 for x in late) >= 6  # the model concentrates trials near the optimum


def test_a_grid_search_visits_every_combination_once() -> None:
    config = _config(
        Strategy="Grid",
        ParameterRanges={"CategoricalParameterRanges": [{"Name": "a", "Values": ["1", "2", "3"]}]},
    )
    search = search_for(config, 3)
    seen = []
    for _ in range(3):
        trial = search.study.ask()
        seen.append(search.suggest(trial)["a"])
        search.study.tell(trial, 0.5)
    assert sorted(seen) == ["1", "2", "3"]


def test_a_parent_trial_outside_the_ranges_is_not_added_by_warm_start() -> None:
    search = search_for(_config(), 12)
    inside = {"eta": "0.1", "subsample": "0.8", "max_depth": "4", "grow_policy": "lossguide"}
    assert search.add_finished(inside, 0.8)
    assert not search.add_finished(inside | {"max_depth": "40"}, 0.9)
    assert [t.value for t in search.study.trials] == [0.8]


def test_reverse_logarithmic_values_map_back_to_the_range() -> None:
    r = Range("subsample", "Continuous", 0.5, 0.99, "ReverseLogarithmic")
    assert float(r.text(r.searched("0.9"))) == pytest.approx(0.9)


@pytest.mark.parametrize(("current", "pruned"), [(0.5, True), (0.8, False)])
def test_the_median_rule_stops_a_trial_worse_than_the_median_running_average(
    current: float, pruned: bool
) -> None:
    study = optuna.create_study(direction="maximize", pruner=MedianStoppingRule())
    for series in ([0.6, 0.7, 0.8], [0.5, 0.6, 0.7], [0.7, 0.8, 0.9]):  # running averages at step 2: .7 .6 .8
        trial = study.ask()
        for step, value in enumerate(series):
            trial.report(value, step)
        study.tell(trial, series[-1])
    trial = study.ask()
    trial.report(0.9, 0)
    trial.report(0.9, 1)
    trial.report(current, 2)
    assert trial.should_prune() is pruned  # the median of the running averages is 0.7


def test_a_trial_request_adds_the_tuned_values_and_the_objective_hyperparameter() -> None:
    definition = {
        "StaticHyperParameters": {"num_round": "50"},
        "AlgorithmSpecification": {
            "TrainingImage": "img",
            "TrainingInputMode": "File",
            "MetricDefinitions": [],
        },
        "RoleArn": "role",
        "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "HyperParameterTuningResourceConfig": {
            "InstanceType": "ml.m5.large",
            "InstanceCount": 1,
            "VolumeSizeInGB": 5,
        },
    }
    request = trial_request(definition, "job-001-abcdef12", {"eta": "0.1"}, "validation:auc")
    assert request["HyperParameters"] == {
        "num_round": "50",
        "eta": "0.1",
        "_tuning_objective_metric": "validation:auc",
    }
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.m5.large",
        "InstanceCount": 1,
        "VolumeSizeInGB": 5,
    }
    assert request["TrainingJobName"] == "job-001-abcdef12" and request["RoleArn"] == "role"


def _job(status: str, value: float | None) -> Any:
    metrics = [] if value is None else [{"MetricName": "validation:auc", "Value": value}]
    return SimpleNamespace(
        training_job_status=status,
        final_metric_data_list=metrics,
        arn="arn",
        creation_time=1,
        training_start_time=1,
        training_end_time=2,
        failure_reason="boom",
    )


def test_the_best_is_the_completed_trial_with_the_best_objective_and_counters_add_up() -> None:
    objective = {"Type": "Maximize", "MetricName": "validation:auc"}
    summaries = [
        summary(TrialRun("t1", {}), _job("Completed", 0.7), "tune", objective),
        summary(TrialRun("t2", {}), _job("Stopped", 0.9), "tune", objective),  # stopped early: no model
        summary(TrialRun("t3", {}), _job("Completed", 0.8), "tune", objective),
        summary(TrialRun("t4", {}), _job("Failed", None), "tune", objective),
        summary(TrialRun("t5", {}), _job("InProgress", 0.1), "tune", objective),
    ]
    found = best(summaries, maximize=True)
    assert found is not None and found["TrainingJobName"] == "t3"
    jobs, objectives = counters(summaries)
    assert jobs == {
        "Completed": 2,
        "InProgress": 1,
        "RetryableError": 0,
        "NonRetryableError": 1,
        "Stopped": 1,
    }
    assert objectives == {"Succeeded": 3, "Pending": 1, "Failed": 1}
    assert summaries[3]["FailureReason"] == "boom"
    assert "FinalHyperParameterTuningJobObjectiveMetric" not in summaries[4]


def test_ranges_read_from_the_request_keep_their_kinds() -> None:
    kinds = [(r.name, r.kind) for r in ranges_of(_config()["ParameterRanges"])]
    assert kinds == [
        ("eta", "Continuous"),
        ("subsample", "Continuous"),
        ("max_depth", "Integer"),
        ("grow_policy", "Categorical"),
    ]
