"""The drift check's steps. Window picks the captured objects written since the last check and copies the
serving version's reference (profile.json, features.json) out of its model artifact; each Partial counts
one batch against it (headrace.drift: counts merge exactly); Finish merges, computes the statistics,
publishes the metrics the drift alarm watches, and writes the JSON result and the HTML report.

Too little traffic is a result of its own (`too_little_traffic`): reported and recorded, never published as
drift, so a quiet endpoint cannot raise the alarm.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from headrace.config import ModelConfig
from headrace.drift.result import DriftResult
from headrace.ledger import DriftCheckItem, sort_time
from headrace.monitoring import window as windows
from headrace.monitoring.payloads import (
    CheckOutcome,
    FinishRequest,
    PartialOut,
    PartialRequest,
    Window,
    WindowRequest,
)
from headrace.monitoring.ports import DriftPorts
from headrace.monitoring.served_files import copy_reference, monitoring_prefix
from headrace.naming import Names
from headrace.serving.capture import VARIANT, capture_prefix

if TYPE_CHECKING:
    from headrace.drift import DriftReference

# The statistics and capture parsing (numpy) are imported by the steps that use them: Window needs
# neither, and each handler imports its step's needs eagerly, so they are paid at init (cold start).

log = logging.getLogger("headrace.monitoring")

HISTORY = 30


def plan_window(
    request: WindowRequest,
    model: ModelConfig,
    ports: DriftPorts,
    *,
    names: Names,
    bucket: str,
) -> Window:
    now = ports.clock()
    check_id = f"{sort_time(now)}#{request.execution.name}"
    last = ports.ledger.drift_checks(model.name, 1)
    since = datetime.fromisoformat(last[0].until) if last else None
    endpoint = names.endpoint(model.name)
    served = ports.serving.artifact(endpoint)
    base = {
        "model": model.name,
        "check_id": check_id,
        "since": since,
        "until": now,
        "trigger": request.trigger,
    }
    if served is None:
        return Window(**base, reference_prefix=None, endpoint_config=None, batches=[], objects=0, bytes=0)
    config, model_data_url = served
    start = since or now - windows.FIRST_LOOKBACK
    captured = f"{capture_prefix(model.name)}/{endpoint}/{VARIANT}"
    listed = [
        o for prefix in windows.hour_prefixes(captured, start, now) for o in ports.store.list(bucket, prefix)
    ]
    chosen = windows.in_window(listed, start, now)
    return Window(
        **base,
        reference_prefix=copy_reference(ports.store, bucket, model.name, model_data_url),
        endpoint_config=config,
        batches=windows.batches(chosen),
        objects=len(chosen),
        bytes=sum(o.size for o in chosen),
    )


@lru_cache(maxsize=8)
def _reference(body: bytes, features: bytes) -> tuple[DriftReference, tuple[str, ...]]:
    from headrace.drift import compile_reference
    from headrace.profile import ReferenceProfile

    profile = ReferenceProfile.model_validate_json(body)
    return compile_reference(profile), tuple(json.loads(features)["features"])


def count_batch(request: PartialRequest, ports: DriftPorts, *, bucket: str) -> PartialOut:
    from headrace.drift import partial_from_frame
    from headrace.monitoring.capture import capture_rows

    reference, features = _reference(
        ports.store.read(bucket, f"{request.reference_prefix}/profile.json"),
        ports.store.read(bucket, f"{request.reference_prefix}/features.json"),
    )
    lines = [line for key in request.keys for line in ports.store.read(bucket, key).splitlines()]
    partial = partial_from_frame(reference, capture_rows(lines, features))
    key = f"{monitoring_prefix(request.model)}/checks/{request.check_id}/partials/{request.index:05d}.npz"
    ports.store.put(bucket, key, partial.to_bytes(), "application/octet-stream")
    return PartialOut(key=key, rows=partial.rows)


def finish_check(
    request: FinishRequest,
    model: ModelConfig,
    ports: DriftPorts,
    *,
    bucket: str,
) -> CheckOutcome:
    from headrace.drift import DriftPartial, finish, merge
    from headrace.monitoring.report import render_report

    window = request.window
    fields: dict[str, Any] = {
        "model": model.name,
        "check_id": window.check_id,
        "until": window.until.isoformat(),
        "since": window.since.isoformat() if window.since else None,
        "trigger": window.trigger,
        "objects": window.objects,
        "endpoint_config": window.endpoint_config,
    }
    if window.reference_prefix is None:
        ports.ledger.record(DriftCheckItem(**fields, status="not_serving", rows=0))
        return CheckOutcome(
            model=model.name,
            check_id=window.check_id,
            status="not_serving",
            rows=0,
            drifted_features=[],
            result_uri=None,
            report_uri=None,
        )
    reference, _ = _reference(
        ports.store.read(bucket, f"{window.reference_prefix}/profile.json"),
        ports.store.read(bucket, f"{window.reference_prefix}/features.json"),
    )
    partials = [DriftPartial.from_bytes(ports.store.read(bucket, p.key)) for p in request.partials]
    total = merge([DriftPartial.empty(reference), *partials])
    result = finish(reference, total, model.monitoring)
    history = ports.ledger.drift_checks(model.name, HISTORY)
    folder = f"{monitoring_prefix(model.name)}/checks/{window.check_id.replace('#', '-')}"
    ports.store.put(
        bucket, f"{folder}/result.json", result.model_dump_json(indent=1).encode(), "application/json"
    )
    html = render_report(model.name, window, result, history, reference, total)
    ports.store.put(bucket, f"{folder}/report.html", html.encode(), "text/html")
    ports.metrics.rows(model.name, result.rows_current)
    if result.status != "too_little_traffic":
        ports.metrics.publish(model.name, result)
    ports.ledger.record(
        DriftCheckItem(
            **fields,
            status=result.status,
            rows=result.rows_current,
            drifted_features=result.drifted_features,
            psi=json.dumps({f.name: f.psi for f in result.features}),
            result_uri=f"s3://{bucket}/{folder}/result.json",
            report_uri=f"s3://{bucket}/{folder}/report.html",
        )
    )
    log.info(
        "drift check of %s: %s (%d rows, drifted: %s)",
        model.name,
        result.status,
        result.rows_current,
        ", ".join(result.drifted_features) or "none",
    )
    return CheckOutcome(
        model=model.name,
        check_id=window.check_id,
        status=result.status,
        rows=result.rows_current,
        drifted_features=result.drifted_features,
        result_uri=f"s3://{bucket}/{folder}/result.json",
        report_uri=f"s3://{bucket}/{folder}/report.html",
    )


__all__ = ["DriftResult", "count_batch", "finish_check", "plan_window"]
