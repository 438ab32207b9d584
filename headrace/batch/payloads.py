"""The batch state machine's payloads. Its input (`BatchInput`) comes from ingest; each step's output lands at
the path named:

    $.resolved   Resolved        Resolve's: the Model, the job's name and S3 locations
    $.transform  DescribeTransformJob's response (createTransformJob.sync), on success
    $.error      StepError       what a Catch hands on, on failure
    $.recorded   BatchOutcome    Record's
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from headrace.ledger.batches import BatchStatus
from headrace.steps import Execution, NonEmpty, Payload, StepError


class BatchInput(Payload):
    """What ingest starts the batch state machine with: one validated batch file."""

    model: NonEmpty
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    source_key: NonEmpty  # the dropped file
    input_prefix: NonEmpty  # the validated, header-less input (layout.input_prefix)
    rows: Annotated[int, Field(ge=1)]
    # The version asked for (a `v<N>/` folder); None scores with what the endpoint serves.
    version: Annotated[int, Field(ge=1)] | None = None

    def to_json(self) -> str:
        return self.model_dump_json()


class ResolveRequest(Payload):
    model: NonEmpty
    batch: BatchInput
    execution: Execution
    started: datetime  # $$.Execution.StartTime: the job's name is stable across retries of the state


class Resolved(Payload):
    model: NonEmpty
    version: int
    model_name: NonEmpty  # the SageMaker Model the job runs
    job_name: NonEmpty
    input_uri: NonEmpty
    output_uri: NonEmpty


class RecordRequest(Payload):
    batch: BatchInput
    resolved: Resolved
    execution: Execution
    # DescribeTransformJob's response when the job completed, the Catch's error otherwise.
    transform: dict[str, Any] | None = None
    error: StepError | None = None


class BatchDrift(Payload):
    """The drift statistics over a completed batch's inputs (headrace.batch.monitor)."""

    status: str  # headrace.drift.DriftStatus, or "error" when the check itself failed
    rows: int = 0
    drifted_features: list[str] = []
    report_uri: str | None = None


class BatchOutcome(Payload):
    model: str
    job_name: str
    status: BatchStatus
    rows: int
    output_uri: str | None
    failure_reason: str | None
    drift: BatchDrift | None = None
