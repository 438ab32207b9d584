"""Two stages on one local plane (`headrace local up --stages dev,prod`): both provisioned side by side in one
moto, and the CLI choosing between them by --stage or $HEADRACE_STAGE."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from headrace.naming import Names

from .conftest import REPO, STAGE_ACCOUNTS, TWO_STAGES, RunningPlane

pytestmark = pytest.mark.e2e


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


def test_both_stages_stacks_are_provisioned_apart(two_stage_plane: RunningPlane) -> None:
    assert two_stage_plane.info.stages == list(TWO_STAGES)
    assert two_stage_plane.info.stage == "dev"
    for stage in TWO_STAGES:
        cloudformation = two_stage_plane.stage_clients(stage).cloudformation
        for stack in Names(stage).stacks:
            status = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
            assert status == "CREATE_COMPLETE", (stack, status)
    # Each stage in its own account: its stacks are that account's, and the other account does not see them.
    for stage, other in zip(TWO_STAGES, reversed(TWO_STAGES), strict=True):
        stack = Names(stage).data_stack
        described = two_stage_plane.stage_clients(stage).cloudformation.describe_stacks(StackName=stack)
        assert f":{STAGE_ACCOUNTS[stage]}:stack/" in described["Stacks"][0]["StackId"]
        with pytest.raises(ClientError):
            two_stage_plane.stage_clients(other).cloudformation.describe_stacks(StackName=stack)
    dev, prod = (two_stage_plane.deployments[s] for s in TWO_STAGES)
    assert dev.data_bucket != prod.data_bucket
    assert dev.ledger_table != prod.ledger_table
    assert dev.model("churn").endpoint_name != prod.model("churn").endpoint_name


def test_status_and_info_take_the_stage_from_the_option_else_the_environment_else_the_plane(
    two_stage_plane: RunningPlane,
) -> None:
    done = headrace(two_stage_plane, "status", "--stage", "prod", "--json")
    assert done.returncode == 0, done.stderr
    assert "datasets" in json.loads(done.stdout)

    buckets = {s: two_stage_plane.deployments[s].data_bucket for s in TWO_STAGES}
    by_option = headrace(two_stage_plane, "info", "--stage", "prod", "--json")
    by_environment = headrace(two_stage_plane, "info", "--json", HEADRACE_STAGE="prod")
    by_default = headrace(two_stage_plane, "info", "--json")
    for done in (by_option, by_environment, by_default):
        assert done.returncode == 0, done.stderr
    assert json.loads(by_option.stdout)["data_bucket"] == buckets["prod"]
    assert json.loads(by_environment.stdout)["data_bucket"] == buckets["prod"]
    assert json.loads(by_default.stdout)["data_bucket"] == buckets["dev"]


def test_a_stage_the_plane_did_not_provision_is_refused_listing_its_stages(
    two_stage_plane: RunningPlane,
) -> None:
    done = headrace(two_stage_plane, "status", "--stage", "qa")
    assert done.returncode == 2
    assert "did not provision" in done.stderr and "dev, prod" in done.stderr, done.stderr
    from_environment = headrace(two_stage_plane, "status", HEADRACE_STAGE="qa")
    assert from_environment.returncode == 2
    assert "$HEADRACE_STAGE 'qa'" in from_environment.stderr, from_environment.stderr
