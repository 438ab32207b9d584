"""`headrace smoke` on a local plane of its own with dev and prod (`two_stage_plane`): what CI runs after a
deploy, into the plane's smoke model (a copy of churn). dev's policy lets its gate approve (approval: auto),
so the smoke sees its version serve; prod waits for a person, so the smoke registers and says it is not
deployed; a bad sample fails it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from headrace.ledger import DynamoLedger
from headrace.naming import Names
from headrace.serving.rollout import version_of

from .conftest import REPO, SMOKE_MODEL, RunningPlane

pytestmark = pytest.mark.e2e

# Training and a canary rollout on a loaded 2-core machine: minutes, not seconds.
SMOKE_TIMEOUT_S = 480
CLI = (sys.executable, "-m", "headrace.cli.main")


def smoke(plane: RunningPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "smoke", "--model", SMOKE_MODEL, "--timeout", str(SMOKE_TIMEOUT_S), *args],
        env={**os.environ, **plane.environment(), "COLUMNS": "200"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_S + 60,
        check=False,
    )


def steps(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in json.loads(done.stdout)["steps"]}


def test_smoke_of_dev_sees_its_version_registered_deployed_and_answering(
    two_stage_plane: RunningPlane,
) -> None:
    done = smoke(two_stage_plane, "--stage", "dev", "--json", "--rows", "2000")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] and report["stage"] == "dev" and report["model"] == SMOKE_MODEL
    by_name = steps(done)
    assert [s["status"] for s in by_name.values()] == ["passed"] * 5, by_name
    assert all(s["seconds"] >= 0 for s in by_name.values())
    assert by_name["training run registered"]["detail"].startswith("v1 Approved")
    # What the smoke reported, read back from the plane itself: the dropped file became a dataset version
    # whose run registered v1, and dev's endpoint is InService on v1.
    dev = two_stage_plane.deployments["dev"]
    ledger = DynamoLedger(two_stage_plane.clients.client("dynamodb"), dev.ledger_table)
    (dataset,) = ledger.datasets(SMOKE_MODEL)
    assert dataset.key.startswith(f"{SMOKE_MODEL}/incoming/smoke-") and dataset.rows == 2000
    endpoint = two_stage_plane.clients.client("sagemaker").describe_endpoint(
        EndpointName=dev.model(SMOKE_MODEL).endpoint_name
    )
    assert endpoint["EndpointStatus"] == "InService"
    assert version_of(endpoint["EndpointConfigName"]) == 1
    assert by_name["endpoint answers"]["detail"].startswith("v1 answered 20 predictions")


def test_smoke_of_prod_registers_and_leaves_the_version_to_a_person(two_stage_plane: RunningPlane) -> None:
    done = smoke(two_stage_plane, "--stage", "prod", "--rows", "2000")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "registered v1, PendingManualApproval: not deployed (stage policy manual" in out, out
    assert f"smoke of {SMOKE_MODEL} in prod: passed" in out, out
    for step in ("drop sample data", "validated: dataset version", "training run registered"):
        assert f"ok {step} (" in out, out
    packages = (
        two_stage_plane.stage_clients("prod")
        .client("sagemaker")
        .list_model_packages(ModelPackageGroupName=Names("prod").model_package_group(SMOKE_MODEL))[
            "ModelPackageSummaryList"
        ]
    )
    assert [p["ModelApprovalStatus"] for p in packages] == ["PendingManualApproval"]


def test_a_sample_the_stage_quarantines_fails_the_smoke_with_the_reason(
    two_stage_plane: RunningPlane,
) -> None:
    # churn.yaml: min_rows 500. The smoke's own sample, too small: ingest quarantines it.
    done = smoke(two_stage_plane, "--stage", "dev", "--json", "--rows", "20")
    assert done.returncode == 1, done.stdout + done.stderr
    by_name = steps(done)
    validated = by_name["validated: dataset version"]
    assert validated["status"] == "failed" and validated["detail"].startswith(
        f"quarantined as {SMOKE_MODEL}/quarantine/"
    )
    assert "500" in validated["detail"], validated
    assert by_name["training run registered"]["status"] == "skipped"
    assert not json.loads(done.stdout)["passed"]
