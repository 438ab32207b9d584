"""`headrace promote`: an Approved version of the source stage becomes a version of the target stage's
registry group, its files copied into the target's bucket and re-encrypted with the target's key.

Idempotent: a target version whose `headrace:promoted-from` metadata is the source version's ARN is the
promotion, found and reported instead of made again; CreateModelPackage's ClientToken covers the window
between creating the version and finding it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from headrace.aws.errors import is_missing_resource
from headrace.config import ModelConfig
from headrace.ledger import RunItem
from headrace.ledger.keys import sort_time
from headrace.ledger.ports import RunLedger
from headrace.naming import Names
from headrace.promotion.package import (
    ARTIFACT,
    PROMOTED_FROM,
    PromotedLayout,
    PromotionError,
    promoted_lineage,
    promoted_metadata,
    promoted_request,
    target_serving_image,
)
from headrace.stages import StageSettings
from headrace.training.aws import SageMakerRegistry
from headrace.training.layout import split_s3_uri
from headrace.training.lineage import approval_status
from headrace.training.payloads import ImageInfo

# CopyObject copies at most 5 GB in one call; boto3's managed `copy` switches to UploadPartCopy above its
# threshold (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html).
EVALUATION = "evaluation.json"
SOURCE_LINEAGE = "source-lineage.json"
LINEAGE = "lineage.json"


class NotApproved(PromotionError):
    """The source version is not Approved: only a reviewed version crosses stages."""


@dataclass(frozen=True)
class SourceStage:
    """The stage a version comes from, read with the promoter's credentials: in another account, through
    its resource policies (stacks/promotion.py)."""

    names: Names
    sagemaker: Any
    # Where the stage is deployed when it is another account than the promoter's (stages.yaml): its groups
    # are then named by ARN, which ListModelPackages takes for ModelPackageGroupName
    # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListModelPackages.html).
    account: str | None = None
    region: str | None = None

    def group(self, model: str) -> str:
        name = self.names.model_package_group(model)
        if self.account is None or self.region is None:
            return name
        where = f"{partition(self.region)}:sagemaker:{self.region}:{self.account}"
        return f"arn:{where}:model-package-group/{name}"


@dataclass(frozen=True)
class TargetStage:
    """The stage a version goes to: its registry, its data bucket and key, its policies."""

    names: Names
    sagemaker: Any
    s3: Any
    bucket: str
    key_arn: str
    # Its approval policy decides the new version's status (prod: manual).
    settings: StageSettings
    # The serving image its stacks run the model with (their ServingImage outputs); None: they name none.
    serving_image: ImageInfo | None


@dataclass(frozen=True)
class PromotionRequest:
    model: ModelConfig
    version: int
    reason: str
    # STS GetCallerIdentity's Arn of whoever promotes.
    promoted_by: str


def partition(region: str) -> str:
    """The ARN partition of a region (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True)
class Promoted:
    model: str
    source_stage: str
    source_version: int
    source_arn: str
    target_stage: str
    target_arn: str
    target_version: int
    approval_status: str
    lineage_uri: str | None
    # False: the version had been promoted before; nothing was copied or created.
    created: bool


def parse_version(text: str) -> int:
    """A registry version as people write it: `3` or `v3`."""
    number = text.strip().removeprefix("v")
    if not number.isdigit() or int(number) < 1:
        raise PromotionError(f"'{text}' is not a version number: use the number from `headrace runs`, like 3")
    return int(number)


def promote(
    request: PromotionRequest,
    source: SourceStage,
    target: TargetStage,
    ledger: RunLedger,
    clock: Callable[[], datetime],
) -> Promoted:
    model = request.model.name
    if source.names.stage == target.names.stage:
        raise PromotionError(f"source and target are both stage {source.names.stage}: name two stages")
    described = _source_version(source, model, request.version)
    status = str(described["ModelApprovalStatus"])
    if status != "Approved":
        raise NotApproved(
            f"v{request.version} of {model} is {status} in {source.names.stage}: "
            "only an Approved version can be promoted"
        )
    source_arn = str(described["ModelPackageArn"])
    registry = SageMakerRegistry(target.sagemaker)
    group = target.names.model_package_group(model)
    found = _promotion_of(target.sagemaker, group, source_arn)
    if found is not None:
        version = registry.describe_version(found)
        return _result(
            request,
            source,
            target,
            source_arn,
            version.arn,
            version.version,
            version.approval_status,
            None,
            created=False,
        )
    # Before anything is written: a target that does not run the version's build registers nothing.
    images = target_serving_image(
        described,
        target.serving_image,
        model=model,
        source_stage=source.names.stage,
        target_stage=target.names.stage,
    )
    registry.ensure_group(
        group,
        request.model.description or f"Headrace model {model}",
        {"headrace:stage": target.names.stage, "headrace:model": model},
    )
    layout = PromotedLayout(target.bucket, model, source.names.stage, request.version)
    copies = _copy_files(described, target, layout)
    source_lineage = _read_json(target.s3, copies.get(SOURCE_LINEAGE))
    at = clock()
    lineage_uri = layout.uri(LINEAGE)
    document = promoted_lineage(
        described,
        model=model,
        source_stage=source.names.stage,
        target_stage=target.names.stage,
        promoted_by=request.promoted_by,
        reason=request.reason,
        promoted_at=at.isoformat(),
        lineage_uri=lineage_uri,
        copies=copies,
        source_lineage=source_lineage,
        images=images,
    )
    target.s3.put_object(
        Bucket=target.bucket,
        Key=layout.key(LINEAGE),
        Body=json.dumps(document, indent=1).encode(),
        ContentType="application/json",
        **_encrypted(target.key_arn),
    )
    metadata = promoted_metadata(
        described,
        source_stage=source.names.stage,
        promoted_by=request.promoted_by,
        reason=request.reason,
        lineage_uri=lineage_uri,
        source_lineage_uri=copies.get(SOURCE_LINEAGE),
        source_image=images[0],
    )
    wanted = approval_status(target.settings.apply(request.model))
    arn = registry.create_version(
        promoted_request(
            described,
            target=target.names,
            model=model,
            approval_status=wanted,
            model_data_url=copies[ARTIFACT],
            evaluation_uri=copies.get(EVALUATION),
            metadata=metadata,
            source_stage=source.names.stage,
            image=images[1],
        )
    )
    version = registry.describe_version(arn)
    _record(ledger, model, described, version.arn, version.version, version.approval_status, at)
    return _result(
        request,
        source,
        target,
        source_arn,
        version.arn,
        version.version,
        version.approval_status,
        lineage_uri,
        created=True,
    )


def _result(
    request: PromotionRequest,
    source: SourceStage,
    target: TargetStage,
    source_arn: str,
    arn: str,
    version: int,
    status: str,
    lineage_uri: str | None,
    *,
    created: bool,
) -> Promoted:
    return Promoted(
        model=request.model.name,
        source_stage=source.names.stage,
        source_version=request.version,
        source_arn=source_arn,
        target_stage=target.names.stage,
        target_arn=arn,
        target_version=version,
        approval_status=status,
        lineage_uri=lineage_uri,
        created=created,
    )


def _summaries(sagemaker: Any, group: str) -> list[dict[str, Any]]:
    """Every version of `group` (ListModelPackages, all pages); none when the group does not exist."""
    try:
        pages = sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group)
        return [summary for page in pages for summary in page["ModelPackageSummaryList"]]
    except ClientError as exc:
        if is_missing_resource(exc):
            return []
        raise


def _source_version(source: SourceStage, model: str, version: int) -> dict[str, Any]:
    """DescribeModelPackage of `model`'s version `version` in the source stage."""
    group = source.group(model)
    summaries = _summaries(source.sagemaker, group)
    match = next((s for s in summaries if int(s.get("ModelPackageVersion", 0)) == version), None)
    if match is None:
        known = ", ".join(f"v{s['ModelPackageVersion']}" for s in summaries) or "none registered"
        raise PromotionError(
            f"{model} has no version {version} in stage {source.names.stage} (group {group}: {known})"
        )
    return dict(source.sagemaker.describe_model_package(ModelPackageName=match["ModelPackageArn"]))


def _promotion_of(sagemaker: Any, group: str, source_arn: str) -> str | None:
    """The target version promoted from `source_arn`, if there is one (newest first: a re-promotion is the
    newest version more often than not)."""
    for summary in sorted(_summaries(sagemaker, group), key=lambda s: -int(s["ModelPackageVersion"])):
        arn = str(summary["ModelPackageArn"])
        described = sagemaker.describe_model_package(ModelPackageName=arn)
        if (described.get("CustomerMetadataProperties") or {}).get(PROMOTED_FROM) == source_arn:
            return arn
    return None


def _encrypted(key_arn: str) -> dict[str, str]:
    """SSE-KMS with the target stage's key (https://docs.aws.amazon.com/AmazonS3/latest/userguide/
    specifying-kms-encryption.html): the copy is the target's, readable with the target's grants alone."""
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_arn}


def _copy_files(described: dict[str, Any], target: TargetStage, layout: PromotedLayout) -> dict[str, str]:
    """The version's artifact, and its evaluation and lineage documents where it names them, copied into
    the target's bucket (the target's credentials read the source's objects); {file name: target URI}."""
    model = described.get("ModelPackageGroupName", layout.model)
    containers = described.get("InferenceSpecification", {}).get("Containers") or []
    if not containers or not containers[0].get("ModelDataUrl"):
        raise PromotionError(f"{described['ModelPackageArn']} ({model}) has no ModelDataUrl to promote")
    wanted = {ARTIFACT: str(containers[0]["ModelDataUrl"])}
    statistics = (described.get("ModelMetrics") or {}).get("ModelQuality", {}).get("Statistics") or {}
    if statistics.get("S3Uri"):
        wanted[EVALUATION] = str(statistics["S3Uri"])
    lineage = (described.get("CustomerMetadataProperties") or {}).get("lineage_uri")
    if lineage:
        wanted[SOURCE_LINEAGE] = str(lineage)
    copies: dict[str, str] = {}
    for name, uri in wanted.items():
        try:
            bucket, key = split_s3_uri(uri)
        except ValueError as exc:
            raise PromotionError(f"{described['ModelPackageArn']}: {exc}") from None
        try:
            target.s3.copy(
                {"Bucket": bucket, "Key": key},
                target.bucket,
                layout.key(name),
                ExtraArgs=_encrypted(target.key_arn),
            )
        except ClientError as exc:
            raise PromotionError(
                f"cannot copy {uri} ({name} of {described['ModelPackageArn']}) into "
                f"s3://{target.bucket}/{layout.key(name)}: {exc}"
            ) from exc
        copies[name] = layout.uri(name)
    return copies


def _read_json(s3: Any, uri: str | None) -> dict[str, Any] | None:
    if uri is None:
        return None
    bucket, key = split_s3_uri(uri)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _record(
    ledger: RunLedger,
    model: str,
    described: dict[str, Any],
    arn: str,
    version: int,
    status: str,
    at: datetime,
) -> None:
    """The promoted version as a registered run of the target's ledger (keyed by the training job that
    made it), so `headrace runs` and `status` list it and `approve` mirrors its status there."""
    metadata = described.get("CustomerMetadataProperties") or {}
    job = metadata.get("training_job") or f"promoted-{described['ModelPackageVersion']}"
    item = RunItem.registered(
        model, job, model_package_arn=arn, version=version, approval_status=status, at=at
    ).model_copy(
        update={
            "started_at": sort_time(at),
            "dataset_sha256": metadata.get("dataset_sha256"),
            "dataset_key": metadata.get("dataset_key"),
        }
    )
    ledger.update(item)
