"""Batch inputs are monitored as captured traffic is: the drift check's statistics (headrace.drift) over the
rows a completed job scored, against the profile of the version that scored them, with the same metrics
(DriftedFeatures under the drift check's own identity, so the model's one drift alarm hears a drifted batch)
and the same result and report, under `<model>/monitoring/batches/<job>/`.

The batch's input is what the serving container reads (headrace.batch.layout): header-less CSV in the
model's feature order, the same rows a capture holds; each object is counted on its own and the counts
merge exactly, so memory follows the largest object, not the batch. Every row is counted (no sample).
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

from headrace.batch.payloads import BatchDrift, BatchInput, Resolved
from headrace.batch.ports import BatchPorts
from headrace.config import ModelConfig
from headrace.monitoring.check import _reference
from headrace.monitoring.payloads import Window
from headrace.monitoring.served_files import copy_reference, monitoring_prefix

if TYPE_CHECKING:
    import pandas as pd

    from headrace.drift import DriftReference

log = logging.getLogger(__name__)

TRIGGER = "batch"


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def scored_rows(body: bytes, features: tuple[str, ...], reference: DriftReference) -> pd.DataFrame:
    """A transform input object (headrace.ingest.batch.header_less_csv wrote it from the validated frame) as
    the frame it was written from: categorical features as text, numeric ones as doubles, an empty cell as
    null (the writer's only null). Arrow's reader: parallel, and correctly rounded, so each double is the
    one the ingest validated (tests/unit/test_batch_fast_paths.py). Types are given, not inferred: Arrow
    infers from the first block only, and a later 0.5 in a column of whole numbers would fail."""
    import pyarrow as pa

    text = {feature.name: pa.string() for feature in reference.categorical}
    numbers = {feature.name: pa.float64() for feature in reference.numeric}
    try:
        return _read_csv(body, features, text | numbers)
    except pa.ArrowInvalid:
        # A word in a numeric column (true/false): as text, which the drift check parses to numbers.
        return _read_csv(body, features, text | dict.fromkeys(numbers, pa.string()))


def _read_csv(body: bytes, features: tuple[str, ...], types: dict[str, Any]) -> pd.DataFrame:
    import pyarrow.csv as pa_csv

    table = pa_csv.read_csv(
        io.BytesIO(body),
        read_options=pa_csv.ReadOptions(column_names=list(features)),
        convert_options=pa_csv.ConvertOptions(
            column_types=types, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True
        ),
    )
    frame: pd.DataFrame = table.to_pandas()
    return frame


def check_inputs(batch: BatchInput, resolved: Resolved, model: ModelConfig, ports: BatchPorts) -> BatchDrift:
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
        partials.append(partial_from_frame(reference, scored_rows(body, features, reference)))
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
