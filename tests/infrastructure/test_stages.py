"""One config, several stages (stages.yaml): what `-c stage=prod` changes in the synthesized templates, and
the security, observability and cost pieces every stage has (alerts topic, alarm routing, dashboards,
budget, audit trail, network isolation, the endpoint invoke role)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from headrace.config import ModelConfig, parse_models_document
from headrace.ingest import service as ingest_service
from headrace.naming import Names, Outputs
from headrace.serving import rollout
from headrace.stages import StagesError, StageSettings, VpcSettings, load_stage, parse_stages
from headrace.training import evaluate, prepare, register, run_failed
from headrace.training.settings import RegisterSettings
from stacks import dashboard
from stacks.app_builder import build_app
from tests.support.synth import SynthesizedApp, render, stack_template

REPO = Path(__file__).resolve().parents[2]
VPC = VpcSettings(subnet_ids=["subnet-0123456789abcdef0"], security_group_ids=["sg-0123456789abcdef0"])
EMAIL = "ml-oncall@example.com"


@dataclass(frozen=True)
class Stage:
    names: Names
    settings: StageSettings
    models: list[ModelConfig]
    data: Template
    pipeline: Template
    assembly_dir: Path

    def resources(self, template: Template, resource_type: str) -> dict[str, Any]:
        return dict(template.find_resources(resource_type))

    def only(self, template: Template, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(template, resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))

    def export_of(self, value: Any) -> dict[str, str]:
        """How the pipeline stack imports the data stack's `value`."""
        [name] = [
            output["Export"]["Name"]
            for output in self.data.find_outputs("*").values()
            if output.get("Export") and output["Value"] == value
        ]
        return {"Fn::ImportValue": name}

    def environment(self, function_name: str) -> dict[str, Any]:
        [function] = self.pipeline.find_resources(
            "AWS::Lambda::Function", {"Properties": {"FunctionName": function_name}}
        ).values()
        variables: dict[str, Any] = function["Properties"]["Environment"]["Variables"]
        return variables

    def shipped_models(self, function_name: str) -> dict[str, ModelConfig]:
        """The models.json in the function's asset: the models as this stage deploys them."""
        [function] = self.pipeline.find_resources(
            "AWS::Lambda::Function", {"Properties": {"FunctionName": function_name}}
        ).values()
        return _asset_models(self.assembly_dir, function)

    def state_machine(self, name: str) -> dict[str, Any]:
        [machine] = self.pipeline.find_resources(
            "AWS::StepFunctions::StateMachine", {"Properties": {"StateMachineName": name}}
        ).values()
        definition: dict[str, Any] = json.loads(render(machine["Properties"]["DefinitionString"]))
        return definition

    def role_statements(self, template: Template, description: str) -> list[dict[str, Any]]:
        [role_id] = template.find_resources("AWS::IAM::Role", {"Properties": {"Description": description}})
        policies = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}})
        return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _asset_models(assembly_dir: Path, function: dict[str, Any]) -> dict[str, ModelConfig]:
    asset = assembly_dir / f"asset.{function['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    return parse_models_document((asset / "models.json").read_text(encoding="utf-8"))


def _synth(stage: str, settings: StageSettings, models: list[ModelConfig], outdir: Path) -> Stage:
    names = Names(stage)
    app = build_app(stage, models, str(outdir), settings=settings)
    return Stage(
        names=names,
        settings=settings,
        models=models,
        data=stack_template(app, names.data_stack),
        pipeline=stack_template(app, names.pipeline_stack),
        assembly_dir=outdir,
    )


@pytest.fixture(scope="module")
def dev(synthesized: SynthesizedApp) -> Stage:
    return Stage(
        names=synthesized.names,
        settings=load_stage("dev"),
        models=synthesized.models,
        data=synthesized.data,
        pipeline=synthesized.pipeline,
        assembly_dir=synthesized.assembly_dir,
    )


@pytest.fixture(scope="module")
def prod(synthesized: SynthesizedApp, tmp_path_factory: pytest.TempPathFactory) -> Stage:
    return _synth("prod", load_stage("prod"), synthesized.models, tmp_path_factory.mktemp("prod.out"))


@pytest.fixture(scope="module")
def prod_in_a_vpc(synthesized: SynthesizedApp, tmp_path_factory: pytest.TempPathFactory) -> Stage:
    settings = load_stage("prod").model_copy(update={"vpc": VPC, "alarm_email": EMAIL})
    return _synth("prod", settings, synthesized.models, tmp_path_factory.mktemp("prodvpc.out"))


@pytest.fixture(params=["dev", "prod"])
def each_stage(request: pytest.FixtureRequest) -> Stage:
    stage: Stage = request.getfixturevalue(request.param)
    return stage


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- the stages file ----------------------------------------------------------------------------------------


def test_the_shipped_stages_file_makes_prod_strict_and_dev_cheap() -> None:
    dev, prod = load_stage("dev"), load_stage("prod")
    assert (dev.approval, prod.approval) == ("model", "manual")
    assert (dev.removal, prod.removal) == ("destroy", "retain")
    assert dev.log_retention_days < prod.log_retention_days
    assert (dev.cloudtrail_data_events, prod.cloudtrail_data_events) == (False, True)
    assert (dev.network_isolation, prod.network_isolation) == (False, True)
    assert dev.budget_usd and prod.budget_usd and dev.budget_usd < prod.budget_usd


def test_a_stage_the_file_does_not_name_gets_the_defaults() -> None:
    assert load_stage("qa") == StageSettings()


def test_a_stages_file_with_a_bad_field_names_the_file_the_stage_and_the_field(tmp_path: Path) -> None:
    source = tmp_path / "stages.yaml"
    with pytest.raises(StagesError) as raised:
        parse_stages({"dev": {}, "prod": {"aproval": "manual", "budget_usd": -1}}, source)
    message = str(raised.value)
    assert str(source) in message
    assert "prod.aproval: unknown field" in message
    assert "prod.budget_usd:" in message
    with pytest.raises(StagesError, match="prod: log_retention_days 31 is not one of 1, 3, 5"):
        parse_stages({"prod": {"log_retention_days": 31}}, source)


def test_synth_with_a_broken_stages_file_exits_2_before_anything_is_written(tmp_path: Path) -> None:
    stages = tmp_path / "stages.yaml"
    stages.write_text("prod:\n  approval: sometimes\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CDK_", "HEADRACE_"))}
    done = subprocess.run(
        [sys.executable, str(REPO / "app.py"), "-c", "stage=prod", "-c", f"stages_file={stages}"],
        cwd=REPO,
        env={**environ, "CDK_OUTDIR": str(tmp_path / "cdk.out")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert str(stages) in done.stderr and "prod.approval" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "cdk.out").exists()


# --- approval, retention, removal ------------------------------------------------------------------------


def test_register_approves_as_each_model_says_in_dev_and_only_by_hand_in_prod(
    dev: Stage, prod: Stage
) -> None:
    # The stage's policy reaches Register in the models it ships (StageSettings.apply), as the serving
    # overrides reach Plan: no variable of its own.
    dev_models = dev.shipped_models(dev.names.register_function).values()
    assert {m.name: m.gate.approval for m in dev_models} == {m.name: m.gate.approval for m in dev.models}
    prod_models = prod.shipped_models(prod.names.register_function).values()
    assert {m.gate.approval for m in prod_models} == {"manual"}
    # Exactly what the Register function's settings parse (besides the local-only models folder).
    parsed = set(RegisterSettings.variables()) - {"HEADRACE_MODELS_DIR"}
    assert set(prod.environment(prod.names.register_function)) == parsed


def test_every_log_group_keeps_logs_as_long_as_its_stage_says(each_stage: Stage) -> None:
    groups = each_stage.resources(each_stage.pipeline, "AWS::Logs::LogGroup")
    assert len(groups) >= len(each_stage.resources(each_stage.pipeline, "AWS::Lambda::Function"))
    expected = "Retain" if each_stage.settings.retains_data else "Delete"
    for logical_id, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == each_stage.settings.log_retention_days, logical_id
        assert group["DeletionPolicy"] == expected, logical_id


def test_every_log_group_is_encrypted_with_the_stage_key_which_cloudwatch_logs_may_use_for_it(
    each_stage: Stage,
) -> None:
    key_id, key = each_stage.only(each_stage.data, "AWS::KMS::Key")
    stage_key = each_stage.export_of({"Fn::GetAtt": [key_id, "Arn"]})
    [grant] = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "CloudWatchLogsEncryptsTheStageLogGroups"
    ]
    patterns = [render(p) for p in grant["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]]
    prefixes = [p.split(":log-group:", 1)[1].removesuffix("*") for p in patterns]
    assert not any(a.endswith("*") and a != "kms:GenerateDataKey*" for a in _as_list(grant["Action"]))
    for logical_id, group in each_stage.resources(each_stage.pipeline, "AWS::Logs::LogGroup").items():
        assert group["Properties"]["KmsKeyId"] == stage_key, logical_id
        assert group["Properties"]["LogGroupName"].startswith(tuple(prefixes)), logical_id


def test_eventbridge_may_use_the_stage_key_for_the_dead_letter_queues_of_this_account_only(
    each_stage: Stage,
) -> None:
    _, key = each_stage.only(each_stage.data, "AWS::KMS::Key")
    [grant] = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "EventBridgeEncryptsUndeliveredEvents"
    ]
    assert grant["Principal"] == {"Service": "events.amazonaws.com"}
    assert grant["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


@pytest.mark.parametrize(
    "resource_type", ["AWS::KMS::Key", "AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::SNS::Topic"]
)
def test_stateful_resources_outlive_the_stack_in_prod_and_go_with_it_in_dev(
    dev: Stage, prod: Stage, resource_type: str
) -> None:
    kept = {"AWS::SNS::Topic"}  # no data in it; CloudFormation's default (delete) in both
    for stage, policy in ((dev, "Delete"), (prod, "Retain")):
        for logical_id, resource in stage.resources(stage.data, resource_type).items():
            expected = "Delete" if resource_type in kept else policy
            assert resource.get("DeletionPolicy", "Delete") == expected, (stage.names.stage, logical_id)


def test_a_dev_key_is_deleted_a_week_after_its_stack_and_a_prod_key_never(dev: Stage, prod: Stage) -> None:
    _, dev_key = dev.only(dev.data, "AWS::KMS::Key")
    _, prod_key = prod.only(prod.data, "AWS::KMS::Key")
    assert dev_key["Properties"]["PendingWindowInDays"] == 7
    assert "PendingWindowInDays" not in prod_key["Properties"]
    assert prod_key["Properties"]["EnableKeyRotation"] is True


def test_prod_synth_reads_prod_s_policies_from_the_stages_file(tmp_path: Path) -> None:
    """The CLI's way in (`cdk synth -c stage=prod`): context in, stages.yaml's prod section applied."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CDK_", "HEADRACE_"))}
    done = subprocess.run(
        [sys.executable, str(REPO / "app.py"), "-c", "stage=prod"],
        cwd=REPO,
        env={**environ, "CDK_OUTDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    prod = Names("prod")
    data = json.loads((tmp_path / f"{prod.data_stack}.template.json").read_text())
    pipeline = json.loads((tmp_path / f"{prod.pipeline_stack}.template.json").read_text())
    types = {r["Type"] for r in data["Resources"].values()}
    assert "AWS::CloudTrail::Trail" in types
    assert {
        r.get("DeletionPolicy") for r in data["Resources"].values() if r["Type"] == "AWS::S3::Bucket"
    } == {"Retain"}
    [register_fn] = [
        r
        for r in pipeline["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["FunctionName"] == prod.register_function
    ]
    assert {m.gate.approval for m in _asset_models(tmp_path, register_fn).values()} == {"manual"}


# --- alerts: the topic, what publishes to it, the budget -------------------------------------------------


def test_every_alarm_notifies_the_stage_s_alerts_topic(each_stage: Stage) -> None:
    topic_id, _ = each_stage.only(each_stage.data, "AWS::SNS::Topic")
    topic = each_stage.export_of({"Ref": topic_id})
    alarms = each_stage.resources(each_stage.pipeline, "AWS::CloudWatch::Alarm")
    # Three rollout guards, the drift alarm and the live-quality alarm per model.
    assert len(alarms) == 5 * len(each_stage.models)
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [topic], logical_id


def test_the_alerts_topic_is_encrypted_with_the_stage_key_and_takes_tls_only(each_stage: Stage) -> None:
    key_id, key = each_stage.only(each_stage.data, "AWS::KMS::Key")
    topic_id, topic = each_stage.only(each_stage.data, "AWS::SNS::Topic")
    assert topic["Properties"]["TopicName"] == each_stage.names.alerts_topic
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    [policy] = each_stage.data.find_resources(
        "AWS::SNS::TopicPolicy", {"Properties": {"Topics": [{"Ref": topic_id}]}}
    ).values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {"Bool": {"aws:SecureTransport": "false"}} in [
        s.get("Condition") for s in statements if s["Effect"] == "Deny"
    ]
    publishers = {s["Principal"]["Service"]: s for s in statements if s["Effect"] == "Allow"}
    assert set(publishers) == {"cloudwatch.amazonaws.com", "budgets.amazonaws.com"}
    for statement in publishers.values():
        assert statement["Action"] == "sns:Publish"
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    # The same services may use the key, or their messages could not be encrypted.
    [grant] = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "AlertPublishersEncryptMessages"
    ]
    assert set(grant["Principal"]["Service"]) == set(publishers)
    assert grant["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_the_data_stack_outputs_the_alerts_topic(each_stage: Stage) -> None:
    topic_id, _ = each_stage.only(each_stage.data, "AWS::SNS::Topic")
    each_stage.data.has_output(Outputs.ALERTS_TOPIC, {"Value": {"Ref": topic_id}})


def test_an_alarm_address_is_subscribed_only_where_a_stage_names_one(
    dev: Stage, prod_in_a_vpc: Stage
) -> None:
    assert not dev.resources(dev.data, "AWS::SNS::Subscription")
    topic_id, _ = prod_in_a_vpc.only(prod_in_a_vpc.data, "AWS::SNS::Topic")
    prod_in_a_vpc.data.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": EMAIL, "TopicArn": {"Ref": topic_id}}
    )


def test_each_stage_has_a_monthly_cost_budget_of_its_own_amount_reporting_to_the_topic(
    each_stage: Stage,
) -> None:
    topic_id, _ = each_stage.only(each_stage.data, "AWS::SNS::Topic")
    _, budget = each_stage.only(each_stage.data, "AWS::Budgets::Budget")
    data = budget["Properties"]["Budget"]
    assert data["BudgetName"] == each_stage.names.budget
    assert (data["BudgetType"], data["TimeUnit"]) == ("COST", "MONTHLY")
    assert data["BudgetLimit"] == {"Amount": each_stage.settings.budget_usd, "Unit": "USD"}
    assert data["CostFilters"] == {"TagKeyValue": [f"user:headrace:stage${each_stage.names.stage}"]}
    notifications = budget["Properties"]["NotificationsWithSubscribers"]
    assert {n["Notification"]["NotificationType"] for n in notifications} == {"ACTUAL", "FORECASTED"}
    for notification in notifications:
        assert notification["Subscribers"] == [{"SubscriptionType": "SNS", "Address": {"Ref": topic_id}}]
    assert any(dependency.startswith("AlertsTopicPolicy") for dependency in budget["DependsOn"])


def test_a_stage_without_a_budget_amount_gets_no_budget(synthesized: SynthesizedApp, tmp_path: Path) -> None:
    stage = _synth("qa", StageSettings(), synthesized.models, tmp_path)
    assert not stage.resources(stage.data, "AWS::Budgets::Budget")


# --- audit trail -----------------------------------------------------------------------------------------


def test_prod_records_every_read_and_write_of_the_data_bucket_in_a_trail_of_its_own(
    dev: Stage, prod: Stage
) -> None:
    assert not dev.resources(dev.data, "AWS::CloudTrail::Trail")
    key_id, key = prod.only(prod.data, "AWS::KMS::Key")
    _, trail = prod.only(prod.data, "AWS::CloudTrail::Trail")
    properties = trail["Properties"]
    assert properties["TrailName"] == prod.names.audit_trail
    assert properties["KMSKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert properties["EnableLogFileValidation"] is True
    [selector] = properties["EventSelectors"]
    assert selector["ReadWriteType"] == "All" and selector["IncludeManagementEvents"] is False
    [data_resource] = selector["DataResources"]
    assert data_resource["Type"] == "AWS::S3::Object"
    assert render(data_resource["Values"][0]).endswith(".Arn>/")
    assert data_resource["Values"][0]["Fn::Join"][1][0]["Fn::GetAtt"][0].startswith("DataStoreBucket")
    # CloudTrail may encrypt with the stage key for this trail only.
    cloudtrail = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    ]
    assert {tuple(_as_list(s["Action"])) for s in cloudtrail} == {
        ("kms:GenerateDataKey*",),
        ("kms:DescribeKey",),
    }
    for statement in cloudtrail:
        assert render(statement["Condition"]["StringEquals"]["aws:SourceArn"]).endswith(
            f":trail/{prod.names.audit_trail}"
        )
    prod.data.has_output(Outputs.AUDIT_TRAIL, {"Value": prod.names.audit_trail})


def test_the_trail_s_bucket_is_private_tls_only_and_logs_its_own_access(prod: Stage) -> None:
    _, trail = prod.only(prod.data, "AWS::CloudTrail::Trail")
    bucket_id = trail["Properties"]["S3BucketName"]["Ref"]
    bucket = prod.data.to_json()["Resources"][bucket_id]
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    assert "LoggingConfiguration" in bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    statements = [
        s
        for policy in prod.data.find_resources(
            "AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": bucket_id}}}
        ).values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert {"Bool": {"aws:SecureTransport": "false"}} in [s.get("Condition") for s in statements]


# --- network isolation and VPC -----------------------------------------------------------------------------


def _train_parameters(stage: Stage, model: str) -> dict[str, Any]:
    parameters: dict[str, Any] = stage.state_machine(stage.names.training_state_machine(model))["States"][
        "Train"
    ]["Parameters"]
    return parameters


def _plan_network(stage: Stage, model: str) -> dict[str, Any]:
    payload = stage.state_machine(stage.names.deploy_state_machine(model))["States"]["Plan"]["Parameters"]
    network: dict[str, Any] = payload["network"]
    return network


def test_prod_trains_and_serves_without_network_access_and_dev_with_it(dev: Stage, prod: Stage) -> None:
    for model in prod.models:
        assert _train_parameters(prod, model.name)["EnableNetworkIsolation"] is True
        assert _train_parameters(dev, model.name)["EnableNetworkIsolation"] is False
        assert "VpcConfig" not in _train_parameters(prod, model.name)
        # Plan creates each version's Model with the stage's network settings.
        assert _plan_network(prod, model.name) == {"isolation": True}
        assert _plan_network(dev, model.name) == {"isolation": False}


def test_a_stage_with_a_vpc_trains_and_serves_in_its_subnets(prod_in_a_vpc: Stage) -> None:
    for model in prod_in_a_vpc.models:
        assert _train_parameters(prod_in_a_vpc, model.name)["VpcConfig"] == {
            "SecurityGroupIds": VPC.security_group_ids,
            "Subnets": VPC.subnet_ids,
        }
        assert _plan_network(prod_in_a_vpc, model.name)["vpc"] == VPC.model_dump(mode="json")


@pytest.mark.parametrize("role", ["Training jobs", "Endpoint containers"])
def test_in_a_vpc_sagemaker_may_create_interfaces_in_the_stage_s_subnets_only(
    prod: Stage, prod_in_a_vpc: Stage, role: str
) -> None:
    for model in prod_in_a_vpc.models:
        description = f"{role} of Headrace model {model.name}"
        assert not [
            s
            for s in prod.role_statements(prod.pipeline, description)
            if any(a.startswith("ec2:") for a in _as_list(s["Action"]))
        ]
        ec2 = {
            action: {render(r) for r in _as_list(s["Resource"])}
            for s in prod_in_a_vpc.role_statements(prod_in_a_vpc.pipeline, description)
            for action in _as_list(s["Action"])
            if action.startswith("ec2:")
        }
        account = "${AWS::Region}:${AWS::AccountId}"
        assert ec2["ec2:CreateNetworkInterface"] == {
            f"arn:${{AWS::Partition}}:ec2:{account}:network-interface/*",
            f"arn:${{AWS::Partition}}:ec2:{account}:subnet/{VPC.subnet_ids[0]}",
            f"arn:${{AWS::Partition}}:ec2:{account}:security-group/{VPC.security_group_ids[0]}",
        }
        assert ec2["ec2:DeleteNetworkInterface"] == {
            f"arn:${{AWS::Partition}}:ec2:{account}:network-interface/*"
        }
        assert ec2["ec2:DescribeSubnets"] == {"*"}


def test_a_version_s_model_runs_in_the_stage_s_network(example_model: ModelConfig) -> None:
    network = load_stage("prod").model_copy(update={"vpc": VPC}).network
    request = rollout.model_request(
        example_model,
        Names("prod"),
        name="headrace-prod-churn-v1-0123abcd",
        version=1,
        image="image",
        model_data_url="s3://bucket/model.tar.gz",
        role_arn="arn:aws:iam::123456789012:role/hosting",
        network=network,
    )
    assert request["EnableNetworkIsolation"] is True
    assert request["VpcConfig"] == {"SecurityGroupIds": VPC.security_group_ids, "Subnets": VPC.subnet_ids}
    # Switching the network on is a new Model, not the one already serving; dev's names do not change.
    args = (example_model, Names("prod"), 1, "image", "s3://bucket/model.tar.gz")
    assert rollout.hosted_name(*args, network) != rollout.hosted_name(*args)
    assert rollout.hosted_name(*args, load_stage("dev").network) == rollout.hosted_name(*args)


# --- who may call the endpoints --------------------------------------------------------------------------


def test_callers_assume_a_role_that_may_only_invoke_the_stage_s_endpoints(each_stage: Stage) -> None:
    names = each_stage.names
    roles = each_stage.pipeline.find_resources(
        "AWS::IAM::Role", {"Properties": {"RoleName": names.endpoint_invoke_role}}
    )
    [(role_id, role)] = roles.items()
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert render(trust["Principal"]["AWS"]) == "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"
    policies = each_stage.pipeline.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}}
    )
    [statement] = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert statement["Action"] == "sagemaker:InvokeEndpoint"
    endpoints = {render(r) for r in _as_list(statement["Resource"])}
    assert endpoints == {
        f"arn:${{AWS::Partition}}:sagemaker:${{AWS::Region}}:${{AWS::AccountId}}:endpoint/{names.endpoint(m.name)}"
        for m in each_stage.models
    }
    each_stage.pipeline.has_output(Outputs.ENDPOINT_INVOKE_ROLE, {"Value": {"Fn::GetAtt": [role_id, "Arn"]}})


# --- dashboards ------------------------------------------------------------------------------------------


def _dashboard_metrics(stage: Stage, model: str) -> Iterator[list[Any]]:
    [board] = stage.pipeline.find_resources(
        "AWS::CloudWatch::Dashboard", {"Properties": {"DashboardName": stage.names.dashboard(model)}}
    ).values()
    body = json.loads(render(board["Properties"]["DashboardBody"]))
    for widget in body["widgets"]:
        yield from widget["properties"].get("metrics", [])


def test_each_model_gets_a_dashboard_named_in_the_outputs(each_stage: Stage) -> None:
    boards = each_stage.resources(each_stage.pipeline, "AWS::CloudWatch::Dashboard")
    assert len(boards) == len(each_stage.models)
    for model in each_stage.models:
        each_stage.pipeline.has_output(
            Outputs.dashboard(model.name), {"Value": each_stage.names.dashboard(model.name)}
        )


def test_the_dashboard_shows_ingest_runs_gate_endpoint_and_drift(dev: Stage) -> None:
    for model in dev.models:
        shown = {metric[1] for metric in _dashboard_metrics(dev, model.name)}
        assert {
            *dashboard.INGEST_METRICS,
            *dashboard.RUN_METRICS,
            *dashboard.GATE_METRICS,
            *dashboard.DEPLOY_METRICS,
            "Invocations",
            "Invocation4XXErrors",
            "Invocation5XXErrors",
            "ModelLatency",
            rollout.QUALITY_METRIC,
            "DriftedFeatures",
            "FeaturePSI",
        } <= shown
        psi = [m for m in _dashboard_metrics(dev, model.name) if m[1] == "FeaturePSI"]
        assert {m[m.index("Feature") + 1] for m in psi} == {c.name for c in model.data.features}


def test_the_dashboard_s_metric_names_are_the_ones_their_publishers_use() -> None:
    assert dashboard.INGEST_METRICS == (
        ingest_service.DATASETS_ACCEPTED,
        ingest_service.DATASETS_REJECTED,
        ingest_service.DATASETS_DUPLICATE,
    )
    assert dashboard.RUN_METRICS == (
        prepare.STARTED_METRIC,
        run_failed.FAILED_METRIC,
        register.REGISTERED_METRIC,
    )
    assert dashboard.GATE_METRICS == (evaluate.PASSED_METRIC, evaluate.REJECTED_METRIC)


def test_every_service_dimension_on_the_dashboard_is_a_function_s_powertools_service(dev: Stage) -> None:
    """Powertools adds `service` to each metric: a wrong one would draw an empty graph, silently."""
    services = {
        f["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for f in dev.resources(dev.pipeline, "AWS::Lambda::Function").values()
        if "POWERTOOLS_SERVICE_NAME" in f["Properties"].get("Environment", {}).get("Variables", {})
    }
    for model in dev.models:
        shown = [m for m in _dashboard_metrics(dev, model.name) if m[0] == dev.names.metric_namespace]
        assert shown
        for metric in shown:
            dimensions = dict(zip(metric[2:-1:2], metric[3:-1:2], strict=True))
            if "service" in dimensions:
                assert dimensions["service"] in services, metric
            assert dimensions.get("model", dimensions.get("Model")) == model.name, metric


def test_the_dashboard_shows_the_state_of_every_alarm_of_the_model(dev: Stage) -> None:
    for model in dev.models:
        [board] = dev.pipeline.find_resources(
            "AWS::CloudWatch::Dashboard", {"Properties": {"DashboardName": dev.names.dashboard(model.name)}}
        ).values()
        body = json.loads(render(board["Properties"]["DashboardBody"]))
        [status] = [w for w in body["widgets"] if w["type"] == "alarm"]
        shown = {arn.rsplit(":", 1)[1] for arn in status["properties"]["alarms"]}
        assert shown == {
            *(dev.names.endpoint_alarm(model.name, guard) for guard in rollout.GUARDS),
            dev.names.model_alarm(model.name, "drift"),
            dev.names.model_alarm(model.name, "live-quality"),
        }


# --- tags for cost -----------------------------------------------------------------------------------------


def test_every_sagemaker_resource_the_workflows_create_is_tagged_with_stage_and_model(prod: Stage) -> None:
    for model in prod.models:
        train = _train_parameters(prod, model.name)
        tags = {t["Key"] for t in train["Tags"]}
        assert {"headrace:stage", "headrace:model", "headrace:run"} <= tags
        create = prod.state_machine(prod.names.deploy_state_machine(model.name))["States"]["CreateEndpoint"]
        assert {t["Key"]: t["Value"] for t in create["Parameters"]["Tags"]} == {
            "headrace:stage": "prod",
            "headrace:model": model.name,
        }
        # Each version's Model and EndpointConfig: stage, model and version (headrace/serving/rollout.py).
        assert {t["Key"] for t in rollout.tags(prod.names, model.name, 1)} == {
            "headrace:stage",
            "headrace:model",
            "headrace:version",
        }


def test_the_budget_s_and_the_trail_s_resources_carry_the_stage_tag(prod: Stage) -> None:
    stage_tag = {"Key": "headrace:stage", "Value": "prod"}
    _, budget = prod.only(prod.data, "AWS::Budgets::Budget")
    assert stage_tag in budget["Properties"]["ResourceTags"]
    _, trail = prod.only(prod.data, "AWS::CloudTrail::Trail")
    assert stage_tag in trail["Properties"]["Tags"]
    prod.data.has_resource_properties("AWS::SNS::Topic", {"Tags": Match.array_with([stage_tag])})


# --- least privilege ---------------------------------------------------------------------------------------

POLICY_DOCUMENTS = {
    "AWS::IAM::Policy": "PolicyDocument",
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::KMS::Key": "KeyPolicy",
}


@pytest.mark.parametrize("variant", ["dev", "prod", "prod_in_a_vpc"])
def test_no_statement_allows_every_action_of_a_service(request: pytest.FixtureRequest, variant: str) -> None:
    """Denies may name every action (s3:* over plain HTTP); an Allow names each action it needs. The one
    exception is the key policy's statement for the account itself (kms:* to the root principal), the
    default that lets IAM policies grant the key at all."""
    stage: Stage = request.getfixturevalue(variant)
    account_root = {
        "AWS": {
            "Fn::Join": [
                "",
                ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"],
            ]
        }
    }
    checked = 0
    for template in (stage.data, stage.pipeline):
        for resource_type, document in POLICY_DOCUMENTS.items():
            for logical_id, resource in stage.resources(template, resource_type).items():
                for statement in resource["Properties"][document]["Statement"]:
                    if statement["Effect"] != "Allow":
                        continue
                    actions = _as_list(statement["Action"])
                    if actions == ["kms:*"] and statement.get("Principal") == account_root:
                        continue
                    checked += 1
                    assert not [a for a in actions if a == "*" or a.endswith(":*")], (logical_id, actions)
    roles = [r for t in (stage.data, stage.pipeline) for r in stage.resources(t, "AWS::IAM::Role").values()]
    assert not [r for r in roles if "Policies" in r["Properties"]], "inline role policies escape this test"
    assert checked > 50


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_no_template_carries_a_credential(request: pytest.FixtureRequest, variant: str) -> None:
    """Access keys (AKIA/ASIA...) or secret-looking parameters would be readable by anyone who may read the
    stack; Headrace needs none: its functions and jobs run as roles."""
    stage: Stage = request.getfixturevalue(variant)
    for template in (stage.data, stage.pipeline):
        text = json.dumps(template.to_json())
        assert not re.search(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", text)
        assert not re.search(r"(?i)secret[_-]?access[_-]?key|password", text)
        assert not [p for p in template.to_json().get("Parameters", {}).values() if p.get("NoEcho")]


# --- endpoint sizes and rollout guards per stage ----------------------------------------------------------


def _five_xx_threshold(stage: Stage, model: str) -> float:
    alarms = stage.pipeline.find_resources("AWS::CloudWatch::Alarm")
    [alarm] = [
        a
        for a in alarms.values()
        if render(a["Properties"]["AlarmName"]) == stage.names.endpoint_alarm(model, "5xx")
    ]
    threshold: float = alarm["Properties"]["Threshold"]
    return threshold


def test_prod_tightens_every_model_s_5xx_guard_and_dev_keeps_the_model_s_own(dev: Stage, prod: Stage) -> None:
    churn = next(m for m in dev.models if m.name == "churn")
    assert _five_xx_threshold(dev, "churn") == churn.rollout.max_5xx_rate
    assert _five_xx_threshold(prod, "churn") == prod.settings.serving.max_5xx_rate == 0.005


def test_a_stage_sizes_every_endpoint_at_least_as_it_says(example_model: ModelConfig) -> None:
    prod, dev = load_stage("prod"), load_stage("dev")
    assert example_model.rollout.instance_count == 1
    assert prod.apply(example_model).rollout.instance_count == 2
    bigger = example_model.model_copy(
        update={"rollout": example_model.rollout.model_copy(update={"instance_count": 3})}
    )
    assert prod.apply(bigger).rollout.instance_count == 3
    assert dev.apply(example_model) is example_model


def test_a_stage_s_approval_policy_replaces_every_model_s_and_model_leaves_each_its_own(
    example_model: ModelConfig,
) -> None:
    assert example_model.gate.approval == "auto"
    assert load_stage("prod").apply(example_model).gate.approval == "manual"
    assert StageSettings(approval="auto").apply(example_model) is example_model
    manual = example_model.model_copy(
        update={"gate": example_model.gate.model_copy(update={"approval": "manual"})}
    )
    assert StageSettings(approval="auto").apply(manual).gate.approval == "auto"
    assert StageSettings(approval="model").apply(manual) is manual


def test_a_serving_override_out_of_range_names_the_stage_and_the_field() -> None:
    with pytest.raises(StagesError, match=r"prod\.serving\.min_instance_count"):
        parse_stages({"prod": {"serving": {"min_instance_count": 0}}}, "stages.yaml")
