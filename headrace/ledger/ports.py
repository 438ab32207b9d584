"""What each domain needs of the ledger, as Protocols: `DynamoLedger` implements them all with boto3,
`MemoryLedger` in memory for tests. A domain's ports bundle names the narrow one it uses."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: a Protocol imports no kind (headrace.ledger's docstring)
    from headrace.ledger.checks import DriftCheckItem
    from headrace.ledger.datasets import DatasetItem, MisplacedItem, RejectionItem
    from headrace.ledger.decisions import IdleDecision, RetrainDecision
    from headrace.ledger.deployments import DeploymentItem
    from headrace.ledger.labels import LabelFileItem
    from headrace.ledger.quality import QualityCheckItem
    from headrace.ledger.runs import RunItem, StartedRun


class DatasetLedger(Protocol):
    """Ingest: has this content started a run already; record the version, the rejection, or the misplaced
    file."""

    def dataset(self, model: str, sha256: str) -> DatasetItem | None:
        """The dataset item, read consistently (it decides whether to start a run)."""
        ...

    def record_dataset(self, item: DatasetItem) -> bool:
        """Write the dataset item unless one exists (the first writer wins); True when this call wrote it."""
        ...

    def record_attempt(self, item: DatasetItem, previous_execution_arn: str) -> bool:
        """Replace the dataset item with another attempt's, only while its execution is still
        `previous_execution_arn` (one of two racing retries wins); True when this call wrote it."""
        ...

    def run(self, model: str, job_name: str) -> RunItem | None:
        """The run item of one training job, read consistently (did the last attempt fail?)."""
        ...

    def label_file(self, model: str, sha256: str) -> LabelFileItem | None:
        """The accepted label file of this canonical content, read consistently."""
        ...

    def record_label_file(self, item: LabelFileItem) -> bool:
        """Write the label file's item unless one exists (the first writer wins); True when this call
        wrote it."""
        ...

    def record(self, item: RejectionItem | MisplacedItem) -> None: ...


class RunLedger(Protocol):
    """Training: the run item, created by Prepare and updated by each later step."""

    def start_run(self, item: RunItem) -> StartedRun:
        """Write the run item unless it exists."""
        ...

    def update(self, item: RunItem, keep_existing: Collection[str] = ()) -> None:
        """Set the item's fields (creating the item if missing); `keep_existing` only where not yet set."""
        ...


class DeploymentLedger(Protocol):
    def update(self, item: DeploymentItem) -> None:
        """Create or update the deployment's item with the fields given."""
        ...


class DriftLedger(Protocol):
    def drift_checks(self, model: str, limit: int) -> list[DriftCheckItem]:
        """The model's latest drift checks, newest first."""
        ...

    def record(self, item: DriftCheckItem) -> None: ...


class QualityLedger(Protocol):
    def quality_checks(self, model: str, limit: int) -> list[QualityCheckItem]:
        """The model's latest quality checks, newest first."""
        ...

    def drift_checks(self, model: str, limit: int) -> list[DriftCheckItem]:
        """The report shows quality over time beside drift."""
        ...

    def record(self, item: QualityCheckItem) -> None: ...


class RetrainLedger(Protocol):
    def retrains(self, model: str, since: datetime) -> list[RetrainDecision]:
        """Retrain decisions of `model` made since `since`, newest first."""
        ...

    def newest_dataset(self, model: str) -> DatasetItem | None:
        """The accepted dataset version received last."""
        ...

    def datasets_since(self, model: str, since: datetime) -> list[DatasetItem]:
        """The accepted dataset versions of `model` received at or after `since`, newest first."""
        ...

    def dataset(self, model: str, sha256: str) -> DatasetItem | None: ...

    def quality_checks(self, model: str, limit: int | None = None) -> list[QualityCheckItem]:
        """Newest first."""
        ...

    def record(self, item: RetrainDecision) -> None: ...


class IdleLedger(Protocol):
    def record(self, item: IdleDecision, *, expires_at: datetime | None = None) -> None:
        """Keep the decision; one with `expires_at` is dropped by the table's TTL some time after."""
        ...
