"""Batch scoring jobs: one item per transform job, `batch#<job name>`, written InProgress by Resolve and
finished by Record (Completed with the output's location, or Failed/Stopped with SageMaker's reason)."""

from __future__ import annotations

from typing import ClassVar, Literal

from headrace.ledger.item import LedgerItem
from headrace.ledger.keys import Kind

# DescribeTransformJob's TransformJobStatus, less Stopping (Record sees only where a job ended).
BatchStatus = Literal["InProgress", "Completed", "Failed", "Stopped"]
FINISHED_BATCH = frozenset({"Completed", "Failed", "Stopped"})


class BatchItem(LedgerItem):
    KIND: ClassVar[Kind] = Kind.BATCH
    KEY_ONLY: ClassVar[frozenset[str]] = frozenset({"model", "job_name"})

    job_name: str
    input_key: str  # the file dropped under <model>/batch/incoming/
    sha256: str  # of its bytes
    rows: int
    version: int | None = None  # the model version scored with
    model_name: str | None = None  # its SageMaker Model
    execution_arn: str | None = None
    status: BatchStatus
    # Only a Completed job has one: a failed job's partial output is never presented as its result.
    output_uri: str | None = None
    failure_reason: str | None = None
    # The drift check over a completed job's inputs (headrace.batch.monitor): its verdict, the drifted
    # features and the report.
    drift_status: str | None = None
    drifted_features: list[str] = []
    drift_report_uri: str | None = None
    started_at: str  # sort_time
    ended_at: str | None = None

    @property
    def sort_id(self) -> str:
        return self.job_name

    @classmethod
    def key_fields(cls, sort_id: str) -> dict[str, str]:
        return {"job_name": sort_id}
