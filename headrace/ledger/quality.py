"""Quality checks: one item per check, `quality#<check id>` (the time of its Window step and its execution's
name), written by Finish: live metrics of captured predictions joined with their ground truth, or
`too_few_labels` / `not_serving` when there was nothing to judge."""

from __future__ import annotations

from typing import ClassVar, Literal

from headrace.ledger.item import LedgerItem
from headrace.ledger.keys import Kind

QualityStatus = Literal["ok", "breach", "too_few_labels", "not_serving"]


class QualityCheckItem(LedgerItem):
    KIND: ClassVar[Kind] = Kind.QUALITY
    KEY_ONLY: ClassVar[frozenset[str]] = frozenset({"model"})
    OMIT_NULLS: ClassVar[bool] = True

    check_id: str
    since: str  # ISO 8601: the oldest capture the check joined
    until: str
    trigger: str | None = None
    status: QualityStatus
    endpoint_config: str | None = None
    labelled_rows: int = 0
    # Labels whose inference is not among the window's captures (too old, or never served).
    unknown_labels: int = 0
    metric: str | None = None  # the gate's metric
    value: float | None = None
    threshold: float | None = None
    baseline: float | None = None  # the serving version's own test metric
    metrics: str | None = None  # JSON: every metric, error bounds and slices
    reasons: list[str] = []
    result_uri: str | None = None
    report_uri: str | None = None
    production_dataset_key: str | None = None
    # SHA-256 of that file: the dataset version ingest records for it (or already had, for the same rows).
    production_sha256: str | None = None

    @property
    def sort_id(self) -> str:
        return self.check_id
