"""Promotion on a plane with dev and prod (`headrace local up --stages dev,prod`): churn v1, trained and
auto-approved in dev, is promoted to prod, where it waits for a person (prod's stages.yaml policy is manual)
with its lineage back to dev; approved there, prod's endpoint serves it with prod's guards. Promoting it
again changes nothing; a version rejected in dev is refused. dev and prod are two accounts (STAGE_ACCOUNTS):
the promotion reads dev through the grants dev's stacks give prod's account, and only through them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from headrace.datagen import generate
from headrace.naming import Names, Outputs
from headrace.promotion.package import PROMOTED_FROM, SOURCE_STAGE, SOURCE_VERSION
from headrace.runs import list_runs
from headrace.waiting import wait_for

from .conftest import REPO, STAGE_ACCOUNTS, RunningPlane, execution_failures

pytestmark = pytest.mark.e2e

DEV, PROD = Names("dev"), Names("prod")
MODEL = "churn"


def headrace(plane: RunningPlane, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headrace.cli.main", *args],
        env={**os.environ, **plane.environment(), "COLUMNS": "200", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _packages(plane: RunningPlane, names: Names) -> list[dict[str, Any]]:
    sagemaker = plane.stage_clients(names.stage).client("sagemaker")
    try:
        listed = sagemaker.list_model_packages(ModelPackageGroupName=names.model_package_group(MODEL))
    except sagemaker.exceptions.ClientError:
        return []
    return [
        dict(sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"]))
        for s in listed["ModelPackageSummaryList"]
    ]


def _deployment_ended(plane: RunningPlane, names: Names) -> dict[str, Any]:
    sfn = plane.stage_clients(names.stage).client("stepfunctions")
    machine = plane.info.outputs[names.pipeline_stack][Outputs.deploy_state_machine(MODEL)]

    def ended() -> dict[str, Any] | None:
        executions = sfn.list_executions(stateMachineArn=machine)["executions"]
        if not executions:
            return None
        described = sfn.describe_execution(executionArn=executions[0]["executionArn"])
        return dict(described) if described["status"] != "RUNNING" else None

    return wait_for(ended, f"{names.stage}'s deployment of {MODEL}", timeout_s=240, interval_s=0.5)


@pytest.fixture(scope="module")
def dev_v1(two_stage_plane: RunningPlane) -> dict[str, Any]:
    """churn v1 registered (and auto-approved: churn's gate says auto, dev's policy is the model's) in dev."""
    plane = two_stage_plane
    info = plane.deployments["dev"].model(MODEL)
    frame = generate(plane.models[MODEL], 3000, seed=411)
    plane.clients.s3.put_object(
        Bucket=info.data_bucket, Key=f"{info.incoming_prefix}promote.csv", Body=frame.to_csv(index=False)
    )
    packages = wait_for(
        lambda: _packages(plane, DEV) or None, "dev's churn v1", timeout_s=240, interval_s=0.5
    )
    [package] = packages
    assert package["ModelApprovalStatus"] == "Approved", package
    return package


@pytest.fixture(scope="module")
def promoted(two_stage_plane: RunningPlane, dev_v1: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return headrace(
        two_stage_plane,
        "promote",
        MODEL,
        "v1",
        "--from",
        "dev",
        "--to",
        "prod",
        "--reason",
        "two weeks in dev",
    )


def test_a_promoted_version_waits_in_prod_for_a_person_with_its_lineage_back_to_dev(
    two_stage_plane: RunningPlane, dev_v1: dict[str, Any], promoted: subprocess.CompletedProcess[str]
) -> None:
    assert promoted.returncode == 0, promoted.stderr
    assert "→ prod v1 (PendingManualApproval)" in promoted.stdout
    [package] = _packages(two_stage_plane, PROD)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    metadata = package["CustomerMetadataProperties"]
    assert metadata[PROMOTED_FROM] == dev_v1["ModelPackageArn"]
    assert (metadata[SOURCE_STAGE], metadata[SOURCE_VERSION]) == ("dev", "1")
    assert metadata["dataset_sha256"] == dev_v1["CustomerMetadataProperties"]["dataset_sha256"]
    assert metadata["code_digest"] == dev_v1["CustomerMetadataProperties"]["code_digest"]
    prod_bucket = two_stage_plane.deployments["prod"].data_bucket
    [container] = package["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == f"s3://{prod_bucket}/{MODEL}/promoted/dev/v1/model.tar.gz"
    # prod's own serving image (its pipeline stack's output), the build dev's version was registered with.
    serving = two_stage_plane.deployments["prod"].model(MODEL).serving_image
    assert serving is not None and container["Image"] == serving.uri
    assert serving.digest == dev_v1["CustomerMetadataProperties"]["serving_code_digest"]
    lineage_key = metadata["lineage_uri"].removeprefix(f"s3://{prod_bucket}/")
    prod = two_stage_plane.stage_clients("prod")
    lineage = json.loads(prod.s3.get_object(Bucket=prod_bucket, Key=lineage_key)["Body"].read())
    assert lineage["promotion"]["source_model_package_arn"] == dev_v1["ModelPackageArn"]
    assert lineage["promotion"]["reason"] == "two weeks in dev"
    # prod's ledger lists it, so `headrace runs`/`status` against prod show it.
    deployment = two_stage_plane.deployments["prod"]
    [run] = list_runs(prod.client("dynamodb"), deployment.ledger_table, MODEL)
    assert (run.version, run.approval_status) == (1, "PendingManualApproval")


def test_promoting_it_again_reports_the_first_promotion(
    two_stage_plane: RunningPlane, promoted: subprocess.CompletedProcess[str]
) -> None:
    assert promoted.returncode == 0, promoted.stderr

    again = headrace(two_stage_plane, "promote", MODEL, "1", "--from", "dev", "--to", "prod")

    assert again.returncode == 0, again.stderr
    assert "already promoted: prod v1 (PendingManualApproval)" in again.stdout
    assert len(_packages(two_stage_plane, PROD)) == 1


def test_approved_in_prod_it_is_served_by_prod_s_endpoint_with_prod_s_guards(
    two_stage_plane: RunningPlane, promoted: subprocess.CompletedProcess[str]
) -> None:
    assert promoted.returncode == 0, promoted.stderr

    approved = headrace(two_stage_plane, "approve", MODEL, "1", "--reason", "reviewed", HEADRACE_STAGE="prod")

    assert approved.returncode == 0, approved.stderr
    execution = _deployment_ended(two_stage_plane, PROD)
    assert execution["status"] == "SUCCEEDED", execution_failures(two_stage_plane, execution["executionArn"])
    prod = two_stage_plane.stage_clients("prod")
    sagemaker = prod.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=PROD.endpoint(MODEL))
    assert endpoint["EndpointStatus"] == "InService"
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    [variant] = config["ProductionVariants"]
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    prod_bucket = two_stage_plane.deployments["prod"].data_bucket
    assert model["PrimaryContainer"]["ModelDataUrl"].startswith(
        f"s3://{prod_bucket}/{MODEL}/promoted/dev/v1/"
    )
    assert variant["InitialInstanceCount"] >= 2
    alarm = prod.client("cloudwatch").describe_alarms(AlarmNames=[PROD.endpoint_alarm(MODEL, "5xx")])[
        "MetricAlarms"
    ][0]
    assert alarm["Threshold"] == 0.005  # stages.yaml prod: serving.max_5xx_rate
    churn = two_stage_plane.models[MODEL]
    rows = generate(churn, 5, seed=5)[[c.name for c in churn.data.features]]
    answer = prod.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=PROD.endpoint(MODEL), ContentType="text/csv", Body=rows.to_csv(index=False, header=False)
    )
    assert len(json.loads(answer["Body"].read())["predictions"]) == 5


def test_a_version_rejected_in_dev_is_refused_with_its_status(
    two_stage_plane: RunningPlane, promoted: subprocess.CompletedProcess[str]
) -> None:
    rejected = headrace(two_stage_plane, "reject", MODEL, "1", "--reason", "bad slice", HEADRACE_STAGE="dev")
    assert rejected.returncode == 0, rejected.stderr

    refused = headrace(two_stage_plane, "promote", MODEL, "v1", "--from", "dev", "--to", "prod")

    assert refused.returncode == 2
    assert "v1 of churn is Rejected in dev: only an Approved version can be promoted" in refused.stderr


def test_prod_s_account_reads_only_what_dev_s_policies_grant_it(
    two_stage_plane: RunningPlane, dev_v1: dict[str, Any], promoted: subprocess.CompletedProcess[str]
) -> None:
    """dev and prod are two accounts: prod's key reads dev's version files (dev's bucket policy and, through
    S3, its key policy grant prod's account), and nothing else of dev's, whatever header it sends."""
    assert promoted.returncode == 0, promoted.stderr
    dev, prod = two_stage_plane.clients, two_stage_plane.stage_clients("prod")
    assert (dev.account, prod.account) == (STAGE_ACCOUNTS["dev"], STAGE_ACCOUNTS["prod"])
    [container] = dev_v1["InferenceSpecification"]["Containers"]
    bucket, key = container["ModelDataUrl"].removeprefix("s3://").split("/", 1)
    assert prod.s3.get_object(Bucket=bucket, Key=key)["Body"].read()  # granted: a version's artifact
    private = f"{MODEL}/notes/private.txt"  # dev's own, outside what its stacks grant
    dev.s3.put_object(Bucket=bucket, Key=private, Body=b"dev only")
    assert dev.s3.get_object(Bucket=bucket, Key=private)["Body"].read() == b"dev only"
    # The caller does not choose its account: moto's account header is the gate's to set (seams/authn.py).
    forged = prod.client("s3")
    forged.meta.events.register(
        "before-sign.s3.*",
        lambda request, **_: request.headers.__setitem__("x-moto-account-id", STAGE_ACCOUNTS["dev"]),
    )
    for s3 in (prod.s3, forged):
        with pytest.raises(ClientError) as refused:
            s3.get_object(Bucket=bucket, Key=private)
        error = refused.value.response
        assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
        assert f"arn:aws:iam::{STAGE_ACCOUNTS['prod']}:root" in error["Error"]["Message"]
    # dev's ledger has no policy for prod's account: named by ARN, it is refused too.
    table = two_stage_plane.deployments["dev"].ledger_table
    table_arn = dev.client("dynamodb").describe_table(TableName=table)["Table"]["TableArn"]
    with pytest.raises(ClientError) as refused:
        prod.client("dynamodb").describe_table(TableName=table_arn)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"


def test_a_key_the_plane_did_not_issue_is_refused(two_stage_plane: RunningPlane) -> None:
    stranger = boto3.client(
        "s3",
        endpoint_url=two_stage_plane.info.endpoint,
        region_name=two_stage_plane.info.region,
        aws_access_key_id="AKIA" + "0" * 16,
        aws_secret_access_key="not-the-plane-s",
    )
    with pytest.raises(ClientError) as refused:
        stranger.list_buckets()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
