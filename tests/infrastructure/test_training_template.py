"""The synthesized training workflow: its states and payloads, the SageMaker training job it runs, the
functions behind its steps, and what each of them may do."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from headrace.config import ModelConfig
from headrace.layers import LAMBDA_PYTHON_RUNTIME
from headrace.naming import Names, Outputs
from headrace.training_job import hyperparameters_for
from stacks.app_builder import build_app
from stacks.sagemaker import SAGEMAKER_TRANSIENT
from tests.support.synth import SynthesizedApp, render, stack_template

REPO = Path(__file__).resolve().parents[2]
LAMBDA_STEPS = ("Prepare", "Evaluate", "Register")
TASKS = ("Prepare", "Train", "Evaluate", "Register")
ECR_REPOSITORY = "cdk-hnb659fds-container-assets-${AWS::AccountId}-${AWS::Region}"

Resource = Mapping[str, Any]


def _machine(template: Template, names: Names, model: str) -> tuple[str, Resource]:
    found = template.find_resources(
        "AWS::StepFunctions::StateMachine",
        {"Properties": {"StateMachineName": names.training_state_machine(model)}},
    )
    assert len(found) == 1
    return next(iter(found.items()))


def _definition(template: Template, names: Names, model: str) -> dict[str, Any]:
    _, machine = _machine(template, names, model)
    parsed: dict[str, Any] = json.loads(render(machine["Properties"]["DefinitionString"]))
    return parsed


def _states(synthesized: SynthesizedApp, model: str = "churn") -> dict[str, Any]:
    states: dict[str, Any] = _definition(synthesized.pipeline, synthesized.names, model)["States"]
    return states


def _function(template: Template, name: str) -> tuple[str, Resource]:
    found = template.find_resources("AWS::Lambda::Function", {"Properties": {"FunctionName": name}})
    assert len(found) == 1, f"expected one function {name}, found {sorted(found)}"
    return next(iter(found.items()))


def _as_list(value: Any) -> list[Any]:
    """IAM's Action and Resource: a single value or a list of them."""
    return value if isinstance(value, list) else [value]


def _grants(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (action, render(resource))
        for statement in statements
        for action in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    }


def _function_grants(synthesized: SynthesizedApp, name: str) -> set[tuple[str, str]]:
    _, function = _function(synthesized.pipeline, name)
    return _grants(synthesized.role_statements(function["Properties"]["Role"]["Fn::GetAtt"][0]))


def _only_id(template: Template, resource_type: str) -> str:
    found = template.find_resources(resource_type)
    assert len(found) == 1
    return next(iter(found))


def _bucket_arn(synthesized: SynthesizedApp) -> str:
    bucket_id = synthesized.data_bucket_id
    return f"<import:{synthesized.data_export({'Fn::GetAtt': [bucket_id, 'Arn']})}>"


def _key_arn(synthesized: SynthesizedApp) -> str:
    key_id = _only_id(synthesized.data, "AWS::KMS::Key")
    return f"<import:{synthesized.data_export({'Fn::GetAtt': [key_id, 'Arn']})}>"


def _variant(base: ModelConfig, name: str, **trainer: Any) -> ModelConfig:
    return base.model_copy(update={"name": name, "trainer": base.trainer.model_copy(update=trainer)})


@pytest.fixture(scope="module")
def variants(synthesized: SynthesizedApp, tmp_path_factory: pytest.TempPathFactory) -> Template:
    """One app with three trainers: the shipped churn, a GPU one (local NVMe storage), an on-demand one."""
    churn = next(m for m in synthesized.models if m.name == "churn")
    models = [
        churn,
        _variant(churn, "churn-gpu", instance_type="ml.g5.2xlarge"),
        _variant(churn, "churn-ondemand", use_spot=False, instance_type="ml.p3.2xlarge"),
    ]
    app = build_app("dev", models, str(tmp_path_factory.mktemp("cdk.out")))
    return stack_template(app, Names("dev").pipeline_stack)


def _train(template: Template, model: str) -> dict[str, Any]:
    states: dict[str, Any] = _definition(template, Names("dev"), model)["States"]
    parameters: dict[str, Any] = states["Train"]["Parameters"]
    return parameters


# --- the workflow ---------------------------------------------------------------------------------------


def test_the_workflow_prepares_trains_evaluates_then_gates(synthesized: SynthesizedApp) -> None:
    definition = _definition(synthesized.pipeline, synthesized.names, "churn")
    states = definition["States"]
    assert definition["StartAt"] == "Prepare"
    assert states["Prepare"]["Next"] == "Train"
    assert states["Train"]["Next"] == "Evaluate"
    assert states["Evaluate"]["Next"] == "Gate"
    assert states["Gate"]["Type"] == "Choice"
    assert states["Gate"]["Choices"] == [
        {"Variable": "$.gate.passed", "BooleanEquals": True, "Next": "Register"}
    ]
    assert states["Gate"]["Default"] == "Rejected"
    assert states["Register"]["Next"] == "Registered"
    # A rejection is a successful run whose outcome is "rejected" (Evaluate recorded the reasons).
    assert states["Rejected"]["Type"] == "Succeed"
    assert states["Registered"]["Type"] == "Succeed"


def test_every_task_catches_every_error_into_run_failed(synthesized: SynthesizedApp) -> None:
    states = _states(synthesized)
    for task in TASKS:
        assert states[task]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RunFailed"}
        ]
    assert states["RunFailed"]["Next"] == "Failed"
    assert "Catch" not in states["RunFailed"]
    assert states["Failed"] == {"Type": "Fail", "Error": "TrainingRunFailed", "CausePath": "$.failure.cause"}


def test_lambda_steps_retry_transient_lambda_errors_and_timeouts(synthesized: SynthesizedApp) -> None:
    states = _states(synthesized)
    for step in (*LAMBDA_STEPS, "RunFailed"):
        retried = {error for retry in states[step]["Retry"] for error in retry["ErrorEquals"]}
        assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException", "States.Timeout"} <= retried
        assert "States.ALL" not in retried
        assert all(retry["BackoffRate"] > 1 for retry in states[step]["Retry"])
        assert states[step]["TimeoutSeconds"] > 0


def test_lambda_steps_get_the_payloads_documented_in_training_payloads(synthesized: SynthesizedApp) -> None:
    states = _states(synthesized)
    execution = {"name.$": "$$.Execution.Name", "id.$": "$$.Execution.Id"}
    assert states["Prepare"]["Parameters"] == {
        "model.$": "$.model",
        "dataset.$": "$.dataset",
        "extra.$": "$.extra",
        "execution": execution,
    }
    assert states["Evaluate"]["Parameters"] == {
        "model.$": "$.model",
        "dataset.$": "$.dataset",
        "run.$": "$.run",
        "model_artifacts.$": "$.training.ModelArtifacts.S3ModelArtifacts",
    }
    register = states["Register"]["Parameters"]
    assert register["gate.$"] == "$.gate"
    assert register["training_job_arn.$"] == "$.training.TrainingJobArn"
    assert set(register["image"]) == {"uri", "digest"}
    assert states["RunFailed"]["Parameters"] == {"state.$": "$", "execution": execution}
    results = {step: states[step]["ResultPath"] for step in (*TASKS, "RunFailed")}
    assert results == {
        "Prepare": "$.run",
        "Train": "$.training",
        "Evaluate": "$.gate",
        "Register": "$.registered",
        "RunFailed": "$.failure",
    }


def test_lambda_steps_invoke_the_shared_training_functions(synthesized: SynthesizedApp) -> None:
    states = _states(synthesized)
    names = synthesized.names
    functions = {
        "Prepare": names.prepare_function,
        "Evaluate": names.evaluate_function,
        "Register": names.register_function,
        "RunFailed": names.run_failed_function,
    }
    for step, name in functions.items():
        function_id, _ = _function(synthesized.pipeline, name)
        # The function's own ARN: the result is the function's response, not Lambda's invoke envelope.
        assert states[step]["Resource"] == f"<{function_id}.Arn>"


# --- the training job ----------------------------------------------------------------------------------


def test_train_waits_for_a_sagemaker_training_job_named_by_prepare(synthesized: SynthesizedApp) -> None:
    train = _states(synthesized)["Train"]
    assert train["Type"] == "Task"
    assert train["Resource"] == "arn:${AWS::Partition}:states:::sagemaker:createTrainingJob.sync"
    assert train["Parameters"]["TrainingJobName.$"] == "$.run.job_name"
    retried = {error for retry in train["Retry"] for error in retry["ErrorEquals"]}
    assert retried == set(SAGEMAKER_TRANSIENT)
    assert "SageMaker.AmazonSageMakerException" not in retried


def test_train_uses_managed_spot_with_checkpoints_and_a_max_wait(synthesized: SynthesizedApp) -> None:
    churn = next(m for m in synthesized.models if m.name == "churn")
    parameters = _states(synthesized)["Train"]["Parameters"]
    assert parameters["EnableManagedSpotTraining"] is True
    assert parameters["StoppingCondition"] == {
        "MaxRuntimeInSeconds": churn.trainer.max_runtime_s,
        "MaxWaitTimeInSeconds": churn.trainer.max_wait_s,
    }
    assert parameters["CheckpointConfig"] == {
        "S3Uri.$": "$.run.checkpoint_uri",
        "LocalPath": "/opt/ml/checkpoints",
    }


def test_an_on_demand_trainer_has_no_spot_and_no_max_wait(variants: Template) -> None:
    parameters = _train(variants, "churn-ondemand")
    assert parameters["EnableManagedSpotTraining"] is False
    assert set(parameters["StoppingCondition"]) == {"MaxRuntimeInSeconds"}


def test_train_reads_the_three_csv_splits_prepare_wrote(synthesized: SynthesizedApp) -> None:
    channels = _states(synthesized)["Train"]["Parameters"]["InputDataConfig"]
    assert [c["ChannelName"] for c in channels] == ["train", "validation", "test", "champion"]
    for channel in channels:
        assert channel["ContentType"] == (
            "text/csv" if channel["ChannelName"] != "champion" else "application/x-gzip"
        )
        source = channel["DataSource"]["S3DataSource"]
        assert source["S3DataType"] == "S3Prefix"
        assert source["S3Uri.$"] == f"$.run.{channel['ChannelName']}_uri"


def test_prepare_may_read_the_champion_from_the_registry_and_its_artifact(
    synthesized: SynthesizedApp,
) -> None:
    grants = _function_grants(synthesized, synthesized.names.prepare_function)
    actions = {action for action, _ in grants}
    assert ("sagemaker:ListModelPackages", "*") in grants  # no resource-level permission exists
    described = {resource for action, resource in grants if action == "sagemaker:DescribeModelPackage"}
    assert described and all(":model-package/" in r and r.endswith("/*") for r in described)
    assert "sagemaker:CreateModelPackage" not in actions
    outputs = {resource for action, resource in grants if action == "s3:GetObject*"}
    assert any(r.endswith("/*/runs/*/output/*") for r in outputs), outputs


def test_train_gets_the_hyperparameters_of_the_model_config(synthesized: SynthesizedApp) -> None:
    churn = next(m for m in synthesized.models if m.name == "churn")
    parameters = _states(synthesized)["Train"]["Parameters"]
    assert parameters["HyperParameters"] == hyperparameters_for(churn)
    assert parameters["HyperParameters"]["eval_metric"] == churn.gate.metric


def test_metric_definitions_scrape_the_log_lines_the_trainer_prints(synthesized: SynthesizedApp) -> None:
    definitions = _states(synthesized)["Train"]["Parameters"]["AlgorithmSpecification"]["MetricDefinitions"]
    log = "[17] train-auc=0.912; validation-auc=0.8734;\ntest-auc=8.5e-01;\n"
    scraped = {d["Name"]: re.search(d["Regex"], log).group(1) for d in definitions}  # type: ignore[union-attr]
    assert scraped == {"validation:auc": "0.8734", "test:auc": "8.5e-01"}


def test_train_output_and_volume_are_encrypted_with_the_data_key(synthesized: SynthesizedApp) -> None:
    parameters = _states(synthesized)["Train"]["Parameters"]
    key = _key_arn(synthesized)
    assert parameters["OutputDataConfig"] == {"S3OutputPath.$": "$.run.output_uri", "KmsKeyId": key}
    assert parameters["ResourceConfig"] == {
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 30,
        "VolumeKmsKeyId": key,
    }


def test_gpu_instance_types_are_used_as_configured(variants: Template) -> None:
    assert _train(variants, "churn-gpu")["ResourceConfig"]["InstanceType"] == "ml.g5.2xlarge"
    assert _train(variants, "churn-ondemand")["ResourceConfig"]["InstanceType"] == "ml.p3.2xlarge"


def test_instance_types_with_local_storage_get_no_volume_key(variants: Template) -> None:
    # SageMaker refuses VolumeKmsKeyId for them; their NVMe storage is encrypted by the hardware.
    assert "VolumeKmsKeyId" not in _train(variants, "churn-gpu")["ResourceConfig"]
    assert "VolumeKmsKeyId" in _train(variants, "churn-ondemand")["ResourceConfig"]


def test_training_jobs_are_tagged_with_stage_model_and_run(synthesized: SynthesizedApp) -> None:
    tags = _states(synthesized)["Train"]["Parameters"]["Tags"]
    assert tags == [
        {"Key": "headrace:stage", "Value": "dev"},
        {"Key": "headrace:model", "Value": "churn"},
        {"Key": "headrace:run", "Value.$": "$.run.job_name"},
    ]


# --- the training image ---------------------------------------------------------------------------------


def _image_asset(synthesized: SynthesizedApp, entry_point: str = "train") -> tuple[str, dict[str, Any]]:
    """The container image whose build context holds `entry_point` (`train`, or `serve`)."""
    manifest = json.loads(
        (synthesized.assembly_dir / f"{synthesized.names.pipeline_stack}.assets.json").read_text()
    )
    [(asset_hash, image)] = [
        (h, i)
        for h, i in manifest["dockerImages"].items()
        if (synthesized.assembly_dir / i["source"]["directory"] / entry_point).is_file()
    ]
    return asset_hash, image


def test_the_training_image_is_the_staged_asset_in_cdks_container_assets_repository(
    synthesized: SynthesizedApp,
) -> None:
    asset_hash, image = _image_asset(synthesized)
    [destination] = image["destinations"].values()
    assert destination["imageTag"] == asset_hash
    assert image["source"] == {"directory": f"asset.{asset_hash}", "platform": "linux/amd64"}
    expected = (
        f"${{AWS::AccountId}}.dkr.ecr.${{AWS::Region}}.${{AWS::URLSuffix}}/{ECR_REPOSITORY}:{asset_hash}"
    )
    states = _states(synthesized)
    assert states["Train"]["Parameters"]["AlgorithmSpecification"]["TrainingImage"] == expected
    assert states["Register"]["Parameters"]["image"] == {"uri": expected, "digest": asset_hash}
    serve_hash, _ = _image_asset(synthesized, "serve")
    assert states["Register"]["Parameters"]["serving_image"] == {
        "uri": expected.replace(asset_hash, serve_hash),
        "digest": serve_hash,
    }


def test_the_pipeline_stack_outputs_the_serving_image_each_model_s_versions_are_registered_with(
    synthesized: SynthesizedApp,
) -> None:
    # What `headrace promote` registers a promoted version with in this stage (headrace/promotion).
    outputs = synthesized.pipeline.find_outputs("*")
    for model in synthesized.models:
        registered = _states(synthesized, model.name)["Register"]["Parameters"]["serving_image"]
        uri = outputs[Outputs.serving_image(model.name)]["Value"]
        digest = outputs[Outputs.serving_image_digest(model.name)]["Value"]
        assert {"uri": render(uri), "digest": digest} == registered, model.name


def test_the_image_build_context_holds_the_trainer_and_the_domain_package(
    synthesized: SynthesizedApp,
) -> None:
    asset_hash, _ = _image_asset(synthesized)
    context = synthesized.assembly_dir / f"asset.{asset_hash}"
    assert (context / "Dockerfile").is_file()
    assert (context / "requirements.txt").is_file()
    assert os.access(context / "train", os.X_OK)
    assert (context / "trainer" / "main.py").is_file()
    assert (context / "headrace" / "training_job.py").is_file()
    assert not (context / "headrace" / "cli").exists()
    assert not (context / "headrace" / "local").exists()
    assert not list(context.rglob("__pycache__"))


def test_app_py_stages_the_image_without_running_docker(tmp_path: Path) -> None:
    # `python app.py` as a user runs it, with a `docker` on PATH that records any call: synth stages the
    # build context, and only `cdk deploy` (cdk-assets) builds the image.
    spy = tmp_path / "bin"
    spy.mkdir()
    (spy / "docker").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "docker-called"}\nexit 1\n')
    (spy / "docker").chmod(0o755)
    outdir = tmp_path / "cdk.out"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CDK_", "HEADRACE_"))}
    environ.update({"CDK_OUTDIR": str(outdir), "PATH": f"{spy}{os.pathsep}{os.environ['PATH']}"})
    done = subprocess.run(
        [sys.executable, str(REPO / "app.py")],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "docker-called").exists()
    manifest = json.loads((outdir / f"{Names('dev').pipeline_stack}.assets.json").read_text())
    # The training image and the serving image, each a staged build context.
    assert len(manifest["dockerImages"]) == 2
    for asset_hash in manifest["dockerImages"]:
        assert (outdir / f"asset.{asset_hash}" / "Dockerfile").is_file()


# --- the functions --------------------------------------------------------------------------------------


def test_run_failed_announces_on_the_default_bus(synthesized: SynthesizedApp) -> None:
    # Each function's variables are exactly its settings' (test_function_template.py); here, one value.
    _, function = _function(synthesized.pipeline, synthesized.names.run_failed_function)
    assert function["Properties"]["Environment"]["Variables"]["EVENT_BUS_NAME"] == "default"


def test_only_prepare_carries_the_aws_sdk_for_pandas_layer(synthesized: SynthesizedApp) -> None:
    names = synthesized.names
    for name, layers in {
        names.prepare_function: 2,
        names.evaluate_function: 1,
        names.register_function: 1,
        names.run_failed_function: 1,
    }.items():
        _, function = _function(synthesized.pipeline, name)
        assert len(function["Properties"]["Layers"]) == layers, name
        assert function["Properties"]["Runtime"] == LAMBDA_PYTHON_RUNTIME
        assert function["Properties"]["Handler"] == "handler.handler"


def test_function_assets_hold_their_handler_the_package_and_the_models(synthesized: SynthesizedApp) -> None:
    for name in (synthesized.names.prepare_function, synthesized.names.run_failed_function):
        _, function = _function(synthesized.pipeline, name)
        asset = (
            synthesized.assembly_dir / f"asset.{function['Properties']['Code']['S3Key'].removesuffix('.zip')}"
        )
        assert (asset / "handler.py").is_file()
        assert (asset / "models.json").is_file()
        assert (asset / "headrace" / "training" / "gate.py").is_file()
        assert not (asset / "headrace" / "local").exists()


def test_models_share_one_set_of_training_functions_and_get_one_machine_each(variants: Template) -> None:
    # A training, a deploy, a drift-check, a quality-check and a batch workflow per model.
    variants.resource_count_is("AWS::StepFunctions::StateMachine", 15)
    # Four training steps, three deploy steps, three drift-check and three quality-check steps, two batch
    # steps, retrain and ingest.
    variants.resource_count_is("AWS::Lambda::Function", 17)


# --- permissions ----------------------------------------------------------------------------------------


def test_the_state_machine_may_run_training_jobs_of_its_model_only(synthesized: SynthesizedApp) -> None:
    _, machine = _machine(synthesized.pipeline, synthesized.names, "churn")
    grants = _grants(synthesized.role_statements(machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]))
    sagemaker = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}"
    jobs = f"{sagemaker}:training-job/churn-????????????-????????"
    for action in ("CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob", "AddTags"):
        assert {resource for a, resource in grants if a == f"sagemaker:{action}"} == {jobs}
    rule = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/"
    assert ("events:PutRule", f"{rule}StepFunctionsGetEventsForSageMakerTrainingJobsRule") in grants
    invoked = {resource for action, resource in grants if action == "lambda:InvokeFunction"}
    assert len({r.removesuffix(":*") for r in invoked}) == 4


def test_the_state_machine_passes_only_the_models_sagemaker_role_to_sagemaker(
    synthesized: SynthesizedApp,
) -> None:
    _, machine = _machine(synthesized.pipeline, synthesized.names, "churn")
    statements = synthesized.role_statements(machine["Properties"]["RoleArn"]["Fn::GetAtt"][0])
    [passing] = [s for s in statements if "iam:PassRole" in _as_list(s["Action"])]
    role_arn = _states(synthesized)["Train"]["Parameters"]["RoleArn"]
    assert render(passing["Resource"]) == role_arn
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def _sagemaker_role(synthesized: SynthesizedApp) -> str:
    role_arn = _states(synthesized)["Train"]["Parameters"]["RoleArn"]
    return str(role_arn).strip("<>").removesuffix(".Arn")


def test_training_jobs_read_splits_and_write_output_and_checkpoints_of_their_model_only(
    synthesized: SynthesizedApp,
) -> None:
    role_id = _sagemaker_role(synthesized)
    role = synthesized.pipeline.to_json()["Resources"][role_id]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "sagemaker.amazonaws.com"
    }
    grants = _grants(synthesized.role_statements(role_id))
    bucket = _bucket_arn(synthesized)
    reads = {resource for action, resource in grants if action == "s3:GetObject*"}
    writes = {resource for action, resource in grants if action.startswith(("s3:Put", "s3:Delete"))}
    runs = f"{bucket}/churn/runs/*"
    assert reads == {bucket, f"{runs}/splits/*", f"{runs}/checkpoints/*"}
    assert writes == {f"{runs}/output/*", f"{runs}/checkpoints/*"}
    assert not {action for action, _ in grants if action.startswith("s3:Delete")}
    assert ("kms:CreateGrant", _key_arn(synthesized)) in grants
    assert {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"} <= {action for action, _ in grants}
    assert "logs:PutLogEvents" in {action for action, _ in grants}


def test_the_training_functions_touch_only_their_own_objects(synthesized: SynthesizedApp) -> None:
    bucket = _bucket_arn(synthesized)
    names = synthesized.names

    def s3(name: str, prefix: tuple[str, ...]) -> set[str]:
        return {r for a, r in _function_grants(synthesized, name) if a.startswith(prefix)}

    # Prepare also copies the champion's artifact into the run's champion channel (issue 16).
    assert s3(names.prepare_function, ("s3:GetObject",)) == {
        bucket,
        f"{bucket}/*/datasets/*",
        f"{bucket}/*/runs/*/output/*",
    }
    assert s3(names.prepare_function, ("s3:Put",)) == {f"{bucket}/*/runs/*/splits/*"}
    assert s3(names.evaluate_function, ("s3:GetObject",)) == {bucket, f"{bucket}/*/runs/*/output/*"}
    assert s3(names.evaluate_function, ("s3:Put",)) == {f"{bucket}/*/runs/*/evaluation.json"}
    assert s3(names.register_function, ("s3:GetObject",)) == set()
    assert s3(names.register_function, ("s3:Put",)) == {f"{bucket}/*/runs/*/lineage.json"}
    assert s3(names.run_failed_function, ("s3:",)) == set()
    for name in (
        names.prepare_function,
        names.evaluate_function,
        names.register_function,
        names.run_failed_function,
    ):
        assert not s3(name, ("s3:Delete",))


def test_register_may_create_versions_in_the_models_package_group_only(synthesized: SynthesizedApp) -> None:
    grants = _function_grants(synthesized, synthesized.names.register_function)
    arn = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}"
    group = synthesized.names.model_package_group("churn")
    assert {r for a, r in grants if a == "sagemaker:CreateModelPackage"} == {
        f"{arn}:model-package-group/{group}",
        f"{arn}:model-package/{group}/*",
    }
    assert {r for a, r in grants if a == "sagemaker:CreateModelPackageGroup"} == {
        f"{arn}:model-package-group/{group}"
    }
    # ListModelPackages has no resource-level permissions.
    assert {r for a, r in grants if a == "sagemaker:ListModelPackages"} == {"*"}
    assert not {a for a, _ in grants if a in ("sagemaker:UpdateModelPackage", "sagemaker:DeleteModelPackage")}


def test_evaluate_may_only_read_the_registry(synthesized: SynthesizedApp) -> None:
    actions = {
        a
        for a, _ in _function_grants(synthesized, synthesized.names.evaluate_function)
        if a.startswith("sagemaker:")
    }
    assert actions == {"sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"}


def test_run_failed_may_put_events_on_the_default_bus_and_nothing_in_the_registry(
    synthesized: SynthesizedApp,
) -> None:
    grants = _function_grants(synthesized, synthesized.names.run_failed_function)
    bus = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
    assert {r for a, r in grants if a == "events:PutEvents"} == {bus}
    assert not {a for a, _ in grants if a.startswith("sagemaker:")}


# --- config errors ---------------------------------------------------------------------------------------


def test_a_validation_fraction_that_leaves_nothing_to_train_on_fails_the_synth(
    synthesized: SynthesizedApp, tmp_path: Path
) -> None:
    churn = next(m for m in synthesized.models if m.name == "churn")
    greedy = churn.model_copy(
        update={"trainer": churn.trainer.model_copy(update={"validation_fraction": 0.6})}
    )
    with pytest.raises(ValueError, match=r"model 'churn': trainer.validation_fraction 0.6"):
        build_app("dev", [greedy], str(tmp_path))


def test_a_gate_metric_of_unknown_direction_fails_the_synth(
    synthesized: SynthesizedApp, tmp_path: Path
) -> None:
    churn = next(m for m in synthesized.models if m.name == "churn")
    odd = churn.model_copy(update={"gate": churn.gate.model_copy(update={"metric": "kappa"})})
    with pytest.raises(ValueError, match="'kappa'"):
        build_app("dev", [odd], str(tmp_path))
