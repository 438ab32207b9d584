"""What a promotion writes into the target's registry (headrace/promotion/package.py), pure."""

from __future__ import annotations

from headrace.promotion.package import PROMOTED_FROM, PROMOTION_REASON, metadata_text, promoted_metadata
from headrace.training.lineage import METADATA_ITEMS_MAX, METADATA_VALUE_MAX, fits_metadata

SOURCE = {
    "ModelPackageArn": "arn:aws:sagemaker:us-east-1:111122223333:model-package/headrace-dev-churn/3",
    "ModelPackageVersion": 3,
    "CustomerMetadataProperties": {
        "lineage_uri": "s3://dev/churn/runs/j/lineage.json",
        "dataset_sha256": "ab",
    },
}


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
