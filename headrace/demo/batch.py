"""The demo's batch step: a table dropped under `<model>/batch/incoming/` as a user would drop it (the
model's columns less the target, a header, any order), scored by the batch workflow's transform job with
the serving version's Model, read back from the job's output, and a sample of its rows sent to the endpoint:
the same container and the same version give the same score to each row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, cast

import pandas as pd

from headrace.batch.layout import incoming_prefix
from headrace.config import ModelConfig
from headrace.datagen import generate
from headrace.ledger import BatchItem, RejectionItem
from headrace.waiting import wait_for

from .plane import POLL_S, DemoPlane
from .record import BatchRecord

BATCH_SEED: Final = 13
BATCH_FILE_ROWS: Final = 20_000
BATCH_FILE: Final = "demo-scoring.csv"
# Every 200th output row goes to the endpoint: 100 rows, one InvokeEndpoint call.
SAMPLE_EVERY: Final = 200
# Batch and endpoint scores of a row agree to this (the bar for the booster in-process).
SCORE_ATOL: Final = 1e-6
BATCH_TIMEOUT_S: Final = 180


def batch_frame(model: ModelConfig) -> pd.DataFrame:
    """The table the demo scores: rows drawn like the training data, the target left out, the columns in
    reverse order (a drop's columns may come in any order; the batch input is rewritten in the model's)."""
    frame = generate(model, BATCH_FILE_ROWS, seed=BATCH_SEED).drop(columns=[model.data.target])
    return frame[list(reversed(frame.columns))]


def score_batch(
    plane: DemoPlane,
    clock: Callable[[], float],
    say: Callable[[str], None],
    score_online: Callable[[list[str]], list[float]],
) -> BatchRecord:
    """Drop the table, wait for its job to end, check its output against the endpoint (`score_online`:
    InvokeEndpoint on CSV lines, one probability a line) and return what was seen; raise if any of it is
    not so."""
    model = plane.model
    frame = batch_frame(model)
    key = f"{incoming_prefix(model.name)}/{BATCH_FILE}"
    plane.put(key, frame.to_csv(index=False).encode())
    dropped = clock()
    say(f"{key} dropped; waiting for its transform job")
    # mypy joins the union wait_for returns to their base class: the cast restores it.
    ended = cast(
        BatchItem | RejectionItem,
        wait_for(
            lambda: plane.batch_ended(key),
            "the batch job to end",
            timeout_s=BATCH_TIMEOUT_S,
            interval_s=POLL_S,
        ),
    )
    done = clock()
    if isinstance(ended, RejectionItem):
        raise RuntimeError(f"the batch file was quarantined ({', '.join(ended.rules)}): {ended.reason_key}")
    if ended.status != "Completed" or ended.output_uri is None:
        raise RuntimeError(f"batch job {ended.job_name} ended {ended.status}: {ended.failure_reason}")
    if ended.rows != len(frame):
        raise RuntimeError(
            f"the ledger records {ended.rows} rows for the batch, not the {len(frame)} dropped"
        )
    objects, lines = plane.output_lines(ended.output_uri)
    if len(lines) != len(frame):
        raise RuntimeError(f"{ended.output_uri} holds {len(lines)} rows, not the {len(frame)} dropped")
    # JoinSource Input: each output line is the input record (the features in the model's order), a comma,
    # and the container's answer for it.
    fields = len(model.data.features) + 1
    short = [line for line in lines if line.count(b",") + 1 != fields]
    if short:
        raise RuntimeError(f"an output row is not its {fields - 1} inputs and a score: {short[0]!r}")
    sample = [line.decode().rsplit(",", 1) for line in lines[::SAMPLE_EVERY]]
    online = score_online([inputs for inputs, _ in sample])
    differences = [abs(float(score) - served) for (_, score), served in zip(sample, online, strict=True)]
    largest = max(differences)
    if largest > SCORE_ATOL:
        raise RuntimeError(f"a batch score differs from the endpoint's for the same row by {largest:.3g}")
    return BatchRecord(
        job_name=ended.job_name,
        input_key=key,
        rows=ended.rows,
        version=ended.version,
        output_uri=ended.output_uri,
        output_objects=objects,
        dropped_at=dropped,
        ended_at=done,
        sampled=len(sample),
        max_difference=largest,
        drift_status=ended.drift_status,
    )


def batch_text(batch: BatchRecord) -> str:
    """The step's line; the output's folder without its bucket (the report has the whole URI)."""
    rate = batch.rows / batch.seconds if batch.seconds > 0 else 0.0
    folder = batch.output_uri.removeprefix("s3://").partition("/")[2]
    return (
        f"{batch.rows:,} rows with v{batch.version} in {batch.seconds:.1f}s from the drop "
        f"({rate:,.0f} rows/s) → {folder}; {batch.sampled} sampled rows score as on the endpoint "
        f"(max diff {batch.max_difference:.1g}); inputs {batch.drift_status}"
    )
