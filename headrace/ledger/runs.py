"""Training runs: one item per run, `run#<training job name>`, written step by step.

Prepare creates it (status "training"); Evaluate moves it to "evaluated" or "rejected" (with the gate's
reasons), Register to "registered" (with the registry `version`), RunFailed to "failed" (`error` is Step
Functions' error name, `cause` the reason in words), creating it if the run failed before Prepare could;
an approval mirrors the registry's status. The three end states also set `finished_at`. A tuned run's
TuningResult step adds `tuning` (its trials, the best and why) and replaces `hyperparameters` with the best
trial's. Hyperparameters, metrics, the gate and tuning are JSON strings: DynamoDB numbers cannot hold NaN,
and nested maps cost capacity for nothing. Each step writes a partial item: only the fields it gives are
updated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from headrace.ledger.item import LedgerItem
from headrace.ledger.keys import Kind, sort_time


class RunStatus(StrEnum):
    TRAINING = "training"
    EVALUATED = "evaluated"
    REJECTED = "rejected"
    REGISTERED = "registered"
    FAILED = "failed"


@dataclass(frozen=True)
class StartedRun:
    # The stored start: this call's, or the first call's when the item existed (a replayed Prepare).
    started_at: datetime
    created: bool


class RunItem(LedgerItem):
    KIND: ClassVar[Kind] = Kind.RUN
    IDENTITY: ClassVar[frozenset[str]] = LedgerItem.IDENTITY | {"job_name"}
    # What a record created by RunFailed (Prepare never wrote one) takes only where nothing was recorded.
    FAILURE_DEFAULTS: ClassVar[frozenset[str]] = frozenset({"execution_arn", "dataset_sha256"})

    job_name: str
    # Read as text, so a newer status still lists (RunStatus names the ones written here).
    status: str | None = None
    dataset_sha256: str | None = None
    dataset_key: str | None = None
    dataset_version_id: str | None = None
    hyperparameters: str | None = None  # JSON
    execution_arn: str | None = None
    splits_prefix: str | None = None
    rows: dict[str, int] | None = None
    # JSON: {"datasets": [{sha256, dataset_key, source, rows, lineage_uri}], "holdout": sha256 | null}
    datasets: str | None = None
    started_at: str | None = None  # sort_time, like every time below
    updated_at: str | None = None
    metrics: str | None = None  # JSON
    gate: str | None = None  # JSON
    reasons: list[str] | None = None
    evaluation_uri: str | None = None
    evaluated_at: str | None = None
    model_package_arn: str | None = None
    version: int | None = None
    approval_status: str | None = None
    registered_at: str | None = None
    error: str | None = None
    cause: str | None = None
    failed_step: str | None = None
    failed_at: str | None = None
    finished_at: str | None = None
    # JSON: headrace.training.tuning.summarize's document (a tuned run only).
    tuning: str | None = None

    @property
    def sort_id(self) -> str:
        return self.job_name

    @classmethod
    def key_fields(cls, sort_id: str) -> dict[str, Any]:
        return {"job_name": sort_id}

    @classmethod
    def started(
        cls,
        model: str,
        job: str,
        *,
        dataset_sha256: str,
        dataset_key: str,
        dataset_version_id: str | None,
        hyperparameters: Mapping[str, str],
        execution_arn: str,
        splits_prefix: str,
        rows: Mapping[str, int],
        at: datetime,
        datasets: str | None = None,
    ) -> RunItem:
        return cls(
            model=model,
            job_name=job,
            status=RunStatus.TRAINING.value,
            dataset_sha256=dataset_sha256,
            dataset_key=dataset_key,
            dataset_version_id=dataset_version_id,
            hyperparameters=json.dumps(dict(hyperparameters), sort_keys=True),
            execution_arn=execution_arn,
            splits_prefix=splits_prefix,
            rows=dict(rows),
            datasets=datasets,
            started_at=sort_time(at),
            updated_at=sort_time(at),
        )

    @classmethod
    def tuned(
        cls, model: str, job: str, *, tuning: str, hyperparameters: Mapping[str, str], at: datetime
    ) -> RunItem:
        """A tuned run's tuning job ended: `tuning` as JSON, and the hyperparameters of the trial it chose."""
        return cls(
            model=model,
            job_name=job,
            tuning=tuning,
            hyperparameters=json.dumps(dict(hyperparameters), sort_keys=True),
            updated_at=sort_time(at),
        )

    @classmethod
    def evaluated(
        cls,
        model: str,
        job: str,
        *,
        passed: bool,
        metrics: Mapping[str, float | None],
        gate: str,
        reasons: Sequence[str],
        evaluation_uri: str,
        at: datetime,
    ) -> RunItem:
        """`gate` is the gate's result as JSON. A rejection ends the run; a pass goes on to Register."""
        return cls(
            model=model,
            job_name=job,
            status=(RunStatus.EVALUATED if passed else RunStatus.REJECTED).value,
            metrics=json.dumps(dict(metrics), sort_keys=True),
            gate=gate,
            reasons=list(reasons),
            evaluation_uri=evaluation_uri,
            evaluated_at=sort_time(at),
            updated_at=sort_time(at),
            **({} if passed else {"finished_at": sort_time(at)}),
        )

    @classmethod
    def registered(
        cls, model: str, job: str, *, model_package_arn: str, version: int, approval_status: str, at: datetime
    ) -> RunItem:
        return cls(
            model=model,
            job_name=job,
            status=RunStatus.REGISTERED.value,
            model_package_arn=model_package_arn,
            version=version,
            approval_status=approval_status,
            registered_at=sort_time(at),
            finished_at=sort_time(at),
            updated_at=sort_time(at),
        )

    @classmethod
    def failed(
        cls,
        model: str,
        job: str,
        *,
        error: str,
        cause: str,
        failed_step: str,
        execution_arn: str,
        dataset_sha256: str | None,
        at: datetime,
    ) -> RunItem:
        """Written with `FAILURE_DEFAULTS` kept where set: the run may have been recorded before it failed."""
        return cls(
            model=model,
            job_name=job,
            status=RunStatus.FAILED.value,
            error=error,
            cause=cause,
            failed_step=failed_step,
            failed_at=sort_time(at),
            finished_at=sort_time(at),
            updated_at=sort_time(at),
            execution_arn=execution_arn,
            **({"dataset_sha256": dataset_sha256} if dataset_sha256 else {}),
        )

    @classmethod
    def approval(cls, model: str, job: str, status: str) -> RunItem:
        """The registry's approval status, mirrored (`headrace approve`/`reject`)."""
        return cls(model=model, job_name=job, approval_status=status)
