"""Promotion (headrace/promotion) against moto in-process: dev's registry and bucket, prod's bucket, key,
ledger and registry in one account, as on the local plane."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from headrace.config import ModelConfig
from headrace.ledger import DynamoLedger
from headrace.naming import Names
from headrace.promotion import (
    NotApproved,
    PromotionError,
    PromotionRequest,
    ServingImageMismatch,
    SourceStage,
    TargetStage,
    parse_version,
    promote,
)
from headrace.promotion.package import PROMOTED_FROM, SOURCE_SERVING_IMAGE, SOURCE_STAGE, SOURCE_VERSION
from headrace.runs import list_runs
from headrace.stages import StageSettings, load_stage
from headrace.training.payloads import ImageInfo
from tests.support.moto import DATA_BUCKET, LEDGER_TABLE, REGION, MotoAccount

DEV_BUCKET = "headrace-dev-data-databucket-source"
# Each stage's serving image: one build (one asset hash), published in each stage's CDK asset repository.
SERVING_DIGEST = "5e" * 32
IMAGE = f"111122223333.dkr.ecr.us-east-1.amazonaws.com/cdk-hnb659fds-container-assets:{SERVING_DIGEST}"
PROD_IMAGE = ImageInfo(
    uri=f"444455556666.dkr.ecr.eu-west-1.amazonaws.com/cdk-hnb659fds-container-assets:{SERVING_DIGEST}",
    digest=SERVING_DIGEST,
)
JOB = "churn-0123456789ab-cdef0123"
AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
PROMOTER = "arn:aws:sts::123456789012:assumed-role/release/alice"


def _group_exists(sagemaker: Any, group: str) -> bool:
    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    except sagemaker.exceptions.ClientError:
        return False
    return True


@dataclass
class Stages:
    dev: SourceStage
    prod: TargetStage
    sagemaker: Any
    s3: Any
    ledger: DynamoLedger
    dynamodb: Any
    key_arn: str

    def register_in_dev(self, model: str, status: str, *, artifact: bytes = b"model bytes") -> str:
        """A dev version as Register leaves it: artifact, evaluation and lineage.json in dev's bucket."""
        prefix = f"{model}/runs/{JOB}"
        self.s3.put_object(Bucket=DEV_BUCKET, Key=f"{prefix}/output/model.tar.gz", Body=artifact)
        self.s3.put_object(Bucket=DEV_BUCKET, Key=f"{prefix}/evaluation.json", Body=b'{"auc": 0.83}')
        lineage = {"model": model, "dataset": {"sha256": "a" * 64}, "training": {"job_name": JOB}}
        self.s3.put_object(Bucket=DEV_BUCKET, Key=f"{prefix}/lineage.json", Body=json.dumps(lineage).encode())
        group = self.dev.names.model_package_group(model)
        if not _group_exists(self.sagemaker, group):
            self.sagemaker.create_model_package_group(ModelPackageGroupName=group)
        return str(
            self.sagemaker.create_model_package(
                ModelPackageGroupName=group,
                ModelApprovalStatus=status,
                InferenceSpecification={
                    "Containers": [
                        {"Image": IMAGE, "ModelDataUrl": f"s3://{DEV_BUCKET}/{prefix}/output/model.tar.gz"}
                    ],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
                ModelMetrics={
                    "ModelQuality": {
                        "Statistics": {
                            "ContentType": "application/json",
                            "S3Uri": f"s3://{DEV_BUCKET}/{prefix}/evaluation.json",
                        }
                    }
                },
                CustomerMetadataProperties={
                    "training_job": JOB,
                    "dataset_sha256": "a" * 64,
                    "code_digest": "c" * 64,
                    "serving_code_digest": SERVING_DIGEST,
                    "metrics": "auc=0.83",
                    "lineage_uri": f"s3://{DEV_BUCKET}/{prefix}/lineage.json",
                },
            )["ModelPackageArn"]
        )

    def promote(self, model: ModelConfig, version: str = "v1", reason: str = "two weeks in dev") -> Any:
        request = PromotionRequest(
            model=model, version=parse_version(version), reason=reason, promoted_by=PROMOTER
        )
        return promote(request, self.dev, self.prod, self.ledger, lambda: AT)

    def prod_packages(self, model: str) -> list[dict[str, Any]]:
        group = self.prod.names.model_package_group(model)
        summaries = self.sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
        return [
            self.sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries
        ]


@pytest.fixture
def stages(moto_account: MotoAccount) -> Stages:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    moto_account.s3.create_bucket(Bucket=DEV_BUCKET)
    key_arn = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    return Stages(
        dev=SourceStage(names=Names("dev"), sagemaker=sagemaker),
        prod=TargetStage(
            names=Names("prod"),
            sagemaker=sagemaker,
            s3=moto_account.s3,
            bucket=DATA_BUCKET,
            key_arn=key_arn,
            settings=load_stage("prod"),
            serving_image=PROD_IMAGE,
        ),
        sagemaker=sagemaker,
        s3=moto_account.s3,
        ledger=DynamoLedger(moto_account.dynamodb, LEDGER_TABLE),
        dynamodb=moto_account.dynamodb,
        key_arn=key_arn,
    )


def test_an_approved_dev_version_becomes_a_pending_prod_version_with_lineage_back_to_dev(
    stages: Stages, example_model: ModelConfig
) -> None:
    source = stages.register_in_dev(example_model.name, "Approved")

    promoted = stages.promote(example_model)

    assert (promoted.created, promoted.target_stage, promoted.target_version) == (True, "prod", 1)
    # prod's stages.yaml policy is manual, whatever the model's own gate says.
    assert promoted.approval_status == "PendingManualApproval"
    [package] = stages.prod_packages(example_model.name)
    metadata = package["CustomerMetadataProperties"]
    assert metadata[PROMOTED_FROM] == source
    assert (metadata[SOURCE_STAGE], metadata[SOURCE_VERSION]) == ("dev", "1")
    assert metadata["dataset_sha256"] == "a" * 64 and metadata["code_digest"] == "c" * 64
    assert metadata["headrace:promoted-by"] == PROMOTER
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["Image"] == PROD_IMAGE.uri
    prefix = f"{example_model.name}/promoted/dev/v1/"
    assert container["ModelDataUrl"] == f"s3://{DATA_BUCKET}/{prefix}model.tar.gz"


def test_the_copies_are_in_the_target_bucket_encrypted_with_the_target_key(
    stages: Stages, example_model: ModelConfig
) -> None:
    stages.register_in_dev(example_model.name, "Approved", artifact=b"the trained model")

    stages.promote(example_model)

    prefix = f"{example_model.name}/promoted/dev/v1/"
    artifact = stages.s3.get_object(Bucket=DATA_BUCKET, Key=prefix + "model.tar.gz")
    assert artifact["Body"].read() == b"the trained model"
    for name in ("model.tar.gz", "evaluation.json", "source-lineage.json", "lineage.json"):
        head = stages.s3.head_object(Bucket=DATA_BUCKET, Key=prefix + name)
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", stages.key_arn), name
    lineage = json.loads(stages.s3.get_object(Bucket=DATA_BUCKET, Key=prefix + "lineage.json")["Body"].read())
    assert lineage["promotion"]["source_stage"] == "dev"
    assert lineage["promotion"]["reason"] == "two weeks in dev"
    assert lineage["source"]["training"]["job_name"] == JOB


def test_the_promoted_version_runs_the_target_s_own_serving_image_and_its_lineage_names_both(
    stages: Stages, example_model: ModelConfig
) -> None:
    stages.register_in_dev(example_model.name, "Approved")

    promoted = stages.promote(example_model)

    [package] = stages.prod_packages(example_model.name)
    assert package["InferenceSpecification"]["Containers"][0]["Image"] == PROD_IMAGE.uri
    metadata = package["CustomerMetadataProperties"]
    assert (metadata[SOURCE_SERVING_IMAGE], metadata["serving_code_digest"]) == (IMAGE, SERVING_DIGEST)
    key = str(promoted.lineage_uri).removeprefix(f"s3://{DATA_BUCKET}/")
    lineage = json.loads(stages.s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read())
    assert lineage["promotion"]["serving_image"] == {
        "source_uri": IMAGE,
        "target_uri": PROD_IMAGE.uri,
        "digest": SERVING_DIGEST,
    }


def test_a_target_serving_another_build_is_refused_naming_both_digests_and_nothing_is_written(
    stages: Stages, example_model: ModelConfig
) -> None:
    stages.register_in_dev(example_model.name, "Approved")
    other = ImageInfo(uri=PROD_IMAGE.uri.replace(SERVING_DIGEST, "0f" * 32), digest="0f" * 32)
    stages.prod = TargetStage(**{**stages.prod.__dict__, "serving_image": other})

    with pytest.raises(ServingImageMismatch) as refused:
        stages.promote(example_model)

    message = str(refused.value)
    assert SERVING_DIGEST in message and "0f" * 32 in message
    assert "Deploy the same Headrace commit to prod first" in message
    assert not _group_exists(stages.sagemaker, "headrace-prod-churn")
    assert stages.s3.list_objects_v2(Bucket=DATA_BUCKET).get("KeyCount") == 0


def test_a_target_whose_stacks_name_no_serving_image_is_refused_before_anything_is_written(
    stages: Stages, example_model: ModelConfig
) -> None:
    stages.register_in_dev(example_model.name, "Approved")
    stages.prod = TargetStage(**{**stages.prod.__dict__, "serving_image": None})

    with pytest.raises(ServingImageMismatch, match="deploy the same Headrace commit to prod first"):
        stages.promote(example_model)

    assert not _group_exists(stages.sagemaker, "headrace-prod-churn")
    assert stages.s3.list_objects_v2(Bucket=DATA_BUCKET).get("KeyCount") == 0


def test_the_promoted_version_is_a_registered_run_of_the_target_ledger(
    stages: Stages, example_model: ModelConfig
) -> None:
    stages.register_in_dev(example_model.name, "Approved")

    promoted = stages.promote(example_model)

    [run] = list_runs(stages.dynamodb, LEDGER_TABLE, example_model.name)
    assert (run.job_name, run.status, run.version) == (JOB, "registered", 1)
    assert (run.model_package_arn, run.approval_status) == (promoted.target_arn, "PendingManualApproval")
    assert run.dataset_sha256 == "a" * 64


def test_promoting_twice_reports_the_first_promotion_and_copies_nothing(
    stages: Stages, example_model: ModelConfig
) -> None:
    stages.register_in_dev(example_model.name, "Approved")
    first = stages.promote(example_model)
    stages.s3.delete_object(Bucket=DATA_BUCKET, Key=f"{example_model.name}/promoted/dev/v1/lineage.json")

    again = stages.promote(example_model, "1")

    assert (again.created, again.target_arn, again.target_version) == (False, first.target_arn, 1)
    assert len(stages.prod_packages(example_model.name)) == 1
    listed = stages.s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix=f"{example_model.name}/promoted/")
    assert "lineage.json" not in {o["Key"].rsplit("/", 1)[-1] for o in listed.get("Contents", [])}


@pytest.mark.parametrize("status", ["Rejected", "PendingManualApproval"])
def test_a_version_that_is_not_approved_is_refused_with_its_status(
    stages: Stages, example_model: ModelConfig, status: str
) -> None:
    stages.register_in_dev(example_model.name, status)

    with pytest.raises(NotApproved, match=f"v1 of churn is {status} in dev: only an Approved version"):
        stages.promote(example_model)
    # Refused before anything is written: not even prod's group.
    assert not _group_exists(stages.sagemaker, "headrace-prod-churn")
    assert stages.s3.list_objects_v2(Bucket=DATA_BUCKET).get("KeyCount") == 0


def test_an_unknown_version_is_refused_listing_the_known_ones(
    stages: Stages, example_model: ModelConfig
) -> None:
    stages.register_in_dev(example_model.name, "Approved")

    with pytest.raises(
        PromotionError, match=r"churn has no version 7 in stage dev \(group headrace-dev-churn: v1\)"
    ):
        stages.promote(example_model, "v7")


def test_a_model_never_registered_in_the_source_is_refused(
    stages: Stages, example_model: ModelConfig
) -> None:
    with pytest.raises(PromotionError, match=r"churn has no version 1 in stage dev .*none registered"):
        stages.promote(example_model)


@pytest.mark.parametrize("text", ["", "v", "three", "v0", "-1"])
def test_a_version_that_is_not_a_number_is_refused(text: str) -> None:
    with pytest.raises(PromotionError, match="is not a version number"):
        parse_version(text)


def test_an_auto_approving_target_registers_the_promoted_version_approved(
    stages: Stages, example_model: ModelConfig
) -> None:
    stages.register_in_dev(example_model.name, "Approved")
    stages.prod = TargetStage(**{**stages.prod.__dict__, "settings": StageSettings(approval="auto")})

    assert stages.promote(example_model).approval_status == "Approved"


def test_a_source_in_another_account_is_named_by_its_group_arn() -> None:
    source = SourceStage(names=Names("dev"), sagemaker=None, account="111122223333", region="eu-west-1")

    assert (
        source.group("churn")
        == "arn:aws:sagemaker:eu-west-1:111122223333:model-package-group/headrace-dev-churn"
    )
