"""Record: how a batch's transform job ended, in the ledger, as an event and as metrics. Only a Completed job
gets its output's location; a failed or stopped one records SageMaker's FailureReason, and whatever it wrote
is never presented as a result."""

from __future__ import annotations

import json
import logging

from headrace.batch.monitor import check_inputs
from headrace.batch.payloads import BatchDrift, BatchOutcome, RecordRequest
from headrace.batch.ports import BatchPorts
from headrace.config import ModelConfig
from headrace.ledger.batches import BatchItem, BatchStatus
from headrace.ledger.keys import sort_time

BATCH_COMPLETED = "Batch Completed"
BATCH_FAILED = "Batch Failed"

log = logging.getLogger(__name__)


def record(request: RecordRequest, model: ModelConfig, ports: BatchPorts) -> BatchOutcome:
    batch, resolved = request.batch, request.resolved
    status, reason = _ending(request)
    completed = status == "Completed"
    drift = _monitored(request, model, ports) if completed else None
    outcome = BatchOutcome(
        model=resolved.model,
        job_name=resolved.job_name,
        status=status,
        rows=batch.rows,
        output_uri=resolved.output_uri if completed else None,
        failure_reason=reason,
        drift=drift,
    )
    ports.ledger.update(
        BatchItem(
            model=resolved.model,
            job_name=resolved.job_name,
            input_key=batch.source_key,
            sha256=batch.sha256,
            rows=batch.rows,
            version=resolved.version,
            model_name=resolved.model_name,
            execution_arn=request.execution.id,
            status=status,
            output_uri=outcome.output_uri,
            failure_reason=reason,
            drift_status=drift.status if drift else None,
            drifted_features=drift.drifted_features if drift else [],
            drift_report_uri=drift.report_uri if drift else None,
            started_at=sort_time(ports.clock()),
            ended_at=sort_time(ports.clock()),
        ),
        keep_existing={"started_at"},
    )
    ports.events.publish(BATCH_COMPLETED if completed else BATCH_FAILED, outcome.model_dump(mode="json"))
    ports.metrics.finished(resolved.model, status, batch.rows if completed else 0)
    (log.info if completed else log.warning)("batch ended", extra=outcome.model_dump(mode="json"))
    return outcome


def _monitored(request: RecordRequest, model: ModelConfig, ports: BatchPorts) -> BatchDrift:
    """The drift check over the scored inputs; its own failure is recorded and logged, and leaves the scores
    (which are complete) presented as done."""
    try:
        return check_inputs(request.batch, request.resolved, model, ports)
    except Exception as exc:
        log.exception("the drift check of a batch's inputs failed", extra={"job": request.resolved.job_name})
        return BatchDrift(status=f"error: {type(exc).__name__}: {exc}"[:500])


def _ending(request: RecordRequest) -> tuple[BatchStatus, str | None]:
    """The job's end: DescribeTransformJob's status, else what the Catch says (the .sync integration puts the
    job's description in the Cause of a failed job, https://docs.aws.amazon.com/step-functions/latest/dg/connect-sagemaker.html)."""
    if request.transform is not None and request.error is None:
        status = str(request.transform.get("TransformJobStatus", "Completed"))
        reason = request.transform.get("FailureReason")
        if status == "Completed":
            return "Completed", None
        return ("Stopped" if status == "Stopped" else "Failed"), str(reason or f"the job ended {status}")
    error = request.error
    if error is None:
        return "Failed", "the transform step ended without a result or an error"
    described = _json(error.cause)
    status = str(described.get("TransformJobStatus", "Failed"))
    reason = described.get("FailureReason") or error.cause or error.error
    return ("Stopped" if status == "Stopped" else "Failed"), f"{error.error}: {reason}"


def _json(text: str | None) -> dict[str, object]:
    try:
        loaded = json.loads(text or "")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
