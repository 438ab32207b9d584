"""What a promotion writes into the target's registry (headrace/promotion/package.py), pure."""

from __future__ import annotations

import pytest

from headrace.naming import Names
from headrace.promotion.package import (
    PROMOTED_FROM,
    PROMOTION_REASON,
    ServingImageMismatch,
    metadata_text,
    promoted_metadata,
    promoted_request,
    target_serving_image,
)
from headrace.training.lineage import METADATA_ITEMS_MAX, METADATA_VALUE_MAX, fits_metadata
from headrace.training.payloads import ImageInfo

DIGEST = "5e" * 32
DEV_IMAGE = f"111122223333.dkr.ecr.us-east-1.amazonaws.com/cdk-hnb659fds-container-assets:{DIGEST}"
PROD_IMAGE = ImageInfo(
    uri=f"444455556666.dkr.ecr.eu-west-1.amazonaws.com/cdk-hnb659fds-container-assets:{DIGEST}", digest=DIGEST
)

SOURCE = {
    "ModelPackageArn": "arn:aws:sagemaker:us-east-1:111122223333:model-package/headrace-dev-churn/3",
    "ModelPackageVersion": 3,
    "CustomerMetadataProperties": {
        "lineage_uri": "s3://dev/churn/runs/j/lineage.json",
        "dataset_sha256": "ab",
        "serving_code_digest": DIGEST,
    },
    "InferenceSpecification": {
        "Containers": [{"Image": DEV_IMAGE, "ModelDataUrl": "s3://dev/churn/runs/j/output/model.tar.gz"}],
        "SupportedContentTypes": ["text/csv"],
    },
}


def _image_for(deployed: ImageInfo | None, source: dict[str, object] = SOURCE) -> tuple[ImageInfo, ImageInfo]:
    return target_serving_image(source, deployed, model="churn", source_stage="dev", target_stage="prod")


def test_a_reason_with_characters_the_registry_refuses_is_kept_readable() -> None:
    text = metadata_text('reviewed, "slices" fine {north: ok}; ' + "x" * 400)

    assert fits_metadata(text)
    assert text.startswith("reviewed slices fine north: ok ")
    assert len(text) == METADATA_VALUE_MAX


def test_the_promotion_keys_replace_the_source_lineage_and_keep_its_other_facts() -> None:
    metadata = promoted_metadata(
        SOURCE,
        source_stage="dev",
        promoted_by="arn:aws:sts::444455556666:assumed-role/release/alice",
        reason="ok, ship it",
        lineage_uri="s3://prod/churn/promoted/dev/v3/lineage.json",
        source_lineage_uri="s3://prod/churn/promoted/dev/v3/source-lineage.json",
    )

    assert metadata[PROMOTED_FROM] == SOURCE["ModelPackageArn"]
    assert metadata["lineage_uri"] == "s3://prod/churn/promoted/dev/v3/lineage.json"
    assert metadata["dataset_sha256"] == "ab"
    assert metadata[PROMOTION_REASON] == "ok ship it"
    assert all(fits_metadata(value) for value in metadata.values())


def test_the_promotion_keys_are_kept_when_the_source_fills_the_registry_s_item_limit() -> None:
    crowded = SOURCE | {"CustomerMetadataProperties": {f"k{i}": "v" for i in range(METADATA_ITEMS_MAX)}}

    metadata = promoted_metadata(
        crowded,
        source_stage="dev",
        promoted_by="me",
        reason="r",
        lineage_uri="s3://b/k",
        source_lineage_uri=None,
    )

    assert len(metadata) == METADATA_ITEMS_MAX
    assert metadata[PROMOTED_FROM] == SOURCE["ModelPackageArn"]


def test_the_target_runs_its_own_serving_image_when_it_is_the_version_s_build() -> None:
    source, target = _image_for(PROD_IMAGE)

    assert (source.uri, source.digest) == (DEV_IMAGE, DIGEST)
    assert target == PROD_IMAGE


def test_a_target_serving_another_build_is_refused_naming_both_digests() -> None:
    other = ImageInfo(uri=PROD_IMAGE.uri.replace(DIGEST, "0f" * 32), digest="0f" * 32)

    with pytest.raises(ServingImageMismatch) as refused:
        _image_for(other)

    message = str(refused.value)
    assert f"serving image digest {DIGEST} in dev, {'0f' * 32} in prod" in message
    assert "Deploy the same Headrace commit to prod first" in message


def test_a_target_whose_stacks_name_no_serving_image_is_refused() -> None:
    with pytest.raises(ServingImageMismatch, match="deploy the same Headrace commit to prod first"):
        _image_for(None)


def test_a_version_that_records_no_serving_image_digest_is_refused() -> None:
    unrecorded = SOURCE | {"CustomerMetadataProperties": {"dataset_sha256": "ab"}}

    with pytest.raises(ServingImageMismatch, match="records no serving image digest"):
        _image_for(PROD_IMAGE, unrecorded)


def test_the_target_version_s_container_is_the_target_image_with_the_copied_artifact() -> None:
    copied = "s3://prod/churn/promoted/dev/v3/model.tar.gz"

    request = promoted_request(
        SOURCE,
        target=Names("prod"),
        model="churn",
        approval_status="PendingManualApproval",
        model_data_url=copied,
        evaluation_uri=None,
        metadata={},
        source_stage="dev",
        image=PROD_IMAGE,
    )

    spec = request["InferenceSpecification"]
    assert spec["Containers"] == [{"Image": PROD_IMAGE.uri, "ModelDataUrl": copied}]
    assert spec["SupportedContentTypes"] == ["text/csv"]


def test_the_source_serving_image_is_kept_in_the_target_s_metadata() -> None:
    source, _ = _image_for(PROD_IMAGE)

    metadata = promoted_metadata(
        SOURCE,
        source_stage="dev",
        promoted_by="me",
        reason="r",
        lineage_uri="s3://b/k",
        source_lineage_uri=None,
        source_image=source,
    )

    assert metadata["headrace:source-serving-image"] == DEV_IMAGE
    assert metadata["serving_code_digest"] == DIGEST
