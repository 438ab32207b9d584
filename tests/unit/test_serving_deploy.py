"""The deploy workflow's decisions: what is deployed, what is skipped and why, and what counts as success."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from headrace.config import ModelConfig
from headrace.ledger import MemoryLedger
from headrace.naming import Names
from headrace.serving import rollout
from headrace.serving.deploy import (
    DeploymentRolledBack,
    EndpointBusy,
    plan,
    record_failure,
    verify,
)
from headrace.serving.payloads import DeployFailedRequest, DeployPlan, PlanRequest, VerifyRequest
from headrace.serving.ports import DeployPorts, Endpoint, Package
from headrace.steps import InvalidRequest
from tests.fakes import FakeEvents, FakeMetrics

NAMES = Names("dev")
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:abc"
EXECUTION = {"name": "deploy-1", "id": "arn:aws:states:us-east-1:123456789012:execution:x:deploy-1"}


def clock() -> datetime:
    return datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class FakeHosting:
    def __init__(self, packages: dict[int, str], endpoint: Endpoint | None = None) -> None:
        self.packages = packages
        self.current = endpoint
        self.models: list[Mapping[str, Any]] = []
        self.configs: list[Mapping[str, Any]] = []
        self.in_alarm: list[str] = []

    def _package(self, version: int) -> Package:
        return Package(
            arn=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/headrace-dev-churn/{version}",
            group="headrace-dev-churn",
            version=version,
            approval_status=self.packages[version],
            image=IMAGE,
            model_data_url=f"s3://bucket/churn/runs/job-{version}/output/model.tar.gz",
        )

    def package(self, arn: str) -> Package:
        return self._package(int(arn.rsplit("/", 1)[1]))

    def package_version(self, group: str, version: int) -> Package | None:
        return self._package(version) if version in self.packages else None

    def newest_approved(self, group: str) -> int | None:
        return max((v for v, s in self.packages.items() if s == "Approved"), default=None)

    def endpoint(self, name: str) -> Endpoint | None:
        return self.current

    def ensure_model(self, request: Mapping[str, Any]) -> None:
        self.models.append(request)

    def ensure_endpoint_config(self, request: Mapping[str, Any]) -> None:
        self.configs.append(request)

    def alarms_in_alarm(self, names: list[str]) -> list[str]:
        return self.in_alarm


def _ports(
    hosting: FakeHosting | None = None,
    ledger: MemoryLedger | None = None,
    events: FakeEvents | None = None,
    metrics: FakeMetrics | None = None,
) -> DeployPorts:
    return DeployPorts(
        hosting=hosting or FakeHosting({}),
        ledger=ledger or MemoryLedger(),
        events=events or FakeEvents(),
        metrics=metrics or FakeMetrics(),
        clock=clock,
    )


def _request(raw: dict[str, Any]) -> PlanRequest:
    return PlanRequest(
        model="churn",
        execution=EXECUTION,  # type: ignore[arg-type]
        hosting_role_arn="arn:aws:iam::123456789012:role/hosting",
        data_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
        input=raw,
    )


@pytest.fixture
def approval(load_event: Callable[..., dict[str, Any]]) -> Callable[[int], PlanRequest]:
    def make(version: int) -> PlanRequest:
        event = load_event("sagemaker_model_package_state_change")
        event["detail"]["ModelPackageVersion"] = version
        return _request(event)

    return make


def _plan(request: PlanRequest, model: ModelConfig, hosting: FakeHosting, ledger: MemoryLedger) -> DeployPlan:
    return plan(request, model, _ports(hosting, ledger), names=NAMES, bucket="bucket")


def _serving(model: ModelConfig, hosting: FakeHosting, version: int, status: str = "InService") -> Endpoint:
    package = hosting.package_version("g", version)
    assert package is not None
    name = rollout.hosted_name(model, NAMES, version, package.image, package.model_data_url)
    return Endpoint(name=NAMES.endpoint(model.name), status=status, config_name=name)


def test_the_first_approved_version_creates_the_endpoint_with_data_capture(
    example_model: ModelConfig, approval: Callable[[int], PlanRequest]
) -> None:
    hosting, ledger = FakeHosting({1: "Approved"}), MemoryLedger()
    planned = _plan(approval(1), example_model, hosting, ledger)
    assert planned.action == "create"
    assert planned.endpoint_config_name.startswith("headrace-dev-churn-v1-")
    (config,) = hosting.configs
    assert config["DataCaptureConfig"]["EnableCapture"] is True
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == "s3://bucket/churn/capture"
    assert [i["status"] for i in ledger.items.values()] == ["deploying"]


def test_a_later_version_updates_the_endpoint_and_remembers_the_previous_one(
    example_model: ModelConfig, approval: Callable[[int], PlanRequest]
) -> None:
    hosting = FakeHosting({1: "Approved", 2: "Approved"})
    hosting.current = _serving(example_model, hosting, 1)
    planned = _plan(approval(2), example_model, hosting, MemoryLedger())
    assert (planned.action, planned.previous_version) == ("update", 1)


@pytest.mark.parametrize("status", ["Rejected", "PendingManualApproval"])
def test_a_version_that_is_not_approved_is_skipped(
    example_model: ModelConfig, approval: Callable[[int], PlanRequest], status: str
) -> None:
    hosting, ledger = FakeHosting({1: status}), MemoryLedger()
    planned = _plan(approval(1), example_model, hosting, ledger)
    assert planned.action == "skip" and status in planned.reason
    assert hosting.models == [] and hosting.configs == []
    assert [i["status"] for i in ledger.items.values()] == ["skipped"]


def test_an_approval_older_than_what_is_serving_is_superseded(
    example_model: ModelConfig, approval: Callable[[int], PlanRequest]
) -> None:
    hosting = FakeHosting({1: "Approved", 2: "Approved"})
    hosting.current = _serving(example_model, hosting, 2)
    planned = _plan(approval(1), example_model, hosting, MemoryLedger())
    assert planned.action == "skip" and "superseded" in planned.reason


def test_an_approval_overtaken_by_a_newer_approved_version_is_superseded(
    example_model: ModelConfig, approval: Callable[[int], PlanRequest]
) -> None:
    hosting = FakeHosting({1: "Approved", 2: "Approved"})
    planned = _plan(approval(1), example_model, hosting, MemoryLedger())
    assert planned.action == "skip" and "v2" in planned.reason


def test_a_rollback_request_may_go_back_to_an_older_version(example_model: ModelConfig) -> None:
    hosting = FakeHosting({1: "Approved", 2: "Approved"})
    hosting.current = _serving(example_model, hosting, 2)
    planned = _plan(_request({"rollback": {"version": 1}}), example_model, hosting, MemoryLedger())
    assert (planned.action, planned.version, planned.previous_version) == ("update", 1, 2)


def test_an_endpoint_mid_rollout_makes_plan_wait(
    example_model: ModelConfig, approval: Callable[[int], PlanRequest]
) -> None:
    hosting = FakeHosting({1: "Approved", 2: "Approved"})
    hosting.current = _serving(example_model, hosting, 1, status="Updating")
    with pytest.raises(EndpointBusy):
        _plan(approval(2), example_model, hosting, MemoryLedger())


def test_an_input_that_is_neither_event_nor_rollback_is_refused_by_name(example_model: ModelConfig) -> None:
    with pytest.raises(InvalidRequest, match="Model Package State Change"):
        _plan(_request({"detail-type": "Object Created"}), example_model, FakeHosting({}), MemoryLedger())


def test_verify_reports_a_silent_rollback_as_a_failure(
    example_model: ModelConfig, approval: Callable[[int], PlanRequest]
) -> None:
    hosting = FakeHosting({1: "Approved", 2: "Approved"})
    hosting.current = _serving(example_model, hosting, 1)
    planned = _plan(approval(2), example_model, hosting, MemoryLedger())
    # The rollout ended, and the endpoint is InService... on v1's config.
    hosting.in_alarm = ["headrace-dev-churn-5xx: Threshold Crossed"]
    with pytest.raises(DeploymentRolledBack, match=r"v2 was rolled back.*\(v1\).*5xx"):
        verify(
            VerifyRequest(model="churn", plan=planned),
            example_model,
            _ports(hosting),
            names=NAMES,
        )


def test_verify_records_the_version_serving_when_the_endpoint_runs_its_config(
    example_model: ModelConfig, approval: Callable[[int], PlanRequest]
) -> None:
    hosting, ledger, events = FakeHosting({1: "Approved"}), MemoryLedger(), FakeEvents()
    planned = _plan(approval(1), example_model, hosting, ledger)
    hosting.current = _serving(example_model, hosting, 1)
    deployed = verify(
        VerifyRequest(model="churn", plan=planned),
        example_model,
        _ports(hosting, ledger, events),
        names=NAMES,
    )
    assert deployed.version == 1
    assert [i["status"] for i in ledger.items.values()] == ["serving"]
    assert [t for t, _ in events.published] == ["Model Version Deployed"]


def test_a_caught_rollback_is_recorded_as_rolled_back(
    example_model: ModelConfig, approval: Callable[[int], PlanRequest]
) -> None:
    ledger, metrics = MemoryLedger(), FakeMetrics()
    planned = _plan(approval(1), example_model, FakeHosting({1: "Approved"}), ledger)
    failure = record_failure(
        DeployFailedRequest.model_validate(
            {
                "model": "churn",
                "execution": EXECUTION,
                "state": {
                    "plan": planned.model_dump(),
                    "error": {
                        "Error": "DeploymentRolledBack",
                        "Cause": json.dumps(
                            {"errorMessage": "v1 was rolled back", "errorType": "DeploymentRolledBack"}
                        ),
                    },
                },
            }
        ),
        _ports(ledger=ledger, metrics=metrics),
    )
    assert (failure.status, failure.cause) == ("rolled_back", "v1 was rolled back")
    assert [i["status"] for i in ledger.items.values()] == ["rolled_back"]
    assert metrics.counted == [("DeploymentsRolledBack", "churn")]


def test_the_deployment_config_names_the_guard_alarms_and_the_bake(example_model: ModelConfig) -> None:
    fleet = example_model.rollout.model_copy(update={"instance_count": 2})
    config = rollout.deployment_config(example_model.model_copy(update={"rollout": fleet}), NAMES)
    policy = config["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"]["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 10}
    assert policy["TerminationWaitInSeconds"] == example_model.rollout.bake_s
    alarms = [a["AlarmName"] for a in config["AutoRollbackConfiguration"]["Alarms"]]
    assert alarms == ["headrace-dev-churn-5xx", "headrace-dev-churn-latency", "headrace-dev-churn-quality"]


def test_a_one_instance_endpoint_rolls_out_all_at_once_then_bakes(example_model: ModelConfig) -> None:
    """A canary is whole instances, at most half the fleet: one instance cannot take one (issue 12, 3)."""
    assert example_model.rollout.instance_count == 1
    policy = rollout.deployment_config(example_model, NAMES)["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    assert policy["TerminationWaitInSeconds"] == example_model.rollout.bake_s
    assert rollout.rollout_seconds(example_model.rollout) == example_model.rollout.bake_s


def test_a_hosted_name_carries_its_version_back() -> None:
    assert rollout.version_of("headrace-dev-churn-v12-0123abcd") == 12
    assert rollout.version_of("something-else") is None
