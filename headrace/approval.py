"""Approving or rejecting a registered version: the one human decision in the loop.

The registry (SageMaker Model Registry) holds the status; the run ledger mirrors it so `headrace runs`
shows it. An approval is what the deploy workflow listens for.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from headrace.ledger import DynamoLedger, RunItem
from headrace.runs import list_runs

Decision = Literal["Approved", "Rejected"]


class VersionNotFound(LookupError):
    pass


class ApprovalResult(BaseModel):
    model: str
    version: int
    model_package_arn: str
    previous_status: str
    status: Decision


def _versions(sagemaker: Any, group: str) -> list[dict[str, Any]]:
    try:
        pages = sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group)
        return [summary for page in pages for summary in page["ModelPackageSummaryList"]]
    except sagemaker.exceptions.ClientError:
        return []


def set_approval(
    sagemaker: Any,
    dynamodb: Any,
    table: str,
    model: str,
    group: str,
    version: int,
    decision: Decision,
    reason: str,
) -> ApprovalResult:
    versions = _versions(sagemaker, group)
    match = next((v for v in versions if v.get("ModelPackageVersion") == version), None)
    if match is None:
        known = ", ".join(f"v{v['ModelPackageVersion']}" for v in versions) or "none registered yet"
        raise VersionNotFound(f"model '{model}' has no version {version} (versions: {known})")
    arn = match["ModelPackageArn"]
    previous = str(match.get("ModelApprovalStatus", ""))
    sagemaker.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus=decision, ApprovalDescription=reason
    )
    ledger = DynamoLedger(dynamodb, table)
    for run in list_runs(dynamodb, table, model):
        if run.model_package_arn == arn:
            ledger.update(RunItem.approval(model, run.job_name, decision))
    return ApprovalResult(
        model=model, version=version, model_package_arn=arn, previous_status=previous, status=decision
    )
