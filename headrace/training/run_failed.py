"""RunFailed: a step failed. Say why in words (a failed training job's own FailureReason, a Lambda
function's error message), mark the run "failed" in the ledger, and announce it on the event bus. The
registry is never touched: a failed run leaves no version behind.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from headrace.ledger import RunItem
from headrace.naming import Names, training_job_name
from headrace.steps import StepError
from headrace.training.payloads import FailedState, FailedStep, Failure, RunFailedRequest
from headrace.training.ports import TrainingPorts

log = logging.getLogger("headrace.training")

DETAIL_TYPE = "Training Run Failed"
FAILED_METRIC = "TrainingRunsFailed"
# Fail's Cause takes up to 32768 characters; a cause longer than this is a log, not a reason.
CAUSE_MAX = 8192


def failure_cause(error: StepError | None) -> str:
    """The cause in words. A `.sync` training task that fails has DescribeTrainingJob's response (JSON) as
    its Cause, a failed Lambda function `{"errorType", "errorMessage", ...}`; anything else is kept as is."""
    if error is None:
        return "the run failed, but no error details were caught"
    if not error.cause:
        return error.error
    try:
        parsed: Any = json.loads(error.cause)
    except json.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("FailureReason") and parsed.get("HyperParameterTuningJobName"):
        # A `.sync` tuning task's Cause is DescribeHyperParameterTuningJob's response.
        job = parsed["HyperParameterTuningJobName"]
        status = str(parsed.get("HyperParameterTuningJobStatus", "Failed")).lower()
        cause = f"tuning job {job} {status}: {parsed['FailureReason']}"
    elif isinstance(parsed, dict) and parsed.get("FailureReason"):
        job = parsed.get("TrainingJobName", "the training job")
        status = str(parsed.get("TrainingJobStatus", "Failed")).lower()
        cause = f"training job {job} {status}: {parsed['FailureReason']}"
    elif isinstance(parsed, dict) and parsed.get("errorMessage"):
        cause = f"{parsed.get('errorType', error.error)}: {parsed['errorMessage']}"
    else:
        cause = error.cause
    return cause if len(cause) <= CAUSE_MAX else cause[: CAUSE_MAX - 1] + "…"


def failed_step(state: FailedState) -> FailedStep:
    """Which step failed, from how far the state got: each step adds its result to the state."""
    if state.gate is not None:
        return "Register"
    if state.training is not None:
        return "Evaluate"
    if state.run is not None:
        return "Tune" if state.run.get("tuning_job_name") else "Train"
    if state.model is not None and state.dataset is not None:
        return "Prepare"
    return "Unknown"


def _job_name(state: FailedState, execution_name: str) -> str | None:
    job = (state.run or {}).get("job_name")
    if isinstance(job, str) and job:
        return job
    sha256 = (state.dataset or {}).get("sha256")
    if state.model and isinstance(sha256, str) and sha256:
        # Prepare failed before returning the name; it is the one Prepare would have given the job.
        return training_job_name(state.model, sha256, execution_name)
    return None


def record_failure(
    request: RunFailedRequest,
    ports: TrainingPorts,
    *,
    names: Names,
) -> Failure:
    state = request.state
    failure = Failure(
        error=state.error.error if state.error else "States.Unknown",
        cause=failure_cause(state.error),
        failed_step=failed_step(state),
        model=state.model,
        job_name=_job_name(state, request.execution.name),
    )
    sha256 = (state.dataset or {}).get("sha256")
    dataset_sha256 = sha256 if isinstance(sha256, str) else None
    if failure.model and failure.job_name:
        ports.ledger.update(
            RunItem.failed(
                failure.model,
                failure.job_name,
                error=failure.error,
                cause=failure.cause,
                failed_step=failure.failed_step,
                execution_arn=request.execution.id,
                dataset_sha256=dataset_sha256,
                at=ports.clock(),
            ),
            keep_existing=RunItem.FAILURE_DEFAULTS,
        )
    ports.events.publish(
        DETAIL_TYPE,
        {
            "stage": names.stage,
            "model": failure.model,
            "job_name": failure.job_name,
            "execution_arn": request.execution.id,
            "execution_name": request.execution.name,
            "failed_step": failure.failed_step,
            "error": failure.error,
            "cause": failure.cause,
            "dataset_sha256": dataset_sha256,
        },
    )
    ports.metrics.count(FAILED_METRIC, failure.model or "unknown")
    log.warning(
        "run %s failed in %s: %s",
        failure.job_name,
        failure.failed_step,
        failure.cause,
        extra={"error": failure.error, "execution_arn": request.execution.id},
    )
    return failure
