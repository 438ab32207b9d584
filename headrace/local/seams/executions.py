"""Reconciliation on moto's backends (the decisions are reconcile.py's): training jobs a stopped plane left
InProgress end Failed, RUNNING executions resume from the state they were in, and S3 sends an upload's event
again through its own EventBridge path. Also turns on moto's execution of state machines.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from moto.moto_api._internal.models import moto_api_backend
from moto.s3.models import FakeDeleteMarker, s3_backends
from moto.s3.notifications import S3NotificationEvent, send_event
from moto.sagemaker.models import sagemaker_backends
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.component.common.flow.start_at import StartAt
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from headrace.local.reconcile import (
    LOST_JOB_REASON,
    STOPPED_REASON,
    Upload,
    interrupted_state,
    named_job,
)
from headrace.local.seams.sfn_sagemaker import attach_on_resume

log = logging.getLogger("headrace.local")

# A Task state's Resource for it ends so, whatever the partition.
_SAGEMAKER_SYNC = ":states:::sagemaker:createTrainingJob.sync"
_CHUNK = 1 << 20


def run_state_machines() -> None:
    """moto runs executions with its ASL interpreter only when told to (in-process: its admin API is not
    served over HTTP, seams/authn.py)."""
    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}})


def end_interrupted(account: str, region: str) -> list[str]:
    """End or resume what the restored state says was running; returns one line per thing reconciled."""
    notes = _fail_lost_training_jobs(account, region)
    notes += _end_lost_tuning_jobs(account, region)
    notes += _resume_executions(account, region)
    return notes


class MotoUploads:
    """`reconcile.Uploads` on moto's S3 backend."""

    def __init__(self, account: str) -> None:
        self._account = account
        self._s3 = s3_backends[account]["global"]

    def incoming(self, bucket: str, prefix: str) -> list[Upload]:
        store = self._s3.get_bucket(bucket).keys
        return [
            Upload(bucket, name, key.version_id)
            for name, versions in store.iterlists()
            if name.startswith(prefix)
            for key in versions
            if not isinstance(key, FakeDeleteMarker)
        ]

    def _key(self, upload: Upload) -> Any:
        return self._s3.get_object(upload.bucket, upload.key, version_id=upload.version_id)

    def sha256(self, upload: Upload) -> str:
        digest = hashlib.sha256()
        digest.update(self._key(upload).value)
        return digest.hexdigest()

    def notify(self, upload: Upload) -> None:
        bucket = self._s3.get_bucket(upload.bucket)
        send_event(self._account, S3NotificationEvent.OBJECT_CREATED_PUT_EVENT, bucket, self._key(upload))


def execution_exists(arn: str) -> bool:
    """Whether Step Functions knows the execution (in the parser backend, where executions run)."""
    parts = arn.split(":")
    backend = stepfunctions_parser_backends[parts[4]][parts[3]]
    try:
        backend.describe_execution(arn)
    except Exception:  # ExecutionDoesNotExist, or an ARN of a machine that is gone
        return False
    return True


def _fail_lost_training_jobs(account: str, region: str) -> list[str]:
    notes = []
    now = datetime.now(UTC)
    jobs: dict[str, Any] = sagemaker_backends[account][region].training_jobs
    for name, job in jobs.items():
        status = job.training_job_status
        if status not in ("InProgress", "Stopping"):
            continue
        ended, reason = ("Stopped", "Stopped") if status == "Stopping" else ("Failed", LOST_JOB_REASON)
        transitions = job.secondary_status_transitions or []
        if transitions:
            transitions[-1].setdefault("EndTime", now)
        transitions.append({"Status": ended, "StartTime": now, "StatusMessage": reason})
        job.secondary_status_transitions = transitions
        job.secondary_status = ended
        job.training_end_time = job.last_modified_time = now
        if ended == "Failed":
            job.failure_reason = reason
        job.training_job_status = ended
        notes.append(f"training job {name}: {status} -> {ended} ({reason})")
    return notes


def _end_lost_tuning_jobs(account: str, region: str) -> list[str]:
    """A tuning job's search runs in the plane's memory: one InProgress when the plane stopped has lost it
    (and its trials were failed above), so it ends Failed, as a training job whose instance was lost does;
    one Stopping ends Stopped. Left InProgress, a `.sync` task would wait on it forever."""
    notes = []
    now = datetime.now(UTC)
    jobs: dict[str, Any] = sagemaker_backends[account][region].hyper_parameter_tuning_jobs
    for name, job in jobs.items():
        status = job.hyper_parameter_tuning_job_status
        if status not in ("InProgress", "Stopping"):
            continue
        ended = "Stopped" if status == "Stopping" else "Failed"
        if ended == "Failed":
            job.failure_reason = LOST_JOB_REASON
        job.hyper_parameter_tuning_end_time = job.last_modified_time = now
        job.hyper_parameter_tuning_job_status = ended
        notes.append(f"tuning job {name}: {status} -> {ended}")
    return notes


def _resume_executions(account: str, region: str) -> list[str]:
    backend = stepfunctions_parser_backends[account][region]
    notes = []
    for machine in list(backend.state_machines):
        for execution in list(getattr(machine, "executions", [])):
            if execution.exec_status != ExecutionStatus.RUNNING:
                continue
            try:
                notes.append(_resume(execution))
            except Exception as exc:  # the plane must still start: end this one with the reason
                log.warning("cannot resume execution %s: %s", execution.exec_arn, exc)
                _fail(execution, f"{STOPPED_REASON}, and it could not be resumed: {exc}")
                notes.append(f"execution {execution.name}: failed ({exc})")
    return notes


def _resume(execution: Any) -> str:
    worker = execution.exec_worker
    env = worker.env if worker is not None else None
    if env is None:
        raise LookupError("its history was not kept")
    history = env.event_manager.get_event_history()
    where = interrupted_state(history)
    if where is None:
        raise LookupError("no state was running")
    definition = json.loads(execution.state_machine.definition)
    state = definition["States"][where.state]
    job = _started_job(state, where.state_input, execution.account_id, execution.region_name)
    if job is not None:
        attach_on_resume(job)
    resumed = _ResumedWorker(
        execution, where.state, where.state_input, env.event_manager, where.last_event_id
    )
    execution.exec_worker = resumed
    resumed.start()  # type: ignore[no-untyped-call]
    waiting = f", waiting on training job {job}" if job else ""
    return f"execution {execution.name}: resumed at {where.state}{waiting}"


def _started_job(state: dict[str, Any], state_input: Any, account: str, region: str) -> str | None:
    """The training job a `.sync` task had already created when the plane stopped, if any."""
    if state.get("Type") != "Task" or not str(state.get("Resource", "")).endswith(_SAGEMAKER_SYNC):
        return None
    name = named_job(state, state_input)
    return name if name and name in sagemaker_backends[account][region].training_jobs else None


def _fail(execution: Any, cause: str) -> None:
    execution.exec_status = ExecutionStatus.FAILED
    execution.error, execution.cause = "States.Runtime", cause
    execution.stop_date = datetime.now(UTC)


class _ResumedWorker(ExecutionWorker):
    """moto's worker, evaluating the program from one state with one input, appending to the history kept."""

    def __init__(self, execution: Any, start: str, state_input: Any, events: Any, last_event_id: int) -> None:
        fresh = execution._get_start_execution_worker()
        super().__init__(
            evaluation_details=fresh._evaluation_details,
            exec_comm=fresh._execution_communication,
            cloud_watch_logging_session=fresh._cloud_watch_logging_session,
            activity_store=fresh._activity_store,
        )
        self._start, self._input = start, state_input
        self._events, self._last_event_id = events, last_event_id

    def _execution_logic(self) -> None:
        program: Any = self._get_evaluation_entrypoint()
        env = self._get_evaluation_environment()
        env.event_manager = self._events
        env.event_history_context = EventHistoryContext(previous_event_id=self._last_event_id)  # type: ignore[misc]
        env.states.reset(input_value=self._input)
        self.env = env
        program.start_at = StartAt(start_at_name=self._start)
        program.eval(env)
        self._execution_communication.terminated()
