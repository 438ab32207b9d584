"""Batch files arriving under `<model>/batch/incoming/` (CSV or Parquet, the schema's columns minus the
target, any order, a header): validated with the dataset rules minus the target (headrace.ingest.validation),
written as SageMaker's transform job reads them (headrace.batch.layout: no header, the features in the
model's order, one file per transform instance), then the model's batch state machine is started, once per
content and asked version: the execution's name is derived from both, so Step Functions itself refuses a
second start. A bad file is quarantined exactly as a bad dataset (the service's quarantine flow).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from headrace.batch.layout import asked_version, input_keys, input_prefix
from headrace.batch.payloads import BatchInput
from headrace.config import DataSchema, ModelConfig
from headrace.ingest.dataset import content_sha256
from headrace.ingest.ports import IngestPorts, ObjectRef
from headrace.ingest.problems import Problem
from headrace.ingest.reading import file_name
from headrace.ingest.result import IngestResult, Outcome
from headrace.ingest.table import Table
from headrace.ingest.validation import check_upload, inspect
from headrace.naming import execution_name

BATCHES_STARTED = "BatchesStarted"
BATCHES_DUPLICATE = "BatchesDuplicate"
INPUT_TYPE = "text/csv"

Reject = Callable[[ObjectRef, int, str, list[Problem]], IngestResult]
RejectUnread = Callable[[ObjectRef, int, list[Problem]], IngestResult]

log = logging.getLogger(__name__)


def batch_schema(schema: DataSchema) -> DataSchema:
    """What a batch file must look like: the schema's features (the target is what the model predicts), and
    any number of rows (min_rows guards training, not scoring). Copied without re-validation on purpose: the
    copy names no target column, which a training schema must."""
    return schema.model_copy(update={"columns": schema.features, "min_rows": 1})


def header_less_csv(table: Table) -> bytes:
    """The rows as the serving container reads them: header-less CSV. Arrow's writer (six times pandas'
    to_csv) writes each float as its shortest round-trip text, as Python's repr does, so the container parses
    the same doubles; a value that would need quoting (a comma, a quote, a line end) makes it refuse, and the
    csv module writes that table instead, quoted (tests/unit/test_batch_fast_paths.py). pyarrow is imported
    here: batch files pay for it, datasets do not."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    try:
        sink = pa.BufferOutputStream()
        arrays = [
            pa.array(a, from_pandas=True) if a.dtype.kind == "f" else pa.array(a, type=pa.string())
            for a in table.arrays
        ]
        written = pa.Table.from_arrays(arrays, names=list(table.names))
        pa_csv.write_csv(written, sink, pa_csv.WriteOptions(include_header=False, quoting_style="none"))
        return bytes(sink.getvalue().to_pybytes())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        text = io.StringIO()
        # As pandas' to_csv wrote it: repr for floats, nothing for a null, quotes only where needed.
        columns = [[None if v != v else v for v in a.tolist()] for a in table.arrays]  # NaN is not v
        csv.writer(text, lineterminator="\n").writerows(zip(*columns, strict=True))
        return text.getvalue().encode()


def batch_execution_name(model: str, sha256: str, version: int | None) -> str:
    return execution_name(model, sha256, "batch" if version is None else f"batch-v{version}")


def ingest_batch(
    model: ModelConfig,
    ref: ObjectRef,
    size: int,
    ports: IngestPorts,
    reject: Reject,
    reject_unread: RejectUnread,
) -> IngestResult:
    schema = batch_schema(model.data)
    name = file_name(ref.key)
    problems = check_upload(name, size, schema)
    if problems:
        return reject_unread(ref, size, problems)
    stored = ports.store.read(ref)
    ref = ObjectRef(ref.bucket, ref.key, ref.version_id or stored.version_id)
    sha256 = content_sha256(stored.body)
    inspection = inspect(name, stored.body, schema)
    if not inspection.accepted or inspection.frame is None:
        return reject(ref, len(stored.body), sha256, inspection.problems)
    if ports.batches is None:
        raise LookupError("the ingest function has no BATCH_STATE_MACHINES: it cannot start batch scoring")
    version = asked_version(ref.key)
    features = [c.name for c in schema.columns]
    frame = inspection.frame.select(features)
    parts = max(1, min(model.batch.instance_count, frame.rows))
    keys = input_keys(model.name, sha256, parts)
    batch = BatchInput(
        model=model.name,
        sha256=sha256,
        source_key=ref.key,
        input_prefix=input_prefix(model.name, sha256),
        rows=frame.rows,
        version=version,
    )
    runs = ports.batches

    def work() -> IngestResult:
        # The input first, then the start: an execution always finds its input complete. The same content
        # writes the same bytes, so a replay rewriting them changes nothing. The parts are written and
        # uploaded side by side (Arrow's writer and the upload both let go of the GIL).
        def write(key: str, rows: npt.NDArray[np.int64]) -> None:
            part = frame.slice(int(rows[0]), int(rows[-1]) + 1)  # np.array_split: contiguous, in order
            ports.store.put(ref.bucket, key, header_less_csv(part), INPUT_TYPE)

        ranges = np.array_split(np.arange(frame.rows), parts)
        with ThreadPoolExecutor(parts, thread_name_prefix="batch-input") as pool:
            written = [pool.submit(write, key, rows) for key, rows in zip(keys, ranges, strict=True)]
        for part in written:
            part.result()
        started = runs.start(model.name, batch_execution_name(model.name, sha256, version), batch.to_json())
        if not started.created:
            ports.metrics.count(BATCHES_DUPLICATE, model.name)
            log.info("duplicate batch", extra={"model": model.name, "key": ref.key, "sha256": sha256})
            return IngestResult(
                outcome=Outcome.DUPLICATE,
                model=model.name,
                key=ref.key,
                sha256=sha256,
                execution_arn=started.execution_arn,
                note="this content was already scored (or is being scored) with the same version",
            )
        ports.metrics.count(BATCHES_STARTED, model.name)
        log.info(
            "batch accepted, scoring started",
            extra={"model": model.name, "key": ref.key, "sha256": sha256, "rows": batch.rows},
        )
        return IngestResult(
            outcome=Outcome.STARTED,
            model=model.name,
            key=ref.key,
            sha256=sha256,
            execution_arn=started.execution_arn,
            note=f"{batch.rows} rows to score" + (f" with version {version}" if version else ""),
        )

    # Keyed on the upload: a replayed event is answered from the record; the same bytes uploaded again reach
    # StartExecution, whose name (content and version) makes them a duplicate.
    upload = {"step": "batch", "bucket": ref.bucket, "key": ref.key, "version_id": ref.version_id or ""}
    return ports.once({**upload, "sha256": sha256}, work)
