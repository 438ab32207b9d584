"""Experiment tracking: every training run's hyperparameters, metrics, data version and outcome.

Runs are the ledger's run items (headrace.ledger.RunItem, written by the training state machine's steps);
the registry adds the version and its approval status. Both are read here for `headrace runs` and
`headrace runs compare`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, field_validator

from headrace.ledger import DynamoLedger


class RunRecord(BaseModel):
    """A run item as `headrace runs` shows it: the JSON fields decoded."""

    model: str
    job_name: str
    status: str
    dataset_sha256: str | None = None
    execution_arn: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    hyperparameters: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    gate: dict[str, Any] = {}
    model_package_arn: str | None = None
    version: int | None = None
    approval_status: str | None = None
    error: str | None = None
    cause: str | None = None
    # A tuned run's tuning job: trials, objective, the best and why (headrace/tuning_report.py reads it).
    tuning: dict[str, Any] = {}

    @field_validator("hyperparameters", "metrics", "gate", "tuning", mode="before")
    @classmethod
    def _json_text(cls, value: Any) -> Any:
        # DynamoDB items may carry these as JSON strings.
        return json.loads(value) if isinstance(value, str) else (value or {})

    @property
    def outcome(self) -> str:
        reasons = self.gate.get("reasons") or []
        if self.status == "rejected" and reasons:
            return f"rejected: {reasons[0]}"
        if self.status == "failed" and (self.cause or self.error):
            return f"failed: {(self.cause or self.error or '').splitlines()[0][:100]}"
        return self.status


def list_runs(dynamodb: Any, table: str, model: str) -> list[RunRecord]:
    runs = [RunRecord.model_validate(item.model_dump()) for item in DynamoLedger(dynamodb, table).runs(model)]
    return sorted(runs, key=lambda r: r.started_at or "", reverse=True)


def find_run(runs: list[RunRecord], reference: str) -> RunRecord:
    """A run by job name, job-name prefix, or registry version (`v3` or `3`)."""
    version = reference.removeprefix("v")
    for run in runs:
        if run.job_name == reference or (version.isdigit() and run.version == int(version)):
            return run
    matches = [r for r in runs if r.job_name.startswith(reference)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(r.job_name for r in runs[:5]) or "none yet"
    raise LookupError(f"no single run matches '{reference}' (recent runs: {known})")


def comparison_rows(a: RunRecord, b: RunRecord) -> list[tuple[str, str, str]]:
    """Side-by-side rows: identity, data, every hyperparameter and metric either run has."""
    rows = [
        ("job", a.job_name, b.job_name),
        ("version", _text(a.version), _text(b.version)),
        ("outcome", a.outcome, b.outcome),
        ("dataset", (a.dataset_sha256 or "")[:12], (b.dataset_sha256 or "")[:12]),
        ("started", _text(a.started_at), _text(b.started_at)),
    ]
    for name in sorted(set(a.hyperparameters) | set(b.hyperparameters)):
        rows.append((f"hp.{name}", _text(a.hyperparameters.get(name)), _text(b.hyperparameters.get(name))))
    for name in sorted(set(a.metrics) | set(b.metrics)):
        rows.append((f"metric.{name}", _text(a.metrics.get(name)), _text(b.metrics.get(name))))
    return rows


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
