"""What the batch steps need from AWS, as Protocols bundled in `BatchPorts`; `aws.py` builds them
with boto3."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from headrace.ledger.batches import BatchItem
from headrace.monitoring.ports import DriftMetrics
from headrace.ports import Clock, EventPublisher, ListingStore


@dataclass(frozen=True)
class ServedModel:
    endpoint_config: str
    model_name: str


class BatchHosting(Protocol):
    def served(self, endpoint: str) -> ServedModel | None:
        """The Model behind the endpoint's current config (its first variant); None: no such endpoint."""
        ...

    def approval(self, group: str, version: int) -> str | None:
        """ModelApprovalStatus of the group's version; None when there is no such version."""
        ...

    def newest_model(self, name_prefix: str) -> str | None:
        """The newest SageMaker Model whose name starts with `name_prefix`; None when there is none."""
        ...

    def model_data_url(self, model_name: str) -> str:
        """The ModelDataUrl of a SageMaker Model's primary container (its version's artifact)."""
        ...


class BatchLedger(Protocol):
    def batch(self, model: str, job_name: str) -> BatchItem | None: ...

    def update(self, item: BatchItem, keep_existing: Collection[str] = ()) -> None: ...


class BatchMetrics(Protocol):
    def finished(self, model: str, status: str, rows: int) -> None:
        """BatchJobs (by status) and, for a completed job, BatchRowsScored."""
        ...


@dataclass(frozen=True)
class BatchPorts:
    hosting: BatchHosting
    ledger: BatchLedger
    events: EventPublisher
    metrics: BatchMetrics
    clock: Clock
    store: ListingStore  # the batch's input, the version's reference, the drift result and report
    drift: DriftMetrics  # the drift check's metrics (headrace.batch.monitor)
