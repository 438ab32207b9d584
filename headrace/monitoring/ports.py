"""What the drift check's steps need from AWS: the shared ports (headrace.ports) and monitoring's own, as
Protocols, bundled in `DriftPorts`. `aws.py` implements them with boto3 and builds the bundle. (Retraining's
ports sit beside its decision, in retrain.py, so that the retrain function never imports the drift code.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from headrace.ledger import DriftLedger
from headrace.ports import Clock, ListingStore

if TYPE_CHECKING:  # numpy-backed; annotations only
    from headrace.drift import DriftResult


class Serving(Protocol):
    def artifact(self, endpoint: str) -> tuple[str, str] | None:
        """(endpoint config, ModelDataUrl) of what the endpoint serves now; None when it does not exist."""
        ...


class DriftMetrics(Protocol):
    def publish(self, model: str, result: DriftResult) -> None:
        """Per feature scores and the model's count of drifted features."""
        ...

    def rows(self, model: str, rows: int) -> None: ...


@dataclass(frozen=True)
class DriftPorts:
    store: ListingStore
    serving: Serving
    ledger: DriftLedger
    metrics: DriftMetrics
    clock: Clock
