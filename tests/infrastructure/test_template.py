"""The synthesized CloudFormation: what the cloud plane deploys, and what the local plane provisions from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Environment
from aws_cdk.assertions import Match, Template

from headrace.config import ModelConfig, parse_models_document
from headrace.layers import AWS_SDK_PANDAS_LAYER_PARAMETER, LAMBDA_PYTHON_RUNTIME, POWERTOOLS_LAYER_PARAMETER
from headrace.naming import Names, Outputs
from stacks.app_builder import build_app
from stacks.ingest import data_arrival_rule_name
from stacks.settings import settings_from
from tests.support.synth import SynthesizedApp, render, stack_template

REPO = Path(__file__).resolve().parents[2]
INGEST_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "HEADRACE_STAGE",
    "DATA_BUCKET",
    "LEDGER_TABLE",
    "TRAINING_STATE_MACHINES",
    "BATCH_STATE_MACHINES",
    "EVENT_BUS_NAME",
    "OPENBLAS_NUM_THREADS",  # headrace.layers.SDK_FOR_PANDAS_ENVIRONMENT: ingest has the pandas layer
}

Resource = Mapping[str, Any]


def _only(template: Template, resource_type: str) -> tuple[str, Resource]:
    found = template.find_resources(resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def _data_arrival_rule(template: Template, names: Names) -> Resource:
    found = template.find_resources(
        "AWS::Events::Rule", {"Properties": {"Name": data_arrival_rule_name(names)}}
    )
    assert len(found) == 1
    return next(iter(found.values()))


def _ingest_function(template: Template, names: Names) -> tuple[str, Resource]:
    found = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"FunctionName": names.ingest_function}}
    )
    assert len(found) == 1
    return next(iter(found.items()))


def _training_machines_env(template: Template, names: Names) -> dict[str, str]:
    _, function = _ingest_function(template, names)
    document = function["Properties"]["Environment"]["Variables"]["TRAINING_STATE_MACHINES"]
    parsed: dict[str, str] = json.loads(render(document))
    return parsed


def _actions(statement: dict[str, Any]) -> set[str]:
    return set(_as_list(statement["Action"]))


def _as_list(value: Any) -> list[Any]:
    """IAM's Action and Resource: a single value or a list of them."""
    return value if isinstance(value, list) else [value]


def _ingest_statements(synthesized: SynthesizedApp) -> list[dict[str, Any]]:
    _, function = _ingest_function(synthesized.pipeline, synthesized.names)
    return synthesized.role_statements(function["Properties"]["Role"]["Fn::GetAtt"][0])


def _asset_dir(synthesized: SynthesizedApp) -> Path:
    _, function = _ingest_function(synthesized.pipeline, synthesized.names)
    asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    return synthesized.assembly_dir / f"asset.{asset_hash}"


def _pipeline_template(stage: str, models: list[ModelConfig], outdir: Path) -> Template:
    return stack_template(build_app(stage, models, str(outdir)), Names(stage).pipeline_stack)


# --- data stack: key, bucket, ledger ---------------------------------------------------------------------


def test_data_key_rotates(synthesized: SynthesizedApp) -> None:
    # Whether it outlives the stack is the stage's removal policy (tests/infrastructure/test_stages.py).
    synthesized.data.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_data_bucket_is_encrypted_with_the_data_key(synthesized: SynthesizedApp) -> None:
    key_id, _ = _only(synthesized.data, "AWS::KMS::Key")
    synthesized.data.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
                        },
                        "BucketKeyEnabled": True,
                    }
                ]
            }
        },
    )


def test_data_bucket_keeps_every_version(synthesized: SynthesizedApp) -> None:
    bucket = synthesized.data.to_json()["Resources"][synthesized.data_bucket_id]
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_data_bucket_rejects_plain_http(synthesized: SynthesizedApp) -> None:
    bucket_id = synthesized.data_bucket_id
    synthesized.data.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Principal": {"AWS": "*"},
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_data_bucket_blocks_all_public_access(synthesized: SynthesizedApp) -> None:
    synthesized.data.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            }
        },
    )


def test_data_bucket_sends_its_events_to_eventbridge(synthesized: SynthesizedApp) -> None:
    bucket_id = synthesized.data_bucket_id
    synthesized.data.has_resource_properties(
        "Custom::S3BucketNotifications",
        {"BucketName": {"Ref": bucket_id}, "NotificationConfiguration": {"EventBridgeConfiguration": {}}},
    )


def test_data_bucket_logs_its_access_to_a_tls_only_bucket_with_s3_managed_keys(
    synthesized: SynthesizedApp,
) -> None:
    resources = synthesized.data.to_json()["Resources"]
    logging = resources[synthesized.data_bucket_id]["Properties"]["LoggingConfiguration"]
    logs_id = logging["DestinationBucketName"]["Ref"]
    logs = resources[logs_id]
    # S3 delivers server access logs only to a bucket with SSE-S3 (AES256), not to a KMS-encrypted one.
    encryption = logs["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption == [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    assert all(logs["Properties"]["PublicAccessBlockConfiguration"].values())
    statements = [
        statement
        for policy in synthesized.data.find_resources(
            "AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": logs_id}}}
        ).values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert {"Bool": {"aws:SecureTransport": "false"}} in [s.get("Condition") for s in statements]
    delivery = [s for s in statements if s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}]
    assert [s["Action"] for s in delivery] == ["s3:PutObject"]
    assert render(delivery[0]["Resource"]) == f"<{logs_id}.Arn>/{logging['LogFilePrefix']}*"


def test_ledger_table_is_keyed_by_pk_and_sk_and_billed_on_demand(synthesized: SynthesizedApp) -> None:
    synthesized.data.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": Match.array_with(
                [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]
            ),
            "BillingMode": "PAY_PER_REQUEST",
        },
    )


def test_ledger_items_expire_on_their_expiration_attribute(synthesized: SynthesizedApp) -> None:
    synthesized.data.has_resource_properties(
        "AWS::DynamoDB::Table", {"TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True}}
    )


def test_ledger_table_is_recoverable_and_encrypted_with_the_data_key(synthesized: SynthesizedApp) -> None:
    key_id, _ = _only(synthesized.data, "AWS::KMS::Key")
    synthesized.data.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {
                "SSEEnabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
            },
        },
    )


def test_data_stack_outputs_bucket_table_and_key(synthesized: SynthesizedApp) -> None:
    bucket_id = synthesized.data_bucket_id
    table_id, _ = _only(synthesized.data, "AWS::DynamoDB::Table")
    key_id, _ = _only(synthesized.data, "AWS::KMS::Key")
    synthesized.data.has_output(Outputs.DATA_BUCKET, {"Value": {"Ref": bucket_id}})
    synthesized.data.has_output(Outputs.LEDGER_TABLE, {"Value": {"Ref": table_id}})
    synthesized.data.has_output(Outputs.DATA_KEY_ARN, {"Value": {"Fn::GetAtt": [key_id, "Arn"]}})


# --- pipeline stack: data-arrival rule -------------------------------------------------------------------


def _bucket_name_import(synthesized: SynthesizedApp) -> dict[str, str]:
    bucket_id = synthesized.data_bucket_id
    return {"Fn::ImportValue": synthesized.data_export({"Ref": bucket_id})}


def test_data_arrival_rule_matches_object_created_events_of_the_data_bucket(
    synthesized: SynthesizedApp,
) -> None:
    synthesized.pipeline.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": f"{synthesized.names.prefix}-data-arrival",
            "EventPattern": Match.object_like(
                {
                    "source": ["aws.s3"],
                    "detail-type": ["Object Created"],
                    "detail": Match.object_like({"bucket": {"name": [_bucket_name_import(synthesized)]}}),
                }
            ),
        },
    )


def test_data_arrival_rule_matches_every_key_but_pipeline_output(synthesized: SynthesizedApp) -> None:
    rule = _data_arrival_rule(synthesized.pipeline, synthesized.names)
    # Everything but pipeline output: files under an unknown model, a misspelt folder or the bucket's root
    # still reach ingest (issue 14, finding 10), while quarantine, datasets, runs and capture never loop back.
    [key] = rule["Properties"]["EventPattern"]["detail"]["object"]["key"]
    excluded = key["anything-but"]["wildcard"]
    assert "*/quarantine/*" in excluded
    assert {"churn/datasets/*", "churn/runs/*", "churn/capture/*", "churn/monitoring/*"} <= set(excluded)
    assert not any(k.endswith("/incoming/*") for k in excluded)


def test_data_arrival_rule_delivers_to_ingest_with_retries_and_a_dead_letter_queue(
    synthesized: SynthesizedApp,
) -> None:
    function_id, _ = _ingest_function(synthesized.pipeline, synthesized.names)
    rule = _data_arrival_rule(synthesized.pipeline, synthesized.names)
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert synthesized.pipeline.to_json()["Resources"][queue_id]["Type"] == "AWS::SQS::Queue"
    synthesized.pipeline.has_resource_properties(
        "AWS::Lambda::Permission",
        {"FunctionName": {"Fn::GetAtt": [function_id, "Arn"]}, "Principal": "events.amazonaws.com"},
    )


# --- pipeline stack: ingest function ---------------------------------------------------------------------


def test_ingest_function_environment_has_exactly_the_variables_the_handler_parses(
    synthesized: SynthesizedApp,
) -> None:
    _, function = _ingest_function(synthesized.pipeline, synthesized.names)
    variables = function["Properties"]["Environment"]["Variables"]
    assert set(variables) == INGEST_ENVIRONMENT
    assert variables["POWERTOOLS_SERVICE_NAME"] == "headrace-ingest"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == synthesized.names.metric_namespace
    assert variables["HEADRACE_STAGE"] == synthesized.names.stage
    assert variables["EVENT_BUS_NAME"] == "default"
    assert variables["DATA_BUCKET"] == _bucket_name_import(synthesized)
    assert set(variables["LEDGER_TABLE"]) == {"Fn::ImportValue"}


def test_ingest_function_knows_the_training_state_machine_of_every_model(synthesized: SynthesizedApp) -> None:
    machines = _training_machines_env(synthesized.pipeline, synthesized.names)
    assert set(machines) == {m.name for m in synthesized.models}
    resources = synthesized.pipeline.to_json()["Resources"]
    for model, reference in machines.items():
        machine = resources[reference.strip("<>")]
        assert machine["Type"] == "AWS::StepFunctions::StateMachine"
        assert machine["Properties"]["StateMachineName"] == synthesized.names.training_state_machine(model)


def test_ingest_function_runs_handler_dot_handler_on_the_pinned_runtime(synthesized: SynthesizedApp) -> None:
    synthesized.pipeline.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": synthesized.names.ingest_function,
            "Handler": "handler.handler",
            "Runtime": LAMBDA_PYTHON_RUNTIME,
            # Sized for the example's max_file_mb of 256 (headrace/ingest/sizing.py).
            "MemorySize": 1536,
            "Timeout": 300,
            "ReservedConcurrentExecutions": Match.absent(),
            "LoggingConfig": {"LogGroup": Match.any_value()},
        },
    )
    synthesized.pipeline.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": f"/aws/lambda/{synthesized.names.ingest_function}",
            "RetentionInDays": Match.any_value(),
        },
    )


def test_ingest_function_reads_its_managed_layers_from_public_ssm_parameters(
    synthesized: SynthesizedApp,
) -> None:
    _, function = _ingest_function(synthesized.pipeline, synthesized.names)
    parameters = synthesized.pipeline.to_json()["Parameters"]
    # Both names are region-free, as their publishers document them (tests/infrastructure/
    # test_fidelity_findings.py pins the forms): plain template parameters, resolved at deploy time.
    assert [parameters[layer["Ref"]] for layer in function["Properties"]["Layers"]] == [
        {"Type": "AWS::SSM::Parameter::Value<String>", "Default": POWERTOOLS_LAYER_PARAMETER},
        {"Type": "AWS::SSM::Parameter::Value<String>", "Default": AWS_SDK_PANDAS_LAYER_PARAMETER},
    ]


def test_a_stack_with_a_known_region_reads_the_same_layer_parameters(
    synthesized: SynthesizedApp, tmp_path: Path
) -> None:
    names = Names("regional")
    app = build_app(names.stage, synthesized.models, str(tmp_path), env=Environment(region="eu-west-1"))
    parameters = stack_template(app, names.pipeline_stack).to_json()["Parameters"]
    defaults = {p.get("Default") for p in parameters.values()}
    assert {POWERTOOLS_LAYER_PARAMETER, AWS_SDK_PANDAS_LAYER_PARAMETER} <= defaults


def test_every_function_role_may_write_only_to_its_own_log_group(synthesized: SynthesizedApp) -> None:
    """No AWSLambdaBasicExecutionRole, which may create and write to every log group of the account."""
    resources = synthesized.pipeline.to_json()["Resources"]
    functions = synthesized.pipeline.find_resources("AWS::Lambda::Function")
    assert functions
    for function in functions.values():
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        assert "ManagedPolicyArns" not in resources[role_id]["Properties"]
        logs = [
            s for s in synthesized.role_statements(role_id) if any(a.startswith("logs:") for a in _actions(s))
        ]
        log_group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert logs == [
            {
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": [log_group_id, "Arn"]},
            }
        ]


def _data_key_import(synthesized: SynthesizedApp) -> dict[str, str]:
    key_id, _ = _only(synthesized.data, "AWS::KMS::Key")
    return {"Fn::ImportValue": synthesized.data_export({"Fn::GetAtt": [key_id, "Arn"]})}


def test_ingest_function_hands_failed_async_invocations_to_a_queue_encrypted_with_the_data_key(
    synthesized: SynthesizedApp,
) -> None:
    _, function = _ingest_function(synthesized.pipeline, synthesized.names)
    queue_id = function["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
    queue = synthesized.pipeline.to_json()["Resources"][queue_id]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["KmsMasterKeyId"] == _data_key_import(synthesized)
    # Lambda sends to the queue as the function: its role may, and may encrypt with the key.
    actions = {a for s in _ingest_statements(synthesized) for a in _actions(s)}
    assert {"sqs:SendMessage", "kms:GenerateDataKey*"} <= actions


def test_every_function_an_event_rule_invokes_keeps_its_failed_invocations_in_a_queue(
    synthesized: SynthesizedApp,
) -> None:
    """EventBridge invokes a function asynchronously: its target DLQ catches only undelivered events, the
    function's own catches what failed after Lambda's retries."""
    resources = synthesized.pipeline.to_json()["Resources"]
    rules = synthesized.pipeline.find_resources("AWS::Events::Rule")
    targets = [target["Arn"] for rule in rules.values() for target in rule["Properties"]["Targets"]]
    functions = [
        t["Fn::GetAtt"][0]
        for t in targets
        if "Fn::GetAtt" in t and resources[t["Fn::GetAtt"][0]]["Type"] == "AWS::Lambda::Function"
    ]
    assert len(functions) == 2  # ingest and retrain
    for function_id in functions:
        queue = resources[function_id]["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
        assert resources[queue]["Type"] == "AWS::SQS::Queue", function_id


def test_every_dead_letter_queue_is_encrypted_with_the_data_key_and_tls_only(
    synthesized: SynthesizedApp,
) -> None:
    queues = synthesized.pipeline.find_resources("AWS::SQS::Queue")
    # Ingest's and retrain's failed invocations; undelivered arrivals, approvals and alarms.
    assert len(queues) == 5
    for queue_id, queue in queues.items():
        assert queue["Properties"]["KmsMasterKeyId"] == _data_key_import(synthesized), queue_id
        synthesized.pipeline.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [{"Ref": queue_id}],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                            )
                        ]
                    )
                },
            },
        )


def test_ingest_function_reads_only_incoming_objects_and_writes_only_datasets_quarantine_and_labels(
    synthesized: SynthesizedApp,
) -> None:
    bucket_id = synthesized.data_bucket_id
    bucket = f"<import:{synthesized.data_export({'Fn::GetAtt': [bucket_id, 'Arn']})}>"
    s3 = [s for s in _ingest_statements(synthesized) if any(a.startswith("s3:") for a in _actions(s))]
    granted = {
        (action, render(resource))
        for statement in s3
        for action in _actions(statement)
        for resource in _as_list(statement["Resource"])
    }
    reads = {resource for action, resource in granted if action == "s3:GetObject*"}
    writes = {resource for action, resource in granted if action.startswith(("s3:Put", "s3:Delete"))}
    assert reads == {bucket, f"{bucket}/*/incoming/*"}
    # Accepted ground-truth files are written in canonical form under ground-truth/accepted/ (issue 16).
    assert writes == {
        f"{bucket}/*/datasets/*",
        f"{bucket}/*/quarantine/*",
        f"{bucket}/*/ground-truth/accepted/*",
        f"{bucket}/*/batch/input/*",
    }
    assert not {action for action, _ in granted if action.startswith("s3:Delete")}


def test_ingest_function_may_use_the_ledger_table_and_the_data_key(synthesized: SynthesizedApp) -> None:
    actions = {a for s in _ingest_statements(synthesized) for a in _actions(s)}
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"} <= actions
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= actions


def test_ingest_function_may_start_each_training_state_machine(synthesized: SynthesizedApp) -> None:
    machines = _training_machines_env(synthesized.pipeline, synthesized.names)
    starts = [s for s in _ingest_statements(synthesized) if "states:StartExecution" in _actions(s)]
    resources = [r for s in starts for r in _as_list(s["Resource"])]
    batch = {
        f"<{p}>"
        for p in synthesized.pipeline.find_resources("AWS::StepFunctions::StateMachine")
        if p.startswith("Batch")
    }
    assert {render(r) for r in resources} == set(machines.values()) | batch


def test_ingest_function_may_put_events_on_the_default_bus_only(synthesized: SynthesizedApp) -> None:
    [put] = [s for s in _ingest_statements(synthesized) if "events:PutEvents" in _actions(s)]
    bus = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
    assert render(put["Resource"]) == bus


def test_pipeline_stack_outputs_the_ingest_function_and_each_training_state_machine(
    synthesized: SynthesizedApp,
) -> None:
    function_id, _ = _ingest_function(synthesized.pipeline, synthesized.names)
    synthesized.pipeline.has_output(Outputs.INGEST_FUNCTION, {"Value": {"Ref": function_id}})
    machines = _training_machines_env(synthesized.pipeline, synthesized.names)
    for model in synthesized.models:
        synthesized.pipeline.has_output(
            Outputs.training_state_machine(model.name), {"Value": {"Ref": machines[model.name].strip("<>")}}
        )


# --- pipeline stack: training state machines -------------------------------------------------------------


def test_each_model_gets_one_standard_training_state_machine_named_for_it(
    synthesized: SynthesizedApp, tmp_path: Path
) -> None:
    churn = next(m for m in synthesized.models if m.name == "churn")
    models = [churn, churn.model_copy(update={"name": "fraud-score"})]
    pipeline = _pipeline_template("dev", models, tmp_path)

    # A training, a deploy, a drift-check and a quality-check workflow per model.
    pipeline.resource_count_is("AWS::StepFunctions::StateMachine", 5 * len(models))
    for model in models:
        pipeline.has_resource_properties(
            "AWS::StepFunctions::StateMachine",
            {
                "StateMachineName": Names("dev").training_state_machine(model.name),
                "StateMachineType": "STANDARD",
                "Tags": Match.array_with([{"Key": "headrace:model", "Value": model.name}]),
            },
        )
        assert Outputs.training_state_machine(model.name) in pipeline.find_outputs("*")
    assert set(_training_machines_env(pipeline, Names("dev"))) == {"churn", "fraud-score"}


def test_training_state_machines_log_to_cloudwatch_without_tracing(synthesized: SynthesizedApp) -> None:
    for model in synthesized.models:
        name = synthesized.names.training_state_machine(model.name)
        groups = synthesized.pipeline.find_resources(
            "AWS::Logs::LogGroup", {"Properties": {"LogGroupName": f"/aws/vendedlogs/states/{name}"}}
        )
        assert len(groups) == 1
        synthesized.pipeline.has_resource_properties(
            "AWS::StepFunctions::StateMachine",
            {
                "StateMachineName": name,
                "LoggingConfiguration": {
                    "Level": "ALL",
                    "IncludeExecutionData": True,
                    "Destinations": [
                        {
                            "CloudWatchLogsLogGroup": {
                                "LogGroupArn": {"Fn::GetAtt": [next(iter(groups)), "Arn"]}
                            }
                        }
                    ],
                },
                "TracingConfiguration": {"Enabled": False},
            },
        )


def test_every_taggable_resource_carries_the_stage_tag(synthesized: SynthesizedApp) -> None:
    stage_tag = {"Key": "headrace:stage", "Value": synthesized.names.stage}
    expected = [
        (synthesized.data, ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::KMS::Key")),
        (synthesized.pipeline, ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine")),
    ]
    for template, resource_types in expected:
        for resource_type in resource_types:
            resources = template.find_resources(resource_type)
            assert resources, f"expected {resource_type} in the template"
            for resource in resources.values():
                assert stage_tag in resource["Properties"]["Tags"]


# --- the code asset ------------------------------------------------------------------------------------


def test_ingest_asset_has_the_handler_at_its_root(synthesized: SynthesizedApp) -> None:
    assert (_asset_dir(synthesized) / "handler.py").is_file()


def test_ingest_asset_ships_the_domain_package_without_the_cli_or_the_local_plane(
    synthesized: SynthesizedApp,
) -> None:
    package = _asset_dir(synthesized) / "headrace"
    assert (package / "__init__.py").is_file()
    assert (package / "config.py").is_file()
    assert not (package / "cli").exists()
    assert not (package / "local").exists()
    assert not list(_asset_dir(synthesized).rglob("__pycache__"))


def test_ingest_asset_ships_the_validated_model_configs_as_json(synthesized: SynthesizedApp) -> None:
    shipped = parse_models_document((_asset_dir(synthesized) / "models.json").read_text())
    assert shipped == {m.name: m for m in synthesized.models}


def test_identical_sources_give_the_same_asset_hash_in_another_synth(
    synthesized: SynthesizedApp, tmp_path: Path
) -> None:
    pipeline = _pipeline_template("qa", synthesized.models, tmp_path)
    _, again = _ingest_function(pipeline, Names("qa"))
    _, first = _ingest_function(synthesized.pipeline, synthesized.names)
    assert again["Properties"]["Code"]["S3Key"] == first["Properties"]["Code"]["S3Key"]


# --- app.py: stage, context and config errors ----------------------------------------------------------


def _run_app(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CDK_", "HEADRACE_"))}
    environ.update({"CDK_OUTDIR": str(tmp_path / "cdk.out"), **env})
    return subprocess.run(
        [sys.executable, str(REPO / "app.py"), *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_synth_with_a_broken_model_config_exits_2_naming_the_file_and_the_field(tmp_path: Path) -> None:
    shipped = (REPO / "models" / "churn.yaml").read_text()
    broken = shipped.replace("instance_type: ml.m5.xlarge", "instance_type: m5")
    assert broken != shipped
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "churn.yaml").write_text(broken)

    done = _run_app(tmp_path, HEADRACE_MODELS_DIR=str(models_dir))

    assert done.returncode == 2
    assert str(models_dir / "churn.yaml") in done.stderr
    assert "trainer.instance_type" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "cdk.out").exists()


def test_synth_of_the_prod_stage_names_every_stack_and_resource_for_prod(
    synthesized: SynthesizedApp, tmp_path: Path
) -> None:
    # CDK_CONTEXT_JSON is how the CDK CLI (`cdk synth -c stage=prod`) and the local plane pass context.
    done = _run_app(tmp_path, CDK_CONTEXT_JSON=json.dumps({"stage": "prod"}))
    assert done.returncode == 0, done.stderr

    prod = Names("prod")
    outdir = tmp_path / "cdk.out"
    for stack in prod.stacks:
        assert (outdir / f"{stack}.template.json").is_file()
    pipeline = Template.from_json(json.loads((outdir / f"{prod.pipeline_stack}.template.json").read_text()))
    _, function = _ingest_function(pipeline, prod)
    assert function["Properties"]["Environment"]["Variables"]["HEADRACE_STAGE"] == "prod"
    pipeline.has_resource_properties("AWS::Events::Rule", {"Name": f"{prod.prefix}-data-arrival"})
    for model in synthesized.models:
        pipeline.has_resource_properties(
            "AWS::StepFunctions::StateMachine", {"StateMachineName": prod.training_state_machine(model.name)}
        )
    assert synthesized.names.prefix not in json.dumps(pipeline.to_json())
    # Same code, same stage, another process: the asset is byte-for-byte the same. (Across stages it
    # differs where stages.yaml's serving overrides change the models.json the functions ship.)
    in_process = build_app("prod", synthesized.models, str(tmp_path / "in-process.out"))
    _, again = _ingest_function(stack_template(in_process, prod.pipeline_stack), prod)
    assert function["Properties"]["Code"]["S3Key"] == again["Properties"]["Code"]["S3Key"]


@pytest.mark.parametrize(
    ("argv", "environ", "stage"),
    [
        ([], {}, "dev"),
        ([], {"CDK_CONTEXT_JSON": '{"stage": "qa"}'}, "qa"),
        (["-c", "stage=prod"], {"CDK_CONTEXT_JSON": '{"stage": "qa"}'}, "prod"),
        (["--context", "stage=prod"], {}, "prod"),
    ],
)
def test_stage_comes_from_the_command_line_then_the_cli_context_then_cdk_json(
    argv: list[str], environ: dict[str, str], stage: str
) -> None:
    assert settings_from(argv, environ).stage == stage


def test_stage_is_read_from_the_context_file_the_cli_writes_when_context_is_large(tmp_path: Path) -> None:
    overflow = tmp_path / "context.json"
    overflow.write_text(json.dumps({"stage": "big"}))
    assert settings_from([], {"CONTEXT_OVERFLOW_LOCATION_ENV": str(overflow)}).stage == "big"


def test_models_dir_comes_from_context_before_the_environment(tmp_path: Path) -> None:
    from_env = settings_from([], {"HEADRACE_MODELS_DIR": str(tmp_path)})
    from_context = settings_from(["-c", "models_dir=/elsewhere"], {"HEADRACE_MODELS_DIR": str(tmp_path)})
    assert from_env.models_dir == tmp_path
    assert from_context.models_dir == Path("/elsewhere")
    assert settings_from([], {}).models_dir is None
