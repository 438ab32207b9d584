"""A variant's instance count on the local plane, changed as UpdateEndpointWeightsAndCapacities changes it
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpointWeightsAndCapacities.html):
each instance is one more serve process of the same model (a Fleet), the variant's weight spread evenly
across them; the endpoint is Updating meanwhile (so no UpdateEndpoint starts beside it) and InService after.
An instance taken away first stops receiving new requests, then finishes its in-flight ones, so no call
is lost."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from headrace.local.sagemaker.fleets import Fleet, FleetLauncher, HostedEndpoint, HostingError
from headrace.local.sagemaker.records import SageMakerRecords

log = logging.getLogger("headrace.local")


def instances(hosted: HostedEndpoint, config_name: str, variant: str) -> list[Fleet]:
    with hosted.lock:
        return [f for f in hosted.fleets if f.config_name == config_name and f.variant == variant]


def scale_variant(
    hosted: HostedEndpoint,
    launcher: FleetLauncher,
    records: SageMakerRecords,
    record: Any,
    variant: str,
    count: int,
) -> None:
    """`count` instances for `variant` of the endpoint's live config (HostingError when it cannot)."""
    if record.endpoint_status != "InService":
        raise HostingError(f"Cannot update in-progress endpoint '{record.arn}' ({record.endpoint_status}).")
    config_name = record.endpoint_config_name
    current = instances(hosted, config_name, variant)
    if not current:
        raise HostingError(f"The variant name {variant} is not present within endpoint {hosted.name}.")
    record.endpoint_status = "Updating"
    try:
        if count > len(current):
            config = records.endpoint_config(config_name)
            spec = next(v for v in config["ProductionVariants"] if v["VariantName"] == variant)
            added = [
                launcher._start_fleet(hosted.name, config_name, spec) for _ in range(count - len(current))
            ]
            _spread(hosted, current + added, added=added)
        elif count < len(current):
            keep, retire = current[:count], current[count:]
            _spread(hosted, keep)
            hosted.retire(retire)
        _publish(record, variant, count)
    finally:
        record.endpoint_status = "InService"
        record.last_modified_time = datetime.now(UTC)
    log.info("endpoint %s: variant %s now has %d instance(s)", hosted.name, variant, count)


def _spread(hosted: HostedEndpoint, fleets: list[Fleet], added: Sequence[Fleet] = ()) -> None:
    """The variant's total weight, evenly over `fleets` (the `added` ones joining the endpoint)."""
    with hosted.lock:
        total = sum(f.weight for f in fleets if f not in added) or 1.0
        hosted.fleets.extend(added)
        for fleet in fleets:
            fleet.weight = total / len(fleets)


def _publish(record: Any, variant: str, count: int) -> None:
    for summary in record.production_variants or []:
        if summary.get("VariantName") == variant:
            summary["CurrentInstanceCount"] = count
            summary["DesiredInstanceCount"] = count
