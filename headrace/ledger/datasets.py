"""Dataset versions and rejected uploads: what ingest records, and what training and retraining read back.

`DatasetVersion` is the contract between them (the training state machine's input carries one); it lives
here, free of pandas, because the retrain function reads it without the data stack. Statistics are stored
as a JSON string: DynamoDB numbers cannot hold NaN, and nested maps cost capacity for nothing.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from headrace.ledger.item import LedgerItem
from headrace.ledger.keys import Kind, sort_time

# A dataset item's status once its training run has been started.
STARTED = "started"
# A production dataset's status: accepted, and left for retraining to pick up (it starts no run).
ACCEPTED = "accepted"
# Where a dataset version came from: a person's upload, or the labelled production rows the quality check
# writes under `<model>/incoming/production/` (issue 16).
UPLOAD: Final = "upload"
PRODUCTION: Final = "production"
DatasetSource = Literal["upload", "production"]


class FileFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"


class NumericStatistics(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["numeric"] = "numeric"
    count: int
    nulls: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None


class CategoricalStatistics(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["categorical"] = "categorical"
    count: int
    nulls: int
    distinct: int
    # Most frequent first, at most ingest's TOP_VALUES entries; `distinct` says how many there were in all.
    counts: dict[str, int]


ColumnStatistics = Annotated[NumericStatistics | CategoricalStatistics, Field(discriminator="kind")]


class DatasetVersion(BaseModel):
    """One accepted file. `dataset_key` is its content-addressed copy, the object training reads: the
    incoming key may be overwritten later, and a SageMaker channel takes an S3 URI, not a version id."""

    model_config = ConfigDict(frozen=True)

    model: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bucket: str
    key: str
    version_id: str | None
    size_bytes: int = Field(ge=0)
    format: FileFormat
    rows: int = Field(ge=0)
    columns: list[str]
    schema_fingerprint: str
    statistics: dict[str, ColumnStatistics]
    received_at: datetime
    dataset_key: str
    # Defaults keep records written before issue 16 parsing: those were all uploads.
    source: DatasetSource = UPLOAD
    # A production dataset's lineage.json (capture window, label files, check id).
    lineage_uri: str | None = None

    @property
    def dataset_uri(self) -> str:
        return f"s3://{self.bucket}/{self.dataset_key}"


class DatasetItem(LedgerItem):
    """`dataset#<sha256>`: an accepted dataset version and the training run it started last.

    `attempt` counts the runs started for this content (1 for the first); `execution_arn` is the latest
    one's. Another attempt replaces both, conditionally on the previous execution (`record_attempt`)."""

    KIND: ClassVar[Kind] = Kind.DATASET

    sha256: str
    bucket: str
    key: str
    version_id: str | None
    size_bytes: int
    format: FileFormat
    rows: int
    columns: list[str]
    schema_fingerprint: str
    statistics: str  # JSON: column -> statistics
    received_at: str  # sort_time
    dataset_key: str
    execution_arn: str | None = None
    # Absent on items written before attempts were counted: those had one.
    attempt: int = 1
    status: str
    recorded_at: str  # sort_time
    source: DatasetSource = UPLOAD
    lineage_uri: str | None = None

    @property
    def sort_id(self) -> str:
        return self.sha256

    @classmethod
    def started(cls, version: DatasetVersion, execution_arn: str, recorded_at: datetime) -> DatasetItem:
        return cls._of(version, recorded_at, STARTED, execution_arn)

    @classmethod
    def accepted(cls, version: DatasetVersion, recorded_at: datetime) -> DatasetItem:
        """A version recorded without starting a run (production data, for retraining to pick up)."""
        return cls._of(version, recorded_at, ACCEPTED, None)

    @classmethod
    def _of(
        cls, version: DatasetVersion, recorded_at: datetime, status: str, execution_arn: str | None
    ) -> DatasetItem:
        fields = version.model_dump(exclude={"statistics", "received_at"})
        return cls(
            **fields,
            statistics=json.dumps(version.model_dump(mode="json")["statistics"], allow_nan=False),
            received_at=sort_time(version.received_at),
            execution_arn=execution_arn,
            attempt=1,
            status=status,
            recorded_at=sort_time(recorded_at),
        )

    def attempted(self, attempt: int, execution_arn: str, recorded_at: datetime) -> DatasetItem:
        """The item once training attempt `attempt` of this content started as `execution_arn`."""
        return self.model_copy(
            update={
                "attempt": attempt,
                "execution_arn": execution_arn,
                "status": STARTED,
                "recorded_at": sort_time(recorded_at),
            }
        )

    def version(self) -> DatasetVersion:
        """The dataset version as ingest accepted it (what a retraining run is started with)."""
        fields: dict[str, Any] = self.model_dump(include=set(DatasetVersion.model_fields))
        return DatasetVersion.model_validate(fields | {"statistics": json.loads(self.statistics or "{}")})


def upload_digest(key: str, version_id: str | None) -> str:
    """Eight hex digits naming one upload (key and version): two uploads in one second stay two items."""
    return hashlib.sha256(f"{key}\n{version_id or ''}".encode()).hexdigest()[:8]


class RejectionItem(LedgerItem):
    """`rejection#<received at>#<sha256[:12]>#<upload digest>`: a rejected upload, where its copy went, the
    rules it broke. Unique per upload: the same bad bytes dropped under two keys in one second are two items,
    while a replayed event rewrites its own."""

    KIND: ClassVar[Kind] = Kind.REJECTION

    sha256: str
    bucket: str
    key: str
    version_id: str | None
    size_bytes: int
    quarantine_key: str
    reason_key: str
    rules: list[str]
    received_at: str  # sort_time
    recorded_at: str  # sort_time

    @property
    def sort_id(self) -> str:
        return f"{self.received_at}#{self.sha256[:12]}#{upload_digest(self.key, self.version_id)}"


class MisplacedItem(LedgerItem):
    """`misplaced#<received at>#<upload digest>`: a file dropped where no model looks (the bucket's root, a
    misspelt folder, an unknown model's folder other than incoming/). Never read or copied: recorded so that
    `headrace status` shows it, with a hint where it probably belongs."""

    KIND: ClassVar[Kind] = Kind.MISPLACED

    bucket: str
    key: str
    version_id: str | None
    size_bytes: int | None
    hint: str
    received_at: str  # sort_time
    recorded_at: str  # sort_time

    @property
    def sort_id(self) -> str:
        return f"{self.received_at}#{upload_digest(self.key, self.version_id)}"
