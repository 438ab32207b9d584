"""A stage's policies (headrace/stages.py) in CDK's terms: what every construct asks of them."""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from headrace.naming import Names
from headrace.stages import StageSettings

# Where Lambda writes a function's logs, and where Step Functions' log delivery should write (the
# /aws/vendedlogs/ prefix keeps the account's CloudWatch Logs resource policy from growing per log group).
LAMBDA_LOGS = "/aws/lambda/"
STATE_MACHINE_LOGS = "/aws/vendedlogs/states/"
# What CloudWatch Logs does with a log group's key
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
LOGS_KEY_ACTIONS = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
]


def removal_policy(stage: StageSettings) -> RemovalPolicy:
    """For the stateful resources: the key, the buckets, the ledger table and the log groups."""
    return RemovalPolicy.RETAIN if stage.retains_data else RemovalPolicy.DESTROY


def log_group(
    scope: Construct, construct_id: str, name: str, stage: StageSettings, key: kms.IKey
) -> logs.LogGroup:
    """A log group encrypted with the stage key, of the stage's retention, kept or removed with the stack as
    the stage says. `name` must start with one of the prefixes `allow_log_encryption` lets use the key."""
    assert name.startswith((LAMBDA_LOGS, STATE_MACHINE_LOGS)), name
    group = logs.LogGroup(
        scope, construct_id, log_group_name=name, encryption_key=key, removal_policy=removal_policy(stage)
    )
    # In days, as CloudFormation takes it: CDK's RetentionDays enum has no constructor from a number.
    resource = group.node.default_child
    assert isinstance(resource, logs.CfnLogGroup)
    resource.retention_in_days = stage.log_retention_days
    return group


def allow_log_encryption(key: kms.Key, names: Names) -> None:
    """Let CloudWatch Logs use the stage key for the stage's own log groups, and no others."""
    stack = Stack.of(key)
    groups = [
        stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{prefix}{names.prefix}-*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        for prefix in (LAMBDA_LOGS, STATE_MACHINE_LOGS)
    ]
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchLogsEncryptsTheStageLogGroups",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=LOGS_KEY_ACTIONS,
            resources=["*"],
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": groups}},
        )
    )
