"""The run record: one ledger item per training run, beside ingest's dataset items.

    pk = model#<model>   sk = run#<training job name>

Prepare creates it (status "training"); Evaluate moves it to "evaluated" or "rejected" (with the gate's
reasons), Register to "registered" (with the registry `version`), RunFailed to "failed" (`error` is Step
Functions' error name, `cause` the reason in words), creating it if the run failed before Prepare could.
The three end states also set `finished_at`. Metrics, the gate and hyperparameters are JSON strings:
DynamoDB numbers cannot hold NaN, and nested maps cost capacity for nothing. Values are plain str/int/dict
so any client can write them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from headrace.ledger_keys import model_pk, sort_time
from headrace.training.layout import RunLayout
from headrace.training.payloads import DatasetRef, Failure, GateResult, Registered, SplitRows

RUN_KIND = "run"


class RunStatus(StrEnum):
    TRAINING = "training"
    EVALUATED = "evaluated"
    REJECTED = "rejected"
    REGISTERED = "registered"
    FAILED = "failed"


def run_sk(job: str) -> str:
    return f"run#{job}"


iso = sort_time


def run_item(
    layout: RunLayout,
    dataset: DatasetRef,
    hyperparameters: Mapping[str, str],
    execution_arn: str,
    rows: SplitRows,
    started_at: datetime,
) -> dict[str, Any]:
    return {
        "pk": model_pk(layout.model),
        "sk": run_sk(layout.job),
        "kind": RUN_KIND,
        "model": layout.model,
        "job_name": layout.job,
        "status": RunStatus.TRAINING.value,
        "dataset_sha256": dataset.sha256,
        "dataset_key": dataset.dataset_key,
        "dataset_version_id": dataset.version_id,
        "hyperparameters": json.dumps(dict(hyperparameters), sort_keys=True),
        "execution_arn": execution_arn,
        "splits_prefix": layout.uri(f"{layout.prefix}splits/"),
        "rows": rows.model_dump(),
        "started_at": iso(started_at),
        "updated_at": iso(started_at),
    }


def evaluated_fields(gate: GateResult, at: datetime) -> dict[str, Any]:
    fields = {
        "status": (RunStatus.EVALUATED if gate.passed else RunStatus.REJECTED).value,
        "metrics": json.dumps(gate.candidate, sort_keys=True),
        "gate": gate.model_dump_json(),
        "reasons": list(gate.reasons),
        "evaluation_uri": gate.evaluation_uri,
        "evaluated_at": iso(at),
        "updated_at": iso(at),
    }
    # A rejection ends the run; a pass goes on to Register.
    return fields if gate.passed else fields | {"finished_at": iso(at)}


def registered_fields(registered: Registered, at: datetime) -> dict[str, Any]:
    return {
        "status": RunStatus.REGISTERED.value,
        "model_package_arn": registered.model_package_arn,
        "version": registered.version,
        "approval_status": registered.approval_status,
        "registered_at": iso(at),
        "finished_at": iso(at),
        "updated_at": iso(at),
    }


def failed_fields(failure: Failure, at: datetime) -> dict[str, Any]:
    return {
        "status": RunStatus.FAILED.value,
        "error": failure.error,
        "cause": failure.cause,
        "failed_step": failure.failed_step,
        "failed_at": iso(at),
        "finished_at": iso(at),
        "updated_at": iso(at),
    }


def identity_fields(model: str, job: str, execution_arn: str, dataset_sha256: str | None) -> dict[str, Any]:
    """What a record created by RunFailed (Prepare never wrote one) needs to be a run record at all."""
    fields = {"kind": RUN_KIND, "model": model, "job_name": job, "execution_arn": execution_arn}
    return fields | ({"dataset_sha256": dataset_sha256} if dataset_sha256 else {})
