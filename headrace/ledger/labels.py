"""Accepted ground-truth label files: one item per distinct canonical content, `labels#<sha256>`.

Written by ingest when a file dropped under `<model>/ground-truth/incoming/` passes validation and its
canonical copy is under `<model>/ground-truth/accepted/`; the first writer of some content wins, so the same
labels dropped twice (under any key, in either format) make one accepted copy. `headrace status` lists them.
"""

from __future__ import annotations

from typing import ClassVar

from headrace.ledger.item import LedgerItem
from headrace.ledger.keys import Kind


class LabelFileItem(LedgerItem):
    KIND: ClassVar[Kind] = Kind.LABELS

    sha256: str  # of the canonical accepted CSV: the content's identity
    bucket: str
    accepted_key: str
    source_key: str
    source_version_id: str | None
    source_sha256: str  # of the file as dropped
    records: int  # lines (JSON lines) or data rows (CSV) in the dropped file
    labels: int  # labelled rows in the accepted copy
    inferences: int  # distinct inference ids
    arrived_at: str  # sort_time: when the file arrived (its accepted key says the same)
    recorded_at: str  # sort_time

    @property
    def sort_id(self) -> str:
        return self.sha256
