"""A stage's policies (headrace/stages.py) in CDK's terms: what every construct asks of them."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
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


def log_bucket(
    scope: Construct,
    construct_id: str,
    retention: Duration,
    removal: RemovalPolicy,
    *,
    access_logs: s3.IBucket | None = None,
    access_log_prefix: str | None = None,
) -> s3.Bucket:
    """A private, TLS-only bucket for logs that expire after `retention`, its own access logged to
    `access_logs` where given. S3-managed encryption: S3 delivers server access logs only to such a bucket,
    and CloudTrail's log files carry their own SSE-KMS encryption (the trail's key)."""
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        # Versioned, as checkov's CKV_AWS_21 asks: a deleted or overwritten log stays recoverable until it
        # would have expired anyway.
        versioned=True,
        lifecycle_rules=[
            s3.LifecycleRule(
                expiration=retention,
                noncurrent_version_expiration=retention,
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )
        ],
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=access_log_prefix,
        removal_policy=removal,
    )


def logged_state_machine(
    scope: Construct,
    name: str,
    definition: sfn.IChainable,
    stage: StageSettings,
    key: kms.IKey,
    timeout: Duration | None = None,
) -> sfn.StateMachine:
    """A standard state machine `name` that logs every execution, with its data, to its own stage log
    group (construct ids "Logs" and "StateMachine" under `scope`)."""
    machine_logs = log_group(scope, "Logs", f"{STATE_MACHINE_LOGS}{name}", stage, key)
    return sfn.StateMachine(
        scope,
        "StateMachine",
        state_machine_name=name,
        state_machine_type=sfn.StateMachineType.STANDARD,
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        logs=sfn.LogOptions(destination=machine_logs, level=sfn.LogLevel.ALL, include_execution_data=True),
        timeout=timeout,
        tracing_enabled=False,
    )


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
