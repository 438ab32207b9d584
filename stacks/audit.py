"""Who read or wrote which object of the data bucket (datasets, splits, model artifacts, captured traffic):
a CloudTrail trail of the bucket's data events, when the stage asks for it (stages.yaml,
`cloudtrail_data_events`). Management events are left to the account's own trail.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from headrace.naming import Names
from headrace.stages import StageSettings
from stacks import checkov
from stacks.stage import log_bucket, removal_policy

TRAIL_LOG_PREFIX = "trail-bucket/"


class DataAudit(Construct):
    """The trail, its log bucket (TLS only, private, its own access logged) and its log files, which
    CloudTrail encrypts with the stage key and signs (digest files), so that a change to them shows."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        stage: StageSettings,
        key: kms.IKey,
        data_bucket: s3.IBucket,
        access_logs: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        # The log files carry their own SSE-KMS encryption (the trail's key); the bucket's default is for the
        # digest files and anything else.
        self.bucket = log_bucket(
            self,
            "Logs",
            Duration.days(stage.log_retention_days),
            removal_policy(stage),
            access_logs=access_logs,
            access_log_prefix=TRAIL_LOG_PREFIX,
        )
        self._let_cloudtrail_encrypt(key, names)
        self.trail = cloudtrail.Trail(
            self,
            "Trail",
            trail_name=names.audit_trail,
            bucket=self.bucket,
            encryption_key=key,
            enable_file_validation=True,
            is_multi_region_trail=False,
            include_global_service_events=False,
            management_events=cloudtrail.ReadWriteType.NONE,
            send_to_cloud_watch_logs=False,
        )
        checkov.accept(self.trail, "CKV_AWS_67", checkov.SINGLE_REGION_TRAIL)
        self.trail.add_s3_event_selector(
            [cloudtrail.S3EventSelector(bucket=data_bucket)],
            read_write_type=cloudtrail.ReadWriteType.ALL,
            include_management_events=False,
        )

    def _let_cloudtrail_encrypt(self, key: kms.IKey, names: Names) -> None:
        """The key policy CloudTrail needs to encrypt this trail's log files, and only this trail's
        (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html)."""
        stack = Stack.of(self)
        trail_arn = stack.format_arn(service="cloudtrail", resource="trail", resource_name=names.audit_trail)
        any_trail = stack.format_arn(
            service="cloudtrail",
            region="*",
            resource="trail",
            resource_name="*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        cloudtrail_service = iam.ServicePrincipal("cloudtrail.amazonaws.com")
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailEncryptsItsLogs",
                principals=[cloudtrail_service],
                actions=["kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceArn": trail_arn},
                    "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": any_trail},
                },
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailDescribesTheKey",
                principals=[cloudtrail_service],
                actions=["kms:DescribeKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceArn": trail_arn}},
            )
        )
