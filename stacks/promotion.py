"""What a source stage (dev) lets the stages that promote from it read when they are deployed in other
accounts (stages.yaml `promote_from` with another `account`): exactly the promoted versions' files, the key
that decrypts them (through S3 only), and the models' registry groups. `headrace promote` runs with the
target account's credentials and reads these; nothing here lets another account write.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from headrace.naming import Names
from headrace.training.layout import RunLayout

# What `headrace promote` copies of a version (headrace/promotion/promote.py): its artifact, its evaluation
# and its lineage.json, under each model's runs.
_RUN_FILES = ("output/*", "evaluation.json", "lineage.json")
# What reading a version takes: ListModelPackages names the group, DescribeModelPackage a version in it
# (AWS::SageMaker::ModelPackageGroup's ModelPackageGroupPolicy, a resource policy like
# PutModelPackageGroupPolicy's: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/
# aws-resource-sagemaker-modelpackagegroup.html, https://docs.aws.amazon.com/sagemaker/latest/APIReference/
# API_PutModelPackageGroupPolicy.html).
GROUP_READ_ACTIONS = ["sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages"]
VERSION_READ_ACTIONS = ["sagemaker:DescribeModelPackage"]


def promoted_keys(model: str) -> list[str]:
    """The object key patterns of `model`'s versions' files: `<model>/runs/*/output/*` and the two
    documents beside each run's output."""
    runs = RunLayout("", model, "*").prefix
    return [runs + file for file in _RUN_FILES]


class PromotionGrants(Construct):
    """Read access for `accounts` (the promoting stages' accounts) to `models`' promoted files in `bucket`,
    decryption with `key` through S3 in this region, and each model's registry group (created here, with its
    policy, instead of at the first registration)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        models: Sequence[str],
        accounts: Sequence[str],
        bucket: s3.IBucket,
        key: kms.IKey,
        removal: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        principals = [iam.AccountPrincipal(account) for account in sorted(set(accounts))]
        # Cross-account object reads need the bucket policy to allow them
        # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-walkthroughs-managing-access-example2.html).
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="PromotingStagesReadVersions",
                principals=principals,
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(pattern) for m in models for pattern in promoted_keys(m)],
            )
        )
        # Another account may use a key only when its key policy says so
        # (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html);
        # kms:ViaService keeps that to S3's decrypting the objects above
        # (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="PromotingStagesDecryptThroughS3",
                principals=principals,
                actions=["kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}},
            )
        )
        self.groups: list[sagemaker.CfnModelPackageGroup] = []
        for model in models:
            group_name = names.model_package_group(model)
            where = f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}"
            readers = [f"arn:{Aws.PARTITION}:iam::{account}:root" for account in sorted(set(accounts))]
            group = sagemaker.CfnModelPackageGroup(
                self,
                f"Group{model}",
                model_package_group_name=group_name,
                model_package_group_description=f"Headrace model {model} ({names.stage})",
                model_package_group_policy={
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "PromotingStagesListVersions",
                            "Effect": "Allow",
                            "Principal": {"AWS": readers},
                            "Action": GROUP_READ_ACTIONS,
                            "Resource": f"{where}:model-package-group/{group_name}",
                        },
                        {
                            "Sid": "PromotingStagesDescribeVersions",
                            "Effect": "Allow",
                            "Principal": {"AWS": readers},
                            "Action": VERSION_READ_ACTIONS,
                            "Resource": f"{where}:model-package/{group_name}/*",
                        },
                    ],
                },
                tags=[
                    {"key": "headrace:stage", "value": names.stage},
                    {"key": "headrace:model", "value": model},
                ],
            )
            group.apply_removal_policy(removal)
            self.groups.append(group)
