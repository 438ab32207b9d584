"""The local SageMaker's checks of CreateHyperParameterTuningJob (sagemaker_rules.py), without a server."""

from __future__ import annotations

from typing import Any

import pytest

from headrace.local.seams.sagemaker_rules import tuning_job


def _request(**config: Any) -> dict[str, Any]:
    ranges = config.pop(
        "ranges", {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5"}]}
    )
    return {
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": ranges,
        }
        | config,
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {
                "TrainingImage": "image",
                "MetricDefinitions": [{"Name": "validation:auc", "Regex": "validation-auc=([^;]+);"}],
            }
        },
    }


def _refusals(request: dict[str, Any], parents: frozenset[str] = frozenset()) -> list[str]:
    return tuning_job(request, lambda name: name in parents)


def test_a_valid_bayesian_request_passes() -> None:
    assert _refusals(_request()) == []


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (
            _request(Strategy="Hyperband", TrainingJobEarlyStoppingType="Auto"),
            "must be Off to use the Hyperband",
        ),
        (
            _request(
                ranges={"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.5", "MaxValue": "0.1"}]}
            ),
            "eta: MinValue (0.5) is greater than MaxValue (0.1)",
        ),
        (
            _request(
                ranges={
                    "ContinuousParameterRanges": [
                        {"Name": "eta", "MinValue": "0", "MaxValue": "1", "ScalingType": "Logarithmic"}
                    ]
                }
            ),
            "eta: Logarithmic scaling works only for ranges of values above 0",
        ),
        (
            _request(
                ranges={
                    "ContinuousParameterRanges": [
                        {
                            "Name": "subsample",
                            "MinValue": "0.5",
                            "MaxValue": "1",
                            "ScalingType": "ReverseLogarithmic",
                        }
                    ]
                }
            ),
            "subsample: ReverseLogarithmic scaling works only within 0 <= x < 1.0",
        ),
        (
            _request(Strategy="Grid"),
            "the Grid strategy supports only categorical parameters (not eta)",
        ),
        (
            _request(
                Strategy="Grid",
                ranges={
                    "CategoricalParameterRanges": [
                        {"Name": "grow_policy", "Values": ["depthwise", "lossguide"]}
                    ]
                },
            ),
            "MaxNumberOfTrainingJobs (6) should equal the 2 distinct categorical combinations",
        ),
        (
            _request(
                ranges={"IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "3"}]}
            ),
            "the provided ranges [2.0] must be equal or greater than the value of MaxNumberOfJobs, [6]",
        ),
        (
            _request(ResourceLimits={"MaxParallelTrainingJobs": 2}),
            "MaxNumberOfTrainingJobs is required for the Bayesian strategy",
        ),
        (
            _request(HyperParameterTuningJobObjective={"Type": "Maximize", "MetricName": "validation:rmse"}),
            "'validation:rmse' is not among the TrainingJobDefinition's MetricDefinitions",
        ),
    ],
)
def test_sagemaker_refuses(request_: dict[str, Any], expected: str) -> None:
    assert any(expected in found for found in _refusals(request_)), _refusals(request_)


def test_a_grid_without_max_jobs_passes_it_is_computed() -> None:
    ranges = {"CategoricalParameterRanges": [{"Name": "grow_policy", "Values": ["depthwise", "lossguide"]}]}
    assert (
        _refusals(_request(Strategy="Grid", ranges=ranges, ResourceLimits={"MaxParallelTrainingJobs": 1}))
        == []
    )


def test_more_than_thirty_ranges_together_are_refused() -> None:
    ranges = {
        "ContinuousParameterRanges": [{"Name": f"c{i}", "MinValue": "0", "MaxValue": "1"} for i in range(20)],
        "CategoricalParameterRanges": [{"Name": f"k{i}", "Values": ["a", "b"]} for i in range(11)],
    }
    assert any("can't exceed 30" in found for found in _refusals(_request(ranges=ranges)))


def test_a_warm_start_parent_must_exist() -> None:
    request = _request()
    request["WarmStartConfig"] = {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "old"}],
        "WarmStartType": "TransferLearning",
    }
    assert any("'old' does not exist" in found for found in _refusals(request))
    assert _refusals(request, frozenset({"old"})) == []
