"""Issue 12's review findings that the synthesized templates and the metric emitters show: each test fails on
the code as the review found it, and cites the AWS (or publisher) page that states the rule."""

from __future__ import annotations

import importlib.util
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import numpy as np
import pytest
from aws_cdk.assertions import Template
from aws_lambda_powertools import Metrics

from headrace.aws.metrics import PowertoolsMetrics
from headrace.layers import AWS_SDK_PANDAS_LAYER_PARAMETER, POWERTOOLS_LAYER_PARAMETER
from headrace.local.aws import Clients
from headrace.local.cloudformation import ProvisionError
from headrace.local.cloudformation.public_parameters import PublicParameters, check_documented
from headrace.local.telemetry import emf_metric_data
from headrace.monitoring.aws import PowertoolsDriftMetrics
from headrace.naming import STAGE_DIMENSION, Names
from headrace.serving import rollout
from headrace.stages import load_stage
from stacks.app_builder import build_app
from stacks.training import SYNC_RULE
from tests.support.synth import SynthesizedApp, render, stack_template

REPO = Path(__file__).resolve().parents[2]
MODEL = "churn"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _machine_statements(synthesized: SynthesizedApp, machine_name: str) -> list[dict[str, Any]]:
    [machine] = synthesized.pipeline.find_resources(
        "AWS::StepFunctions::StateMachine", {"Properties": {"StateMachineName": machine_name}}
    ).values()
    return synthesized.role_statements(machine["Properties"]["RoleArn"]["Fn::GetAtt"][0])


def _key_arn(synthesized: SynthesizedApp) -> str:
    [key_id] = synthesized.data.find_resources("AWS::KMS::Key")
    return f"<import:{synthesized.data_export({'Fn::GetAtt': [key_id, 'Arn']})}>"


def _states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state of a definition, those inside Map and Parallel states included."""
    for name, state in definition.get("States", {}).items():
        yield name, state
        for inner in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if inner:
                yield from _states(inner)


def _definitions(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    for machine in template.find_resources("AWS::StepFunctions::StateMachine").values():
        properties = machine["Properties"]
        yield properties["StateMachineName"], json.loads(render(properties["DefinitionString"]))


# --- 1. the managed layers' SSM parameter names -------------------------------------------------------------

# The names as the publishers document them, written here apart from headrace/layers.py:
# Powertools for AWS Lambda (Python), https://docs.powertools.aws.dev/lambda/python/latest/#lambda-layer
# ("SSM Parameter Store": /aws/service/powertools/python/<architecture>/<runtime>/<version>).
POWERTOOLS_DOCUMENTED = re.compile(
    r"/aws/service/powertools/python/(x86_64|arm64)/python3\.\d+/\d+\.\d+\.\d+"
)
# AWS SDK for pandas, https://aws-sdk-pandas.readthedocs.io/en/stable/install.html ("AWS Lambda Layer",
# "Managed Layer": /aws/service/aws-sdk-pandas/3.4.0/py3.10/x86_64/layer-arn, no region in the name).
PANDAS_DOCUMENTED = re.compile(r"/aws/service/aws-sdk-pandas/\d+\.\d+\.\d+/py3\.\d+/(x86_64|arm64)/layer-arn")
# The name the review found, with a region inside: a form added to those docs and reverted
# (aws/aws-sdk-pandas pull requests 2486 and 2489).
REGIONAL_PANDAS_NAME = "/aws/service/aws-sdk-pandas/3.14.0/us-east-1/py3.12/x86_64/layer-arn"


def test_the_managed_layer_parameter_names_are_the_publishers_documented_ones() -> None:
    assert POWERTOOLS_DOCUMENTED.fullmatch(POWERTOOLS_LAYER_PARAMETER), POWERTOOLS_LAYER_PARAMETER
    assert PANDAS_DOCUMENTED.fullmatch(AWS_SDK_PANDAS_LAYER_PARAMETER), AWS_SDK_PANDAS_LAYER_PARAMETER


def test_every_public_ssm_name_the_pipeline_reads_is_documented(synthesized: SynthesizedApp) -> None:
    template = synthesized.pipeline.to_json()
    read = {
        p["Default"]
        for p in template.get("Parameters", {}).values()
        if str(p.get("Type", "")).startswith("AWS::SSM::Parameter::Value")
        and p["Default"].startswith("/aws/")
    }
    assert read == {POWERTOOLS_LAYER_PARAMETER, AWS_SDK_PANDAS_LAYER_PARAMETER}
    # No dynamic reference either (that is how the regional name was read).
    assert "resolve:ssm:/aws/" not in json.dumps(template)


def test_the_local_plane_publishes_only_the_documented_layer_parameters() -> None:
    for documented in (POWERTOOLS_LAYER_PARAMETER, AWS_SDK_PANDAS_LAYER_PARAMETER):
        check_documented(documented)
    with pytest.raises(ProvisionError, match=re.escape(REGIONAL_PANDAS_NAME)):
        check_documented(REGIONAL_PANDAS_NAME)
    # Provisioning a template that reads it fails before anything is published.
    parameters = PublicParameters(cast(Clients, object()))
    layer = {"Type": "AWS::SSM::Parameter::Value<String>", "Default": REGIONAL_PANDAS_NAME}
    template: dict[str, Any] = {"Parameters": {"Layer": layer}}
    with pytest.raises(ProvisionError, match="does not publish"):
        parameters.publish_template_parameters(template)


# --- 2. kms:CreateGrant for CreateEndpoint with an endpoint config's KmsKeyId -------------------------------


def test_the_deploy_machine_may_create_grants_on_the_data_key_for_sagemaker(
    synthesized: SynthesizedApp,
) -> None:
    """CreateEndpoint needs kms:CreateGrant when the endpoint config has a KmsKeyId
    (https://docs.aws.amazon.com/sagemaker/latest/dg/api-permissions-reference.html); Plan's configs do."""
    config = rollout.endpoint_config_request(
        next(m for m in synthesized.models if m.name == MODEL),
        synthesized.names,
        name="n",
        version=1,
        capture_uri="s3://b/k",
        key_arn="arn:aws:kms:us-east-1:111122223333:key/k",
    )
    assert config["KmsKeyId"]
    grants = [
        s
        for s in _machine_statements(synthesized, synthesized.names.deploy_state_machine(MODEL))
        if "kms:CreateGrant" in _as_list(s["Action"])
    ]
    assert [[render(r) for r in _as_list(s["Resource"])] for s in grants] == [[_key_arn(synthesized)]]
    assert grants[0]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_the_data_key_policy_lets_iam_policies_allow_its_use(synthesized: SynthesizedApp) -> None:
    """A key policy must allow an action before an IAM policy can (the account root statement delegates)."""
    [key] = synthesized.data.find_resources("AWS::KMS::Key").values()
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    delegating = [
        s
        for s in statements
        if s["Effect"] == "Allow"
        and "kms:*" in _as_list(s["Action"])
        and ":root" in json.dumps(s["Principal"])
        and "Condition" not in s
    ]
    assert delegating, statements


# --- 5. what createTrainingJob.sync needs; no PutMetricData for the hosting role ----------------------------


def test_the_training_machine_has_step_functions_documented_policy_for_sync_jobs(
    synthesized: SynthesizedApp,
) -> None:
    """https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html, CreateTrainingJob, "Run a Job
    (.sync)": the job calls, sagemaker:ListTags on "*", iam:PassRole, and the managed rule's events calls."""
    statements = _machine_statements(synthesized, synthesized.names.training_state_machine(MODEL))
    granted = {
        (action, render(resource))
        for s in statements
        for action in _as_list(s["Action"])
        for resource in _as_list(s["Resource"])
    }
    assert ("sagemaker:ListTags", "*") in granted
    for action in (
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
    ):
        assert any(a == action and "training-job/" in r for a, r in granted), action
    assert any(a == "iam:PassRole" for a, _ in granted)
    for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule"):
        assert any(a == action and r.endswith(f":rule/{SYNC_RULE}") for a, r in granted), action


def test_the_serving_container_publishes_metrics_through_its_log_not_put_metric_data(
    synthesized: SynthesizedApp,
) -> None:
    """The hosting role needs no cloudwatch:PutMetricData: SageMaker publishes the endpoint's own metrics, and
    the container's InvalidPredictions are EMF lines in its log (CloudWatch Logs extracts them; writing the
    log is the only permission EMF needs, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
    CloudWatch_Embedded_Metric_Format_Specification.html)."""
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "containers/serve").rglob("*.py"))
    assert "put_metric_data" not in sources and "boto3" not in sources
    hosting = synthesized.pipeline.find_resources(
        "AWS::IAM::Role", {"Properties": {"Description": f"Endpoint containers of Headrace model {MODEL}"}}
    )
    [role_id] = hosting
    actions = {a for s in synthesized.role_statements(role_id) for a in _as_list(s["Action"])}
    assert "logs:PutLogEvents" in actions
    assert "cloudwatch:PutMetricData" not in actions


# --- 6. every custom metric carries the stage ---------------------------------------------------------------


@pytest.fixture(scope="module")
def prod(synthesized: SynthesizedApp, tmp_path_factory: pytest.TempPathFactory) -> Template:
    names = Names("prod")
    app = build_app(
        names.stage, synthesized.models, str(tmp_path_factory.mktemp("prod.out")), settings=load_stage("prod")
    )
    return stack_template(app, names.pipeline_stack)


def _custom_metric_alarms(template: Template, namespace: str) -> dict[str, frozenset[tuple[str, str]]]:
    """Each alarm on one of Headrace's own metrics: its metric identity (name and dimensions)."""
    found = {}
    for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        if properties.get("Namespace") != namespace:
            continue
        dimensions = frozenset((d["Name"], render(d["Value"])) for d in properties.get("Dimensions", []))
        found[properties["MetricName"] + ":" + properties["AlarmName"]] = frozenset(
            {("MetricName", properties["MetricName"]), *dimensions}
        )
    return found


def test_dev_and_prod_alarms_select_distinct_metrics(synthesized: SynthesizedApp, prod: Template) -> None:
    namespace = synthesized.names.metric_namespace
    dev_alarms = _custom_metric_alarms(synthesized.pipeline, namespace)
    prod_alarms = _custom_metric_alarms(prod, namespace)
    assert any(name.startswith(rollout.QUALITY_METRIC) for name in dev_alarms)
    assert not set(dev_alarms.values()) & set(prod_alarms.values())
    for stage, alarms in (("dev", dev_alarms), ("prod", prod_alarms)):
        for name, identity in alarms.items():
            assert (STAGE_DIMENSION, stage) in identity, name


def test_the_dashboard_draws_the_stage_s_own_custom_metrics(synthesized: SynthesizedApp) -> None:
    namespace = synthesized.names.metric_namespace
    [board] = synthesized.pipeline.find_resources(
        "AWS::CloudWatch::Dashboard", {"Properties": {"DashboardName": synthesized.names.dashboard(MODEL)}}
    ).values()
    body = json.loads(render(board["Properties"]["DashboardBody"]))
    drawn = [
        m
        for widget in body["widgets"]
        for m in widget.get("properties", {}).get("metrics", [])
        if isinstance(m, list) and m and m[0] == namespace
    ]
    assert drawn
    for metric in drawn:
        pairs = dict(zip(metric[2:-1:2], metric[3:-1:2], strict=True))
        assert pairs.get(STAGE_DIMENSION) == synthesized.names.stage, metric


def _load_quality_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "serve_quality", REPO / "containers/serve/inference/quality.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_serving_container_reports_invalid_predictions_with_its_stage(
    synthesized: SynthesizedApp,
) -> None:
    names = Names("prod")
    environment = rollout.model_request(
        next(m for m in synthesized.models if m.name == MODEL),
        names,
        name="m",
        version=1,
        image="i",
        model_data_url="s3://b/k",
        role_arn="arn:aws:iam::111122223333:role/r",
    )["PrimaryContainer"]["Environment"]
    out = io.StringIO()
    quality = _load_quality_module()
    health = quality.PredictionHealth.from_environ("binary:logistic", environment)
    health._out = out
    health.observe(np.array([0.5, 2.0]))
    health.flush()
    record = json.loads(out.getvalue())
    namespace, data = emf_metric_data(record) or ("", [])
    assert namespace == names.metric_namespace
    invalid = [d for d in data if d["MetricName"] == rollout.QUALITY_METRIC]
    assert invalid and invalid[0]["Value"] == 1.0
    assert {"Name": STAGE_DIMENSION, "Value": "prod"} in invalid[0]["Dimensions"]


def test_function_counters_carry_the_stage() -> None:
    metrics = Metrics(namespace="Headrace", service="headrace-prod-ingest")
    try:
        PowertoolsMetrics(metrics, "prod").count("DatasetsAccepted", MODEL)
        emitted = metrics.serialize_metric_set()
    finally:
        metrics.clear_metrics()
    [directive] = emitted["_aws"]["CloudWatchMetrics"]
    assert STAGE_DIMENSION in directive["Dimensions"][0]
    assert emitted[STAGE_DIMENSION] == "prod"


def test_drift_metrics_carry_the_stage(capsys: pytest.CaptureFixture[str]) -> None:
    PowertoolsDriftMetrics("Headrace", "prod").rows(MODEL, 10)
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert STAGE_DIMENSION in directive["Dimensions"][0]
    assert line[STAGE_DIMENSION] == "prod"


# --- 7. SageMaker errors that are not transient fail fast ---------------------------------------------------


def test_no_sagemaker_task_retries_errors_that_are_not_transient(synthesized: SynthesizedApp) -> None:
    """AmazonSageMakerException carries AccessDenied and validation errors; only throttling, unavailability
    and internal failures are transient (https://docs.aws.amazon.com/sagemaker/latest/APIReference/
    CommonErrors.html)."""
    checked = 0
    for machine, definition in _definitions(synthesized.pipeline):
        for name, state in _states(definition):
            if state.get("Type") != "Task" or ":sagemaker:" not in str(state.get("Resource", "")):
                continue
            checked += 1
            for retry in state.get("Retry", []):
                errors = set(retry["ErrorEquals"])
                assert "SageMaker.AmazonSageMakerException" not in errors, (machine, name)
                assert not errors & {"States.ALL", "States.TaskFailed"}, (machine, name)
    assert checked
