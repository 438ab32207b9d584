"""A variant's weight and instance count on the local plane, changed as UpdateEndpointWeightsAndCapacities
changes them (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpointWeightsAndCapacities.html):
each instance is one more serve process of the same model (a Fleet), the variant's weight spread evenly
across them; the endpoint is Updating meanwhile (so no UpdateEndpoint starts beside it) and InService after.
An instance taken away first stops receiving new requests, then finishes its in-flight ones, so no call
is lost."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from headrace.local.sagemaker.fleets import Fleet, FleetLauncher, HostedEndpoint, HostingError
from headrace.local.sagemaker.records import SageMakerRecords

log = logging.getLogger("headrace.local")


def instances(hosted: HostedEndpoint, config_name: str, variant: str) -> list[Fleet]:
    with hosted.lock:
        return [f for f in hosted.fleets if f.config_name == config_name and f.variant == variant]


def accept(
    hosted: HostedEndpoint,
    launcher: FleetLauncher,
    records: SageMakerRecords,
    record: Any,
    changes: list[dict[str, Any]],
) -> Callable[[], None]:
    """Checks an UpdateEndpointWeightsAndCapacities request as SageMaker does (HostingError when it refuses),
    marks the endpoint Updating with the desired values, and returns the change to run (now or in the
    background); the endpoint is InService again once it ran."""
    config_name = record.endpoint_config_name
    with hosted.lock:  # reentrant: checked and marked Updating as one step, so two requests never both pass
        _check(hosted, record, changes)
        record.endpoint_status = "Updating"
    record.last_modified_time = datetime.now(UTC)
    for change in changes:
        _publish(record, change["VariantName"], desired=change)

    def run() -> None:
        try:
            for change in changes:
                variant = change["VariantName"]
                if change.get("DesiredInstanceCount") is not None:
                    _resize(hosted, launcher, records, config_name, variant, change["DesiredInstanceCount"])
                if change.get("DesiredWeight") is not None:
                    _reweigh(instances(hosted, config_name, variant), float(change["DesiredWeight"]))
                _publish(record, variant, current=change)
        except Exception as exc:
            log.warning("endpoint %s: capacity update failed: %s", hosted.name, exc)
            record.failure_reason = f"Capacity update failed: {exc}"[:1024]
            raise
        finally:
            record.endpoint_status = "InService"
            record.last_modified_time = datetime.now(UTC)

    return run


def _check(hosted: HostedEndpoint, record: Any, changes: list[dict[str, Any]]) -> None:
    if record.endpoint_status != "InService":
        # "When it receives the request, SageMaker sets the endpoint status to Updating" (the API page): one
        # update at a time, as for UpdateEndpoint.
        raise HostingError(f"Cannot update in-progress endpoint '{record.arn}' ({record.endpoint_status}).")
    config_name = record.endpoint_config_name
    seen: set[str] = set()
    for change in changes:
        name = change.get("VariantName")
        if name in seen:
            raise HostingError(f'The variant name "{name}" was non-unique within the request.')
        seen.add(str(name))
        if not instances(hosted, config_name, str(name)):
            raise HostingError(
                f'The variant name(s) "{name}" is/are not present within endpoint configuration '
                f'"{config_name}".'
            )
        # Only endpoints that host inference components scale to zero instances
        # (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-zero-instances.html).
        if change.get("DesiredInstanceCount") == 0:
            raise HostingError(
                f"DesiredInstanceCount 0 for variant {name}: only an endpoint that hosts inference "
                "components can scale to zero instances"
            )


def scale_variant(
    hosted: HostedEndpoint,
    launcher: FleetLauncher,
    records: SageMakerRecords,
    record: Any,
    variant: str,
    count: int,
) -> None:
    """`count` instances for `variant` of the endpoint's live config, now (HostingError when refused)."""
    accept(hosted, launcher, records, record, [{"VariantName": variant, "DesiredInstanceCount": count}])()


def _resize(
    hosted: HostedEndpoint,
    launcher: FleetLauncher,
    records: SageMakerRecords,
    config_name: str,
    variant: str,
    count: int,
) -> None:
    current = instances(hosted, config_name, variant)
    if count > len(current):
        config = records.endpoint_config(config_name)
        spec = next(v for v in config["ProductionVariants"] if v["VariantName"] == variant)
        added: list[Fleet] = []
        try:
            for _ in range(count - len(current)):
                added.append(launcher._start_fleet(hosted.name, config_name, spec))
        except Exception:
            for fleet in added:
                fleet.stop()
            raise
        _spread(hosted, current, added)
    elif count < len(current):
        keep, retire = current[:count], current[count:]
        _spread(hosted, current, keep=keep)
        hosted.retire(retire)
    log.info("endpoint %s: variant %s now has %d instance(s)", hosted.name, variant, count)


def _spread(
    hosted: HostedEndpoint, current: list[Fleet], added: Sequence[Fleet] = (), keep: list[Fleet] | None = None
) -> None:
    """The variant's total weight (that of its `current` instances), evenly over `keep` (default: all of
    them) plus the `added` ones, which join the endpoint here."""
    with hosted.lock:
        total = sum(f.weight for f in current)
        serving = (current if keep is None else keep) + list(added)
        hosted.fleets.extend(added)
        for fleet in current:
            fleet.weight = 0.0
        for fleet in serving:
            fleet.weight = total / len(serving)


def _reweigh(fleets: list[Fleet], weight: float) -> None:
    for fleet in fleets:
        fleet.weight = weight / len(fleets)


def _publish(
    record: Any, variant: str, desired: dict[str, Any] | None = None, current: dict[str, Any] | None = None
) -> None:
    """DescribeEndpoint's variant summary: the desired values when asked, the current ones once done."""
    for summary in record.production_variants or []:
        if summary.get("VariantName") != variant:
            continue
        for change, prefix in ((desired, "Desired"), (current, "Current")):
            if change is None:
                continue
            if change.get("DesiredInstanceCount") is not None:
                summary[f"{prefix}InstanceCount"] = change["DesiredInstanceCount"]
            if change.get("DesiredWeight") is not None:
                summary[f"{prefix}Weight"] = float(change["DesiredWeight"])


def publish_variants(record: Any, fleets: list[Fleet]) -> None:
    """DescribeEndpoint's ProductionVariants for a config's fleets: one summary per variant, its instances
    and their total weight."""
    record.production_variants = variant_summaries(fleets)


def variant_summaries(fleets: list[Fleet]) -> list[dict[str, Any]]:
    """One summary per variant of `fleets` (a Fleet is one instance): its instances and their total weight,
    as DescribeEndpoint's ProductionVariants and PendingDeploymentSummary report a variant."""
    summaries: dict[str, dict[str, Any]] = {}
    for fleet in fleets:
        summary = summaries.setdefault(
            fleet.variant,
            {
                "VariantName": fleet.variant,
                "CurrentWeight": 0.0,
                "DesiredWeight": 0.0,
                "CurrentInstanceCount": 0,
                "DesiredInstanceCount": 0,
            },
        )
        for member, added in (("Weight", fleet.weight), ("InstanceCount", 1)):
            summary[f"Current{member}"] += added
            summary[f"Desired{member}"] += added
    return list(summaries.values())


def show_instance(record: Any, fleet: Fleet, replacing: str | None) -> None:
    """DescribeEndpoint's view of `fleet`'s instance: one fewer in service and the variant Updating with
    `replacing` as its message while it is replaced; back in service once it is."""
    summaries: list[dict[str, Any]] = []
    pending = getattr(record, "pending_deployment_summary", None)  # moto's record has it once updated
    if fleet.config_name == record.endpoint_config_name:
        summaries = record.production_variants or []
    elif pending and pending.get("EndpointConfigName") == fleet.config_name:
        summaries = pending.get("ProductionVariants", [])
    for summary in summaries:
        if summary.get("VariantName") != fleet.variant:
            continue
        count = int(summary.get("CurrentInstanceCount") or 0)
        desired = int(summary.get("DesiredInstanceCount") or 1)
        summary["CurrentInstanceCount"] = max(0, count - 1) if replacing else min(desired, count + 1)
        if replacing:
            summary["VariantStatus"] = [
                {"Status": "Updating", "StatusMessage": replacing, "StartTime": datetime.now(UTC)}
            ]
        else:
            summary.pop("VariantStatus", None)
    record.last_modified_time = datetime.now(UTC)
