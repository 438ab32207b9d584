"""The quality state machine's payloads. Its input is the schedule's (or `headrace quality`'s)
`{"trigger": ...}`; each step's output lands at the path named.

    $.window    QualityWindow    what the check reads
    $.partials  [QualityPartOut] one per batch (the Map's iterations)
    $.check     QualityOutcome   Finish's output
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from headrace.ledger.quality import QualityStatus
from headrace.monitoring.payloads import WindowRequest
from headrace.steps import NonEmpty, Payload

# The window step's request is the drift check's: the model, the execution, the trigger.
__all__ = [
    "QualityFinishRequest",
    "QualityOutcome",
    "QualityPartOut",
    "QualityPartRequest",
    "QualityWindow",
    "WindowRequest",
]


class QualityWindow(Payload):
    model: NonEmpty
    check_id: NonEmpty
    since: datetime
    until: datetime
    trigger: str
    endpoint_config: str | None
    # The serving version's features.json and evaluation.json, copied out of its model artifact.
    reference_prefix: str | None
    # The version's own test metric (gate.metric in its evaluation.json): a breach's second bound.
    baseline: float | None
    # The accepted label files read, in arrival order, listed in an object (a week of them would outgrow
    # Step Functions' 256 KiB payload).
    labels_key: str | None
    label_files: int
    batches: list[list[str]]
    objects: int
    bytes: int


class QualityPartRequest(Payload):
    model: NonEmpty
    check_id: NonEmpty
    index: Annotated[int, Field(ge=0)]
    reference_prefix: NonEmpty
    labels_key: NonEmpty
    keys: list[str]


class QualityPartOut(Payload):
    partial_key: NonEmpty  # QualityPartial.to_bytes
    matched_key: NonEmpty  # which labels found their inference in this batch (packed bits)
    rows_key: NonEmpty  # the labelled rows, CSV without a header (the production dataset's part)
    rows: int  # captured rows read
    labelled: int  # of them, those with a label
    labels: int  # accepted labels joined against (the same in every batch)


class QualityFinishRequest(Payload):
    window: QualityWindow
    partials: list[QualityPartOut]


class QualityOutcome(Payload):
    model: str
    check_id: str
    status: QualityStatus
    labelled_rows: int
    unknown_labels: int
    metric: str
    value: float | None
    result_uri: str | None
    report_uri: str | None
    production_dataset_key: str | None
