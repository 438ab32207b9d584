"""What a promotion writes: where the copies go, the target version's CreateModelPackage request and its
lineage.json. Pure: promote.py does the reading and writing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from headrace.naming import Names
from headrace.training.lineage import (
    METADATA_ITEMS_MAX,
    METADATA_VALUE_MAX,
    client_token,
    fits_metadata,
    package_tags,
)
from headrace.training.payloads import ApprovalStatus, ImageInfo

# CustomerMetadataProperties keys the target version carries; `PROMOTED_FROM` is the idempotency key.
PROMOTED_FROM = "headrace:promoted-from"
SOURCE_STAGE = "headrace:source-stage"
SOURCE_VERSION = "headrace:source-version"
PROMOTED_BY = "headrace:promoted-by"
PROMOTION_REASON = "headrace:promotion-reason"
SOURCE_LINEAGE = "headrace:source-lineage-uri"
SOURCE_SERVING_IMAGE = "headrace:source-serving-image"
# The key Register writes a version's serving image digest under (headrace/training/lineage.py).
SERVING_DIGEST = "serving_code_digest"


# A promoted version's artifact in the target's bucket, under PromotedLayout's prefix.
ARTIFACT = "model.tar.gz"


class PromotionError(ValueError):
    """A promotion that cannot be done; the message says what and where."""


class ServingImageMismatch(PromotionError):
    """The target stage does not run the serving image build the version was registered with."""


def target_serving_image(
    source: Mapping[str, Any],
    deployed: ImageInfo | None,
    *,
    model: str,
    source_stage: str,
    target_stage: str,
) -> tuple[ImageInfo, ImageInfo]:
    """(the source version's serving image, the image its target copy runs): the target stage's own serving
    image, which its stacks deployed, provided it is the very build the version was registered with (the
    same asset hash, which covers the container code, the headrace package and a custom model's code).

    Never the source's image: it lives in CDK's asset repository of the source's account and region, a
    repository of CDK's bootstrap, not of our stacks, whose policy we could not open to the target
    (https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policies.html), and an endpoint pulls
    from ECR in its own region only (https://docs.aws.amazon.com/sagemaker/latest/APIReference/
    API_ContainerDefinition.html, Image). The target's hosting role pulls its own image (stacks/deploy.py).
    """
    version = f"{source_stage} v{source['ModelPackageVersion']}"
    containers = (source.get("InferenceSpecification") or {}).get("Containers") or []
    uri = str(containers[0].get("Image") or "") if containers else ""
    digest = str((source.get("CustomerMetadataProperties") or {}).get(SERVING_DIGEST) or "")
    if not uri or not digest:
        raise ServingImageMismatch(
            f"{model} {version} records no serving image digest ({SERVING_DIGEST}), so nothing tells "
            f"whether {target_stage}'s serving image is its build: promote a version registered by this "
            "Headrace version"
        )
    if deployed is None:
        raise ServingImageMismatch(
            f"{target_stage}'s stacks name no serving image for {model} (deployed before promotion "
            f"checked images): deploy the same Headrace commit to {target_stage} first"
        )
    if deployed.digest != digest:
        raise ServingImageMismatch(
            f"{target_stage} serves {model} with another build than {version} was registered with: "
            f"serving image digest {digest} in {source_stage}, {deployed.digest} in {target_stage}. "
            f"Deploy the same Headrace commit to {target_stage} first (the one that trained {version}), "
            "then promote again"
        )
    return ImageInfo(uri=uri, digest=digest), deployed


@dataclass(frozen=True)
class PromotedLayout:
    """Where a promoted version's files go in the target's bucket: `<model>/promoted/<stage>/v<N>/`."""

    bucket: str
    model: str
    source_stage: str
    source_version: int

    @property
    def prefix(self) -> str:
        return f"{self.model}/promoted/{self.source_stage}/v{self.source_version}/"

    def key(self, name: str) -> str:
        return self.prefix + name

    def uri(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(name)}"


def promoted_artifact_keys(model: str) -> str:
    """The key pattern of `model`'s promoted artifacts in a target stage's bucket: what its endpoint role
    reads besides its own runs' outputs (stacks/deploy.py)."""
    return f"{model}/promoted/*/{ARTIFACT}"


def metadata_text(text: str) -> str:
    """`text` as a CustomerMetadataProperties value: refused characters become spaces, cut to the limit
    (lineage.json keeps the text as given)."""
    cleaned = " ".join("".join(c if fits_metadata(c) else " " for c in text).split())
    return cleaned[:METADATA_VALUE_MAX].strip() or "-"


def promoted_metadata(
    source: Mapping[str, Any],
    *,
    source_stage: str,
    promoted_by: str,
    reason: str,
    lineage_uri: str,
    source_lineage_uri: str | None,
    source_image: ImageInfo | None = None,
) -> dict[str, str]:
    """The source version's metadata (dataset sha256, image digests, metrics, ...) with the promotion's own
    keys; `lineage_uri` now names the target's lineage.json. At most the API's 50 items: the promotion's
    keys first, then the source's in its order."""
    own = {
        PROMOTED_FROM: str(source["ModelPackageArn"]),
        SOURCE_STAGE: source_stage,
        SOURCE_VERSION: str(source["ModelPackageVersion"]),
        PROMOTED_BY: metadata_text(promoted_by),
        PROMOTION_REASON: metadata_text(reason),
        "lineage_uri": lineage_uri,
        **({SOURCE_LINEAGE: source_lineage_uri} if source_lineage_uri else {}),
        **(
            {SOURCE_SERVING_IMAGE: source_image.uri}
            if source_image is not None and fits_metadata(source_image.uri)
            else {}
        ),
    }
    inherited = {k: v for k, v in (source.get("CustomerMetadataProperties") or {}).items() if k not in own}
    merged = own | inherited
    return dict(list(merged.items())[:METADATA_ITEMS_MAX])


def promoted_request(
    source: Mapping[str, Any],
    *,
    target: Names,
    model: str,
    approval_status: ApprovalStatus,
    model_data_url: str,
    evaluation_uri: str | None,
    metadata: Mapping[str, str],
    source_stage: str,
    image: ImageInfo,
) -> dict[str, Any]:
    """CreateModelPackage's parameters for the target's copy of `source` (DescribeModelPackage's answer):
    the target's own serving image (`target_serving_image`), the copied artifact, the target stage's
    approval status."""
    spec = source["InferenceSpecification"]
    containers = [
        dict(c) | {"Image": image.uri, "ModelDataUrl": model_data_url} for c in spec["Containers"][:1]
    ]
    inference = {k: v for k, v in spec.items() if k != "Containers"} | {"Containers": containers}
    version = int(source["ModelPackageVersion"])
    description = f"{model}: {source_stage} v{version} promoted. {source.get('ModelPackageDescription', '')}"
    request: dict[str, Any] = {
        "ModelPackageGroupName": target.model_package_group(model),
        "ModelPackageDescription": description.strip()[:1024],
        "ModelApprovalStatus": approval_status,
        "InferenceSpecification": inference,
        "CustomerMetadataProperties": dict(metadata),
        "Tags": [
            {"Key": k, "Value": v}
            for k, v in package_tags(target, model, metadata.get("training_job", "promoted")).items()
        ],
        # Two promotions of one version racing: SageMaker creates one package for one token.
        "ClientToken": client_token(f"{source['ModelPackageArn']}>{target.stage}"),
    }
    if source.get("MetadataProperties"):
        request["MetadataProperties"] = source["MetadataProperties"]
    if evaluation_uri:
        request["ModelMetrics"] = {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}}
        }
    return request


def promoted_lineage(
    source: Mapping[str, Any],
    *,
    model: str,
    source_stage: str,
    target_stage: str,
    promoted_by: str,
    reason: str,
    promoted_at: str,
    lineage_uri: str,
    copies: Mapping[str, str],
    source_lineage: Mapping[str, Any] | None,
    images: tuple[ImageInfo, ImageInfo],
) -> dict[str, Any]:
    """The target's lineage.json: the promotion (from which version, by whom, why, what was copied where,
    which serving image it ran there and runs here) and the source version's own lineage document, whole."""
    source_image, target_image = images
    return {
        "model": model,
        "lineage_uri": lineage_uri,
        "promotion": {
            "source_stage": source_stage,
            "target_stage": target_stage,
            "source_model_package_arn": source["ModelPackageArn"],
            "source_version": int(source["ModelPackageVersion"]),
            "promoted_by": promoted_by,
            "reason": reason,
            "promoted_at": promoted_at,
            "copies": dict(copies),
            # One build (one digest), published in each stage's own asset repository.
            "serving_image": {
                "source_uri": source_image.uri,
                "target_uri": target_image.uri,
                "digest": target_image.digest,
            },
        },
        "source": dict(source_lineage) if source_lineage is not None else None,
    }
