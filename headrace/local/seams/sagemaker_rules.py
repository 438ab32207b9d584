"""SageMaker's documented rules beyond its API model, for the calls Headrace makes: the local SageMaker
refuses what SageMaker refuses, with the same ValidationException, so a request that passes locally is not
refused on AWS for these reasons.

Each rule names its source. Where SageMaker does not document a detail (how a CAPACITY_PERCENT size rounds to
whole instances), a request is refused only when every reading refuses it: the local plane must never refuse
what AWS would accept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

from headrace.training.instances import has_instance_storage
from headrace.tuning_limits import MAX_TUNED_HYPERPARAMETERS

# "The maximum value is 28 days." (StoppingCondition.MaxRuntimeInSeconds,
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StoppingCondition.html)
MAX_RUNTIME_S: Final = 28 * 24 * 3600
# TrafficRoutingConfig: "CanarySize ... must be less than or equal to 50% of the variant's total instance
# count"; "LinearStepSize ... must be 10-50% of the variant's total instance count"
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html,
# https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html).
MAX_STEP_SHARE: Final = 0.5
MIN_LINEAR_SHARE: Final = 0.1

# The variants of an endpoint config by name (None: no such config), for UpdateEndpoint.
ConfigVariants = Callable[[str], list[dict[str, Any]] | None]


def training_job(request: dict[str, Any]) -> list[str]:
    """CreateTrainingJob: run time, managed spot training's wait, and the volume key."""
    found: list[str] = []
    stopping = request.get("StoppingCondition") or {}
    runtime, wait = stopping.get("MaxRuntimeInSeconds"), stopping.get("MaxWaitTimeInSeconds")
    if isinstance(runtime, int) and runtime > MAX_RUNTIME_S:
        found.append(f"MaxRuntimeInSeconds {runtime} is over the maximum of 28 days ({MAX_RUNTIME_S} s)")
    spot = request.get("EnableManagedSpotTraining") is True
    # StoppingCondition.MaxWaitTimeInSeconds: "It must be equal to or greater than MaxRuntimeInSeconds"
    # (API_StoppingCondition.html); managed spot training needs it (model-managed-spot-training.html).
    if spot and wait is None:
        found.append("MaxWaitTimeInSeconds is required when EnableManagedSpotTraining is true")
    elif spot and isinstance(runtime, int) and isinstance(wait, int) and wait < runtime:
        found.append(
            f"MaxWaitTimeInSeconds ({wait}) must be equal to or greater than MaxRuntimeInSeconds ({runtime})"
        )
    # SageMaker's own words for a wait without spot: "Invalid MaxWaitTimeInSeconds. It is only supported when
    # EnableManagedSpotTraining is set to true" (seen by users: Kenza-AI/sagify#111,
    # aws/sagemaker-python-sdk#4140).
    if not spot and wait is not None:
        found.append(
            "Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining is set to true"
        )
    resources = request.get("ResourceConfig") or {}
    instance_type = resources.get("InstanceType")
    # ResourceConfig.VolumeKmsKeyId: "You can't request a VolumeKmsKeyId when using an instance type with
    # local storage." (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceConfig.html)
    if resources.get("VolumeKmsKeyId") and isinstance(instance_type, str) and _local_storage(instance_type):
        found.append(
            f"You can't request a VolumeKmsKeyId when using {instance_type}, which has local storage"
        )
    return found


# CreateTransformJob.MaxPayloadInMB: "The value of MaxPayloadInMB cannot be greater than 100 MB. If you
# specify the MaxConcurrentTransforms parameter, the value of (MaxConcurrentTransforms * MaxPayloadInMB)
# also cannot exceed 100 MB." (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html)
MAX_TRANSFORM_PAYLOAD_MB: Final = 100


def transform_job(request: dict[str, Any], model_exists: Callable[[str], bool]) -> list[str]:
    """CreateTransformJob: the payload limits, and "ModelName must be the name of an existing Amazon SageMaker
    model" (API_CreateTransformJob.html)."""
    found: list[str] = []
    payload, concurrent = request.get("MaxPayloadInMB"), request.get("MaxConcurrentTransforms")
    if isinstance(payload, int) and payload > MAX_TRANSFORM_PAYLOAD_MB:
        found.append(f"MaxPayloadInMB {payload} cannot be greater than {MAX_TRANSFORM_PAYLOAD_MB} MB")
    elif (
        isinstance(payload, int)
        and isinstance(concurrent, int)
        and payload * concurrent > MAX_TRANSFORM_PAYLOAD_MB
    ):
        found.append(
            f"MaxConcurrentTransforms * MaxPayloadInMB ({concurrent} * {payload}) cannot exceed "
            f"{MAX_TRANSFORM_PAYLOAD_MB} MB"
        )
    model = request.get("ModelName")
    if isinstance(model, str) and not model_exists(model):
        found.append(f"Could not find model {model!r}: ModelName must be the name of an existing model")
    return found


def endpoint_config(request: dict[str, Any]) -> list[str]:
    """CreateEndpointConfig: no volume key for instance types with local storage ("If you specify a value for
    KmsKeyId when using any nitro-based instances with local storage, the call to CreateEndpointConfig fails",
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html)."""
    if not request.get("KmsKeyId"):
        return []
    return [
        f"KmsKeyId cannot be specified for {variant['InstanceType']} (variant {variant.get('VariantName')}), "
        "an instance type with local storage"
        for variant in request.get("ProductionVariants") or []
        if isinstance(variant.get("InstanceType"), str) and _local_storage(variant["InstanceType"])
    ]


def model_package(request: dict[str, Any]) -> list[str]:
    """CreateModelPackage: ModelPackageGroupName "is required for versioned models, and does not apply to
    unversioned models"; ModelPackageName "is required for unversioned models. It is not applicable to
    versioned models." (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackage.html)"""
    named, grouped = bool(request.get("ModelPackageName")), bool(request.get("ModelPackageGroupName"))
    if named and grouped:
        return ["ModelPackageName is not applicable to a versioned model (one with ModelPackageGroupName)"]
    if not named and not grouped:
        return ["either ModelPackageGroupName (a versioned model) or ModelPackageName is required"]
    return []


def endpoint_update(request: dict[str, Any], variants_of: ConfigVariants) -> list[str]:
    """UpdateEndpoint: a blue/green canary or linear step must fit the new fleet of every variant."""
    routing = ((request.get("DeploymentConfig") or {}).get("BlueGreenUpdatePolicy") or {}).get(
        "TrafficRoutingConfiguration"
    ) or {}
    kind = routing.get("Type")
    member = {"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}.get(str(kind))
    if member is None:
        return []
    size = routing.get(member)
    if not isinstance(size, dict):
        return [f"TrafficRoutingConfiguration.{member} is required for a {kind} traffic routing"]
    variants = variants_of(str(request.get("EndpointConfigName"))) or []
    found: list[str] = []
    for variant in variants:
        count = variant.get("InitialInstanceCount")
        if isinstance(count, int) and not step_fits(kind == "LINEAR", size, count):
            bounds = "10-50%" if kind == "LINEAR" else "at most 50%"
            found.append(
                f"TrafficRoutingConfiguration.{member} {size.get('Value')} ({size.get('Type')}) must be "
                f"{bounds} of variant {variant.get('VariantName')}'s {count} instance(s), in whole instances"
            )
    return found


def step_fits(linear: bool, size: dict[str, Any], instances: int) -> bool:
    """Whether a canary (or linear step) of `size` can be cut from a fleet of `instances`: at least one whole
    instance, at most half the fleet (a linear step: at least a tenth of it)."""
    value, kind = size.get("Value"), size.get("Type")
    if not isinstance(value, int):
        return True  # the service model's check names a missing or mistyped Value
    lowest = MIN_LINEAR_SHARE if linear else 0.0

    def fits(step: int) -> bool:
        return step >= 1 and lowest * instances <= step <= MAX_STEP_SHARE * instances

    if kind == "INSTANCE_COUNT":
        return fits(value)
    if not lowest * 100 <= value <= MAX_STEP_SHARE * 100:
        return False
    # A percentage becomes whole instances; SageMaker does not document how it rounds, so either reading
    # that fits is accepted. A fleet of one fits neither: its only step is all of it.
    share = instances * value / 100
    return fits(math.floor(share)) or fits(math.ceil(share))


def _local_storage(instance_type: str) -> bool:
    # `ml.m5.large`: a family after the `ml.` prefix; anything else is left to SageMaker's own model.
    return instance_type.count(".") == 2 and has_instance_storage(instance_type)


def tuning_job(request: dict[str, Any], tuning_job_exists: Callable[[str], bool]) -> list[str]:
    """CreateHyperParameterTuningJob: the strategy's constraints, the ranges, the limits, the objective and
    the warm start's parents."""
    config = request.get("HyperParameterTuningJobConfig") or {}
    strategy = config.get("Strategy")
    limits = config.get("ResourceLimits") or {}
    found: list[str] = []
    # "Because the Hyperband strategy has its own advanced internal early stopping mechanism,
    # TrainingJobEarlyStoppingType must be OFF to use Hyperband"
    # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_HyperParameterTuningJobConfig.html).
    if strategy == "Hyperband" and config.get("TrainingJobEarlyStoppingType") == "Auto":
        found.append("TrainingJobEarlyStoppingType must be Off to use the Hyperband strategy")
    ranges = config.get("ParameterRanges") or {}
    continuous = ranges.get("ContinuousParameterRanges") or []
    integer = ranges.get("IntegerParameterRanges") or []
    categorical = ranges.get("CategoricalParameterRanges") or []
    if len(continuous) + len(integer) + len(categorical) > MAX_TUNED_HYPERPARAMETERS:
        found.append(
            f"ParameterRanges holds {len(continuous) + len(integer) + len(categorical)} hyperparameters; the "
            f"ranges together can't exceed {MAX_TUNED_HYPERPARAMETERS}"
        )
    for kind, entries in (("Continuous", continuous), ("Integer", integer)):
        for entry in entries:
            found += _numeric_range(kind, entry)
    found += _limits(strategy, limits.get("MaxNumberOfTrainingJobs"), continuous, integer, categorical)
    found += _objective(config, request.get("TrainingJobDefinition") or {})
    for parent in (request.get("WarmStartConfig") or {}).get("ParentHyperParameterTuningJobs") or []:
        name = parent.get("HyperParameterTuningJobName")
        if isinstance(name, str) and not tuning_job_exists(name):
            found.append(f"WarmStartConfig: parent hyperparameter tuning job {name!r} does not exist")
    return found


def _numeric_range(kind: str, entry: dict[str, Any]) -> list[str]:
    """MinValue <= MaxValue, numbers of the range's kind, and the scaling's domain: "Logarithmic scaling works
    only for ranges that have only values greater than 0"; "Reverse logarithmic scaling works only for ranges
    that are entirely within the range 0<=x<1.0"
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContinuousParameterRange.html,
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_IntegerParameterRange.html)."""
    name, scaling = entry.get("Name"), entry.get("ScalingType", "Auto")
    parse = int if kind == "Integer" else float
    try:
        low, high = parse(str(entry.get("MinValue"))), parse(str(entry.get("MaxValue")))
    except ValueError:
        number = "an integer" if kind == "Integer" else "a number"
        return [f"{kind}ParameterRange {name}: MinValue and MaxValue must each be {number}"]
    if low > high:
        return [f"{kind}ParameterRange {name}: MinValue ({low}) is greater than MaxValue ({high})"]
    if scaling == "Logarithmic" and low <= 0:
        return [f"{kind}ParameterRange {name}: Logarithmic scaling works only for ranges of values above 0"]
    if scaling == "ReverseLogarithmic" and not (low >= 0 and high < 1):
        return [f"{kind}ParameterRange {name}: ReverseLogarithmic scaling works only within 0 <= x < 1.0"]
    return []


def _combinations(
    continuous: list[dict[str, Any]], integer: list[dict[str, Any]], categorical: list[dict[str, Any]]
) -> float:
    if continuous:
        return math.inf
    size = 1.0
    for entry in integer:
        try:
            size *= max(int(entry.get("MaxValue")) - int(entry.get("MinValue")) + 1, 1)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return math.inf  # _numeric_range names it
    for entry in categorical:
        size *= max(len(entry.get("Values") or []), 1)
    return size


def _objective(config: dict[str, Any], definition: dict[str, Any]) -> list[str]:
    """The objective is required to tune, and a custom image's objective is one of its MetricDefinitions:
    SageMaker finds the metric only through them (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-define-metrics-variables.html)."""
    objective = config.get("HyperParameterTuningJobObjective")
    if not isinstance(objective, dict):
        return ["HyperParameterTuningJobConfig.HyperParameterTuningJobObjective is required"]
    algorithm = definition.get("AlgorithmSpecification") or {}
    defined = [d.get("Name") for d in algorithm.get("MetricDefinitions") or []]
    metric = objective.get("MetricName")
    if algorithm.get("TrainingImage") and metric not in defined:
        return [
            f"The objective metric {metric!r} is not among the TrainingJobDefinition's MetricDefinitions "
            f"({', '.join(str(d) for d in defined) or 'none'})"
        ]
    return []


def _limits(
    strategy: Any,
    jobs: Any,
    continuous: list[dict[str, Any]],
    integer: list[dict[str, Any]],
    categorical: list[dict[str, Any]],
) -> list[str]:
    """MaxNumberOfTrainingJobs against the strategy and the number of distinct combinations."""
    combinations = _combinations(continuous, integer, categorical)
    if strategy == "Grid":
        # "Only categorical parameters are supported when using the grid search strategy ... If specified, the
        # value of MaxNumberOfTrainingJobs should equal the total number of distinct categorical combinations
        # possible" (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-how-it-works.html).
        if continuous or integer:
            names = ", ".join(str(r.get("Name")) for r in [*continuous, *integer])
            return [f"the Grid strategy supports only categorical parameters (not {names})"]
        if isinstance(jobs, int) and jobs != combinations:
            return [
                f"MaxNumberOfTrainingJobs ({jobs}) should equal the {combinations:.0f} distinct categorical "
                "combinations of a Grid search"
            ]
        return []
    if jobs is None:
        # Optional in the API model for Grid's sake (it computes the number itself, same page).
        return [f"ResourceLimits.MaxNumberOfTrainingJobs is required for the {strategy} strategy"]
    if isinstance(jobs, int) and jobs > combinations:
        # SageMaker's words (seen by users: aws/amazon-sagemaker-operator-for-k8s#123).
        return [
            "You don't have enough combinations of hyperparameter ranges. The total number of hyperparameter "
            f"combinations for the provided ranges [{combinations:.1f}] must be equal or greater than the "
            f"value of MaxNumberOfJobs, [{jobs}]. Provide additional ranges."
        ]
    return []
