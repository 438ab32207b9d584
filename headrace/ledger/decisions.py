"""Decisions the loop makes on its own, each kept as one item keyed by when it was made: retraining on an
alarm (`retrain#<time>`, started or skipped) and tearing down an idle endpoint (`idle#<time>`, deleted or
kept). The handlers return the same models they record."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from headrace.ledger.item import LedgerItem
from headrace.ledger.keys import Kind, sort_time


class RetrainDecision(LedgerItem):
    KIND: ClassVar[Kind] = Kind.RETRAIN
    OMIT_NULLS: ClassVar[bool] = True

    alarm: str
    episode: str
    decision: Literal["started", "skipped"]
    reason: str
    decided_at: datetime
    execution_arn: str | None = None
    dataset_sha256: str | None = None
    # The other dataset versions the run trains on (monitoring.retrain_data), newest first.
    extra_sha256: list[str] | None = None

    @property
    def sort_id(self) -> str:
        return sort_time(self.decided_at)


class IdleDecision(LedgerItem):
    KIND: ClassVar[Kind] = Kind.IDLE
    OMIT_NULLS: ClassVar[bool] = True

    endpoint: str
    config: str | None = None
    decision: Literal["deleted", "kept"]
    reason: str
    idle_hours: int
    decided_at: datetime
    invocations: float | None = None

    @property
    def sort_id(self) -> str:
        return sort_time(self.decided_at)
