"""The stateful core: the stage key, the data bucket (and its access log) and the ledger table. The stage's
removal policy (stages.yaml) decides whether they outlive the stack: retained in prod."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from headrace.ledger import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE
from headrace.naming import Names
from headrace.stages import StageSettings
from stacks import checkov, nag
from stacks.stage import allow_log_encryption, log_bucket, removal_policy

# The ledger's key schema and TTL attribute: headrace.ledger writes items of this shape.
LEDGER_PARTITION_KEY = PARTITION_KEY
LEDGER_SORT_KEY = SORT_KEY
LEDGER_TTL_ATTRIBUTE = TTL_ATTRIBUTE
# Server access logs of the data bucket: who read or wrote which object, kept a year.
ACCESS_LOG_PREFIX = "data-bucket/"
ACCESS_LOG_RETENTION = Duration.days(365)
# The id of the Lambda function CDK adds once per stack to apply bucket notification settings (aws-cdk-lib,
# aws-s3/lib/notifications-resource/notifications-resource-handler.ts).
NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
# KMS's shortest waiting period before it deletes a key whose stack removed it.
KEY_DELETION_WINDOW = Duration.days(7)
# Services that publish to the stage's alerts topic, which this key encrypts: they need the key to do so
# (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html, AWS services and encrypted topics).
ALERT_PUBLISHERS = ("cloudwatch.amazonaws.com", "budgets.amazonaws.com")


class DataStore(Construct):
    """Uploaded data, dataset versions and the run ledger, all encrypted with one customer-managed key, the
    stage key, which also encrypts training volumes and outputs, endpoint volumes, captured traffic, the
    stage's log groups, its dead-letter queues, the alerts topic and the audit trail."""

    def __init__(self, scope: Construct, construct_id: str, *, names: Names, stage: StageSettings) -> None:
        super().__init__(scope, construct_id)
        removal = removal_policy(stage)

        self.key = kms.Key(
            self,
            "Key",
            description=f"Headrace {names.stage}: data, models, ledger, logs, alerts and audit trail",
            alias=f"alias/{names.prefix}-data",
            enable_key_rotation=True,
            removal_policy=removal,
            pending_window=None if stage.retains_data else KEY_DELETION_WINDOW,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlertPublishersEncryptMessages",
                principals=[iam.ServicePrincipal(service) for service in ALERT_PUBLISHERS],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                # A key policy's statements apply to this key: "*" is the key itself.
                resources=["*"],
            )
        )
        allow_log_encryption(self.key, names)
        stack = Stack.of(self)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeEncryptsUndeliveredEvents",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                # What EventBridge needs to send to a dead-letter queue encrypted with this key.
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )

        self.access_logs = log_bucket(self, "AccessLogs", ACCESS_LOG_RETENTION, removal)
        checkov.accept(self.access_logs, "CKV_AWS_18", checkov.LOG_BUCKET_LOGS)

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            # An S3 bucket key cuts the KMS requests (and their cost) of every object read and write.
            bucket_key_enabled=True,
            versioned=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # Object Created events go to EventBridge, where the data-arrival rule filters them by key.
            event_bridge_enabled=True,
            lifecycle_rules=[s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(7))],
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=ACCESS_LOG_PREFIX,
            removal_policy=removal,
        )
        nag.accept_by_path(
            stack,
            f"{stack.node.path}/{NOTIFICATIONS_HANDLER_ID}/Role",
            "IAM4",
            nag.CDK_NOTIFICATIONS_HANDLER,
            applies_to=[nag.LAMBDA_BASIC_EXECUTION],
        )
        for check in ("CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117"):
            checkov.accept_by_path(stack, NOTIFICATIONS_HANDLER_ID, check, checkov.CDK_NOTIFICATIONS_HANDLER)

        self.ledger = dynamodb.Table(
            self,
            "Ledger",
            partition_key=dynamodb.Attribute(name=LEDGER_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=LEDGER_SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=LEDGER_TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            removal_policy=removal,
        )
