"""A model version's lineage as CustomerMetadataProperties: values SageMaker's API accepts, read back."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from datetime import UTC, datetime

import pytest

from headrace.config import ModelConfig
from headrace.naming import Names
from headrace.training.evaluation import ArtifactError, evaluation_from_archive
from headrace.training.instances import has_instance_storage
from headrace.training.lineage import (
    client_token,
    decode_metrics,
    encode_metrics,
    fits_metadata,
    lineage_document,
    package_request,
)
from headrace.training.payloads import (
    DatasetRef,
    GateResult,
    ImageInfo,
    RegisterRequest,
    RunDataset,
    RunInfo,
    SplitRows,
)
from headrace.training_job import hyperparameters_for

SHA = hashlib.sha256(b"data").hexdigest()
JOB = f"churn-{SHA[:12]}-0a1b2c3d"
REPOSITORY = "cdk-hnb659fds-container-assets-123456789012-us-east-1"
IMAGE = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}:{SHA}"


def register_request(candidate: dict[str, float | None]) -> RegisterRequest:
    run = f"s3://data/churn/runs/{JOB}"
    return RegisterRequest(
        model="churn",
        dataset=DatasetRef(
            model="churn",
            sha256=SHA,
            bucket="data",
            key="churn/incoming/a.csv",
            version_id="3sL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
            dataset_key=f"churn/datasets/{SHA}/data.csv",
        ),
        run=RunInfo(
            job_name=JOB,
            train_uri=f"{run}/splits/train/",
            validation_uri=f"{run}/splits/validation/",
            test_uri=f"{run}/splits/test/",
            output_uri=f"{run}/output/",
            checkpoint_uri=f"{run}/checkpoints/",
            execution_arn="arn:aws:states:us-east-1:123456789012:execution:headrace-dev-churn-training:churn-x",
            started_at=datetime(2026, 11, 23, tzinfo=UTC),
            rows=SplitRows(train=600, validation=200, test=200),
        ),
        gate=GateResult(
            passed=True,
            reasons=[],
            notes=[],
            metric="auc",
            candidate=candidate,
            champion=None,
            evaluation_uri=f"{run}/evaluation.json",
        ),
        model_artifacts=f"{run}/output/{JOB}/output/model.tar.gz",
        training_job_arn=f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB}",
        image=ImageInfo(uri=IMAGE, digest=SHA),
        serving_image=ImageInfo(uri=IMAGE, digest=SHA),
    )


def test_metrics_are_written_as_name_value_pairs_with_the_gate_metric_first() -> None:
    text = encode_metrics({"logloss": 0.41234567, "auc": 0.83123456789, "rows": 200, "bad": None}, "auc")
    assert text == "auc=0.831235 logloss=0.412346 rows=200"
    assert fits_metadata(text)
    assert decode_metrics(text) == {"auc": 0.831235, "logloss": 0.412346, "rows": 200.0}


def test_metrics_that_do_not_fit_one_value_keep_the_gate_metric() -> None:
    many = {f"metric_number_{i:02d}": 0.123456789 for i in range(40)} | {"auc": 0.8}
    text = encode_metrics(many, "auc")
    assert len(text) <= 256
    assert text.startswith("auc=0.8 ")


def test_decoding_skips_what_is_not_a_number() -> None:
    assert decode_metrics("auc=0.8 junk rmse=x logloss=0.3") == {"auc": 0.8, "logloss": 0.3}


@pytest.mark.parametrize(
    ("value", "fits"),
    [
        ("auc=0.8 logloss=0.3", True),
        (IMAGE, True),
        ('{"auc": 0.8}', False),
        ("a,b", False),
        ("x" * 257, False),
    ],
)
def test_metadata_values_follow_the_apis_character_and_length_rules(value: str, fits: bool) -> None:
    assert fits_metadata(value) is fits


def test_the_package_request_carries_lineage_metrics_and_the_evaluation(example_model: ModelConfig) -> None:
    request = register_request({"auc": 0.83, "logloss": 0.41})
    hyper = hyperparameters_for(example_model)
    lineage_uri = f"s3://data/churn/runs/{JOB}/lineage.json"
    package = package_request(request, example_model, Names("dev"), hyper, lineage_uri)

    assert package["ModelPackageGroupName"] == "headrace-dev-churn"
    assert package["ModelApprovalStatus"] == "Approved"  # churn.yaml: gate.approval auto
    [container] = package["InferenceSpecification"]["Containers"]
    assert container == {"Image": IMAGE, "ModelDataUrl": request.model_artifacts}
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"] == {
        "ContentType": "application/json",
        "S3Uri": f"s3://data/churn/runs/{JOB}/evaluation.json",
    }
    metadata = package["CustomerMetadataProperties"]
    assert metadata["dataset_sha256"] == SHA
    assert metadata["training_job"] == JOB
    assert metadata["code_digest"] == SHA
    assert metadata["metrics"] == "auc=0.83 logloss=0.41"
    assert metadata["lineage_uri"] == lineage_uri
    assert all(fits_metadata(v) for v in metadata.values())
    assert (
        metadata["hyperparameters_sha256"]
        == hashlib.sha256(json.dumps(hyper, sort_keys=True).encode()).hexdigest()
    )
    assert len(package["ClientToken"]) == 36 and package["ClientToken"] == client_token(JOB)
    assert {"Key": "headrace:run", "Value": JOB} in package["Tags"]


def test_manual_approval_registers_pending(example_model: ModelConfig) -> None:
    manual = example_model.model_copy(
        update={"gate": example_model.gate.model_copy(update={"approval": "manual"})}
    )
    package = package_request(register_request({"auc": 0.8}), manual, Names("dev"), {}, "s3://b/k")
    assert package["ModelApprovalStatus"] == "PendingManualApproval"


def _archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["evaluation.json", "./evaluation.json"])
def test_the_evaluation_is_read_from_the_model_archive_root(name: str) -> None:
    document = json.dumps({"metric": "auc", "metrics": {"auc": 0.8}, "slices": {}}).encode()
    evaluation, raw = evaluation_from_archive(
        _archive({"model.json": b"{}", name: document}), "s3://b/m.tar.gz"
    )
    assert evaluation.metrics == {"auc": 0.8}
    assert raw == document


def test_an_archive_without_an_evaluation_says_what_it_holds() -> None:
    with pytest.raises(ArtifactError, match=r"no evaluation.json .*model.json"):
        evaluation_from_archive(_archive({"model.json": b"{}"}), "s3://b/m.tar.gz")


def test_a_file_that_is_not_an_archive_is_an_artifact_error() -> None:
    with pytest.raises(ArtifactError, match=r"not a readable tar\.gz"):
        evaluation_from_archive(b"not a tarball", "s3://b/m.tar.gz")


@pytest.mark.parametrize(
    ("instance_type", "local"),
    [
        ("ml.m5.xlarge", False),
        ("ml.c5.2xlarge", False),
        ("ml.p3.2xlarge", False),
        ("ml.inf2.xlarge", False),
        ("ml.m5d.xlarge", True),
        ("ml.g4dn.xlarge", True),
        ("ml.p4d.24xlarge", True),
        ("ml.g5.2xlarge", True),
        ("ml.p5.48xlarge", True),
        ("ml.c6id.large", True),
    ],
)
def test_instance_types_with_local_storage_are_recognised(instance_type: str, local: bool) -> None:
    assert has_instance_storage(instance_type) is local


def test_lineage_names_the_datasets_and_the_production_lineage(example_model: ModelConfig) -> None:
    upload = RunDataset(sha256="a" * 64, dataset_key="churn/datasets/a/data.csv", rows=900)
    lineage = "s3://data/churn/monitoring/quality/quality-2026-11-23T10-00-00Z/lineage.json"
    production = RunDataset(
        sha256="b" * 64,
        dataset_key="churn/datasets/b/data.csv",
        source="production",
        rows=600,
        lineage_uri=lineage,
    )
    base = register_request({"auc": 0.85})
    request = base.model_copy(
        update={"run": base.run.model_copy(update={"datasets": [upload, production], "holdout": production})}
    )
    metadata = package_request(
        request, example_model, Names("dev"), hyperparameters_for(example_model), "s3://x"
    )["CustomerMetadataProperties"]
    assert metadata["datasets"] == f"{'b' * 16}:production:600 {'a' * 16}:upload:900"
    assert metadata["production_lineage"] == lineage
    assert metadata["holdout_sha256"] == "b" * 64
    assert all(fits_metadata(v) for v in metadata.values())
    document = lineage_document(request, example_model, {}, "s3://x")
    assert [d["lineage_uri"] for d in document["datasets"]] == [None, lineage]
