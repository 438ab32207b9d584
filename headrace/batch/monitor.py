"""Batch inputs are monitored as captured traffic is: the drift check's statistics (headrace.drift) over the
rows a completed job scored, against the profile of the version that scored them, with the same metrics
(DriftedFeatures under the drift check's own identity, so the model's one drift alarm hears a drifted batch)
and the same result and report, under `<model>/monitoring/batches/<job>/`.

The batch's input is what the serving container reads (headrace.batch.layout): header-less CSV in the
model's feature order, the same rows a capture holds; each object is counted on its own and the counts
merge exactly, so memory follows the largest object, not the batch.
"""

from __future__ import annotations

import io
import logging

from headrace.batch.payloads import BatchDrift, BatchInput, Resolved
from headrace.batch.ports import BatchPorts
from headrace.config import ModelConfig
from headrace.monitoring.check import _reference, copy_reference, monitoring_prefix
from headrace.monitoring.payloads import Window

log = logging.getLogger(__name__)

TRIGGER = "batch"


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def check_inputs(batch: BatchInput, resolved: Resolved, model: ModelConfig, ports: BatchPorts) -> BatchDrift:
    import pandas as pd

    from headrace.drift import DriftPartial, finish, merge, partial_from_frame
    from headrace.monitoring.report import render_report

    bucket, prefix = _split(resolved.input_uri)
    model_data_url = ports.hosting.model_data_url(resolved.model_name)
    reference_prefix = copy_reference(ports.store, bucket, model.name, model_data_url)
    reference, features = _reference(
        ports.store.read(bucket, f"{reference_prefix}/profile.json"),
        ports.store.read(bucket, f"{reference_prefix}/features.json"),
    )
    objects = ports.store.list(bucket, prefix)
    partials = []
    for found in objects:
        body = ports.store.read(bucket, found.key)
        if not body.strip():
            continue
        frame = pd.read_csv(io.BytesIO(body), header=None, names=list(features), low_memory=False)
        partials.append(partial_from_frame(reference, frame))
    total = merge([DriftPartial.empty(reference), *partials])
    result = finish(reference, total, model.monitoring)
    folder = f"{monitoring_prefix(model.name)}/batches/{resolved.job_name}"
    ports.store.put(
        bucket, f"{folder}/result.json", result.model_dump_json(indent=1).encode(), "application/json"
    )
    now = ports.clock()
    window = Window(
        model=model.name,
        check_id=f"batch {resolved.job_name}",
        since=None,
        until=now,
        reference_prefix=reference_prefix,
        endpoint_config=resolved.model_name,
        batches=[],
        objects=len(objects),
        bytes=sum(o.size for o in objects),
        trigger=TRIGGER,
    )
    html = render_report(model.name, window, result, [], reference, total)
    ports.store.put(bucket, f"{folder}/report.html", html.encode(), "text/html")
    ports.drift.rows(model.name, result.rows_current)
    # As the scheduled check: too few rows to judge is reported, never published as drift.
    if result.status != "too_little_traffic":
        ports.drift.publish(model.name, result)
    drift = BatchDrift(
        status=result.status,
        rows=result.rows_current,
        drifted_features=result.drifted_features,
        report_uri=f"s3://{bucket}/{folder}/report.html",
    )
    log.info("batch inputs checked for drift", extra={"job": resolved.job_name, **drift.model_dump()})
    return drift
