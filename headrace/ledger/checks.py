"""Drift checks: one item per check, `drift#<check id>` (the time of its Window step and its execution's
name), written by Finish with the result, or with `not_serving` when there was no endpoint to check."""

from __future__ import annotations

from typing import ClassVar

from headrace.ledger.item import LedgerItem
from headrace.ledger.keys import Kind


class DriftCheckItem(LedgerItem):
    KIND: ClassVar[Kind] = Kind.DRIFT
    KEY_ONLY: ClassVar[frozenset[str]] = frozenset({"model"})
    OMIT_NULLS: ClassVar[bool] = True

    check_id: str
    until: str  # ISO 8601: the next check starts its window here
    since: str | None = None
    trigger: str | None = None
    objects: int = 0
    endpoint_config: str | None = None
    status: str
    rows: int = 0
    drifted_features: list[str] = []
    psi: str | None = None  # JSON: feature -> PSI, for the report's scores over time
    result_uri: str | None = None
    report_uri: str | None = None

    @property
    def sort_id(self) -> str:
        return self.check_id
