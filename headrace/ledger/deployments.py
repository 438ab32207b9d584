"""Deployments: one item per run of the deploy workflow, `deploy#<deployment id>`, which Plan creates and
Verify or DeployFailed update (each writes only the fields it gives). The deployment id starts with the time
Plan ran, so a model's deployments sort by time."""

from __future__ import annotations

from typing import Any, ClassVar

from headrace.ledger.item import LedgerItem
from headrace.ledger.keys import Kind


class DeploymentItem(LedgerItem):
    KIND: ClassVar[Kind] = Kind.DEPLOYMENT
    KEY_ONLY: ClassVar[frozenset[str]] = frozenset({"model", "deployment_id"})

    deployment_id: str
    status: str  # a serving DeploymentStatus; read as text so a newer status still lists
    version: int
    endpoint_name: str | None = None
    action: str | None = None
    endpoint_config_name: str | None = None
    previous_version: int | None = None
    previous_config: str | None = None
    reason: str | None = None
    # Why the deployment was asked for (the approval, or the rollback request); Plan records it.
    requested: str | None = None
    started_at: str | None = None  # ISO 8601, like updated_at
    updated_at: str | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def sort_id(self) -> str:
        return self.deployment_id

    @classmethod
    def key_fields(cls, sort_id: str) -> dict[str, Any]:
        return {"deployment_id": sort_id}

    @property
    def summary(self) -> str:
        """`serving v3: version 3 was Approved`, or why it failed."""
        why = self.cause if self.status in ("failed", "rolled_back") and self.cause else self.reason
        return f"{self.status} v{self.version}" + (f": {why}" if why else "")
