"""A tuned model's synthesized training workflow: the warm-start choice, the tuning job request (one copy of
the training job's definition, the tuning config, the warm start), TuningResult, and what each may do. An
untuned model's workflow has none of it (its template is the one issue 19 started from)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from headrace.config import ModelConfig
from headrace.naming import Names, tuning_job_name_glob, tuning_trial_name_glob
from headrace.training_job import static_hyperparameters_for
from stacks.app_builder import build_app
from tests.support.synth import SynthesizedApp, render, stack_template
from tests.support.tuning import TUNING
from tests.support.tuning import tuned as tuned_copy

NAMES = Names("dev")
TUNED = "churn-tuned"
WARM_TYPE = "TransferLearning"


@pytest.fixture(scope="module")
def tuned_app(
    synthesized: SynthesizedApp, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Template, ModelConfig]:
    churn = next(m for m in synthesized.models if m.name == "churn")
    tuned = tuned_copy(churn, TUNED, TUNING)
    app = build_app("dev", [churn, tuned], str(tmp_path_factory.mktemp("tuned.out")))
    return stack_template(app, NAMES.pipeline_stack), tuned


def _states(template: Template, model: str) -> dict[str, Any]:
    found = template.find_resources(
        "AWS::StepFunctions::StateMachine",
        {"Properties": {"StateMachineName": NAMES.training_state_machine(model)}},
    )
    [machine] = found.values()
    states: dict[str, Any] = json.loads(render(machine["Properties"]["DefinitionString"]))["States"]
    return states


def _role_statements(template: Template, role_id: str) -> list[dict[str, Any]]:
    policies = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}})
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _grants(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    def listed(value: Any) -> list[Any]:
        return value if isinstance(value, list) else [value]

    return {
        (action, render(resource))
        for s in statements
        for action in listed(s["Action"])
        for resource in listed(s["Resource"])
    }


def _function_role(template: Template, name: str) -> str:
    found = template.find_resources("AWS::Lambda::Function", {"Properties": {"FunctionName": name}})
    [function] = found.values()
    return str(function["Properties"]["Role"]["Fn::GetAtt"][0])


def test_a_tuned_model_tunes_warm_or_cold_then_hands_the_best_trial_on(
    tuned_app: tuple[Template, ModelConfig],
) -> None:
    states = _states(tuned_app[0], TUNED)
    assert "Train" not in states
    assert states["Prepare"]["Next"] == "WarmStart"
    choice = states["WarmStart"]
    assert choice["Type"] == "Choice"
    assert choice["Choices"] == [
        {
            "And": [
                {"Variable": "$.run.parent_tuning_job", "IsPresent": True},
                {"Variable": "$.run.parent_tuning_job", "IsNull": False},
            ],
            "Next": "TuneWarm",
        }
    ]
    assert choice["Default"] == "TuneCold"
    for tune in ("TuneWarm", "TuneCold"):
        assert states[tune]["Resource"].endswith(":states:::sagemaker:createHyperParameterTuningJob.sync")
        assert states[tune]["ResultPath"] == "$.tuning"
        assert states[tune]["Next"] == "TuningResult"
    assert states["TuningResult"]["ResultPath"] == "$.training"
    assert states["TuningResult"]["Parameters"] == {
        "model.$": "$.model",
        "run.$": "$.run",
        "tuning.$": "$.tuning",
    }
    assert states["TuningResult"]["Next"] == "Evaluate"
    assert states["Evaluate"]["Next"] == "Gate"
    assert states["Register"]["Parameters"]["tuning.$"] == "$.training.tuning"
    for task in ("Prepare", "TuneWarm", "TuneCold", "TuningResult", "Evaluate", "Register"):
        assert states[task]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RunFailed"}
        ]


def test_the_untuned_model_beside_it_keeps_its_single_training_job(
    tuned_app: tuple[Template, ModelConfig], synthesized: SynthesizedApp
) -> None:
    assert _states(tuned_app[0], "churn") == _states(synthesized.pipeline, "churn")
    assert "TuningResult" not in _states(synthesized.pipeline, "churn")
    # A deployment without a tuned model has no TuningResult function at all.
    found = synthesized.pipeline.find_resources(
        "AWS::Lambda::Function", {"Properties": {"FunctionName": NAMES.tuning_result_function}}
    )
    assert found == {}


def test_the_tuning_request_reuses_the_training_jobs_definition_with_static_hyperparameters(
    tuned_app: tuple[Template, ModelConfig],
) -> None:
    template, model = tuned_app
    states = _states(template, TUNED)
    cold = states["TuneCold"]["Parameters"]
    single = _states(template, "churn")["Train"]["Parameters"]
    assert cold["HyperParameterTuningJobName.$"] == "$.run.tuning_job_name"
    definition = cold["TrainingJobDefinition"]
    shared = (
        "RoleArn",
        "InputDataConfig",
        "OutputDataConfig",
        "ResourceConfig",
        "StoppingCondition",
        "EnableManagedSpotTraining",
        "EnableNetworkIsolation",
    )
    for key in shared:
        assert key in definition, key
    # Same channels, output and resources as a single job (the role and key are the model's own).
    assert [c["ChannelName"] for c in definition["InputDataConfig"]] == [
        c["ChannelName"] for c in single["InputDataConfig"]
    ]
    assert definition["StoppingCondition"] == single["StoppingCondition"]
    assert (
        definition["AlgorithmSpecification"]["MetricDefinitions"]
        == single["AlgorithmSpecification"]["MetricDefinitions"]
    )
    # Trials never share checkpoints.
    assert "CheckpointConfig" not in definition
    static = definition["StaticHyperParameters"]
    assert static == static_hyperparameters_for(model)
    assert not {"eta", "max_depth", "grow_policy"} & set(static)
    assert {"target", "objective", "eval_metric"} <= set(static)
    assert "WarmStartConfig" not in cold
    assert cold["Tags"][-1] == {"Key": "headrace:run", "Value.$": "$.run.job_name"}


def test_the_tuning_config_says_strategy_objective_limits_ranges_and_early_stopping(
    tuned_app: tuple[Template, ModelConfig],
) -> None:
    template, model = tuned_app
    config = _states(template, TUNED)["TuneCold"]["Parameters"]["HyperParameterTuningJobConfig"]
    metric = f"validation:{model.gate.metric}"
    assert config == {
        "Strategy": "Bayesian",
        "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": metric},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2},
        "ParameterRanges": {
            "ContinuousParameterRanges": [
                {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5", "ScalingType": "Logarithmic"}
            ],
            "IntegerParameterRanges": [
                {"Name": "max_depth", "MinValue": "2", "MaxValue": "8", "ScalingType": "Auto"}
            ],
            "CategoricalParameterRanges": [{"Name": "grow_policy", "Values": ["depthwise", "lossguide"]}],
        },
        "TrainingJobEarlyStoppingType": "Auto",
    }
    # The objective must be one of the metrics SageMaker scrapes from the trainer's log.
    definitions = _states(template, TUNED)["TuneCold"]["Parameters"]["TrainingJobDefinition"]
    assert metric in {d["Name"] for d in definitions["AlgorithmSpecification"]["MetricDefinitions"]}


def test_the_warm_tuning_job_transfers_from_the_parent_prepare_found(
    tuned_app: tuple[Template, ModelConfig],
) -> None:
    states = _states(tuned_app[0], TUNED)
    warm, cold = states["TuneWarm"]["Parameters"], states["TuneCold"]["Parameters"]
    assert warm["WarmStartConfig"] == {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName.$": "$.run.parent_tuning_job"}],
        "WarmStartType": WARM_TYPE,
    }
    assert {k: v for k, v in warm.items() if k != "WarmStartConfig"} == cold


def test_the_state_machine_may_run_only_this_models_tuning_jobs_and_their_trials(
    tuned_app: tuple[Template, ModelConfig],
) -> None:
    template, _ = tuned_app
    found = template.find_resources(
        "AWS::StepFunctions::StateMachine",
        {"Properties": {"StateMachineName": NAMES.training_state_machine(TUNED)}},
    )
    [machine] = found.values()
    grants = _grants(_role_statements(template, machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]))
    prefix = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:"
    tuning_jobs = f"{prefix}hyper-parameter-tuning-job/{tuning_job_name_glob(TUNED)}"
    trials = f"{prefix}training-job/{tuning_trial_name_glob(TUNED)}"
    for action in (
        "CreateHyperParameterTuningJob",
        "DescribeHyperParameterTuningJob",
        "StopHyperParameterTuningJob",
        "ListTrainingJobsForHyperParameterTuningJob",
        "AddTags",
    ):
        assert (f"sagemaker:{action}", tuning_jobs) in grants, action
    for action in ("CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob"):
        assert (f"sagemaker:{action}", trials) in grants, action
    rule = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/"
    for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule"):
        assert (action, f"{rule}StepFunctionsGetEventsForSageMakerTuningJobsRule") in grants
    assert not any(a.startswith("sagemaker:") and "Tuning" in a and r == "*" for a, r in grants)


def test_tuning_result_reads_the_models_tuning_jobs_and_prepare_lists_them(
    tuned_app: tuple[Template, ModelConfig],
) -> None:
    template, _ = tuned_app
    prefix = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:"
    result = _grants(_role_statements(template, _function_role(template, NAMES.tuning_result_function)))
    tuning_jobs = f"{prefix}hyper-parameter-tuning-job/{tuning_job_name_glob(TUNED)}"
    assert {
        ("sagemaker:DescribeHyperParameterTuningJob", tuning_jobs),
        ("sagemaker:ListTrainingJobsForHyperParameterTuningJob", tuning_jobs),
        ("sagemaker:DescribeTrainingJob", f"{prefix}training-job/{tuning_trial_name_glob(TUNED)}"),
    } <= result
    assert not any(action.startswith("sagemaker:") and resource == "*" for action, resource in result)
    prepare = _grants(_role_statements(template, _function_role(template, NAMES.prepare_function)))
    # ListHyperParameterTuningJobs has no resource-level permissions.
    assert ("sagemaker:ListHyperParameterTuningJobs", "*") in prepare
