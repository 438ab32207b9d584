"""What the quality check's steps need from AWS, as Protocols, bundled in `QualityPorts`; `aws.py` builds the
bundle with boto3. What the endpoint serves is asked as the drift check asks it (monitoring.ports.Serving)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from headrace.ledger import QualityLedger
from headrace.monitoring.ports import Serving
from headrace.ports import Clock, ListingStore


class QualityMetrics(Protocol):
    def publish(self, model: str, metrics: Mapping[str, float | None], breach: bool) -> None:
        """LiveQuality per metric, and QualityBreach (1 or 0): the live-quality alarm's input."""
        ...

    def labelled(self, model: str, rows: int) -> None:
        """LabelledRows: published by every check, too few labels included."""
        ...


@dataclass(frozen=True)
class QualityPorts:
    store: ListingStore
    serving: Serving
    ledger: QualityLedger
    metrics: QualityMetrics
    clock: Clock
