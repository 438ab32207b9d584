"""While a blue/green update shifts traffic, the local SageMaker's DescribeEndpoint reports the new config's
PendingDeploymentSummary with one summary per production variant, however many instances (serve processes)
the variant runs: CurrentWeight is the variant's share of traffic, CurrentInstanceCount its instances
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_PendingProductionVariantSummary.html)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from headrace.local.sagemaker.fleets import Fleet, HostedEndpoint
from headrace.local.sagemaker.rollout import shift_traffic


class _Record:
    """The endpoint's record, keeping every PendingDeploymentSummary it was given."""

    endpoint_config_name = "shop-v1"

    def __init__(self) -> None:
        self.pending: list[dict[str, Any] | None] = []

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "pending_deployment_summary":
            self.pending.append(value)
        object.__setattr__(self, name, value)


def _fleets(config: str, instances: int) -> list[Fleet]:
    return [
        Fleet("shop", config, "AllTraffic", f"{config}-model", 0, Path("/nonexistent"))
        for _ in range(instances)
    ]


def test_a_canary_of_a_two_instance_variant_is_reported_once_with_the_variant_s_share() -> None:
    blue = _fleets("shop-v1", 2)
    hosted = HostedEndpoint("shop", fleets=list(blue))
    hosted.shift([], blue, 1.0)
    record = _Record()
    deployment = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 20},
                "WaitIntervalInSeconds": 0,
            },
            "TerminationWaitInSeconds": 0,
        }
    }

    done = shift_traffic(hosted, record, _fleets("shop-v2", 2), "shop-v2", deployment, lambda _: {}, 2)

    assert done
    variants = [summary["ProductionVariants"] for summary in record.pending if summary]
    assert [
        [(v["VariantName"], v["CurrentWeight"], v["CurrentInstanceCount"]) for v in step] for step in variants
    ] == [
        [("AllTraffic", 0.5, 2)],
        [("AllTraffic", 1.0, 2)],
    ]
