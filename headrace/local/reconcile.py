"""Reconciliation on start: end what a stopped plane left running, as AWS would have ended it.

A plane that stopped (`local down`, or a crash) restores records of work whose processes and threads are
gone. On AWS that work would have gone on or failed, so on the next start:
- a training job InProgress is Failed with an InternalServerError FailureReason, as SageMaker fails a job
  whose instance was lost (one Stopping is Stopped);
- a RUNNING Step Functions execution is resumed from the state it was in, with that state's recorded
  input: a task whose work is known to have failed (a `.sync` training job, now Failed) takes the state's
  own Catch with the error the task would have raised (States.TaskFailed, the job's description as the
  cause), so the definition's failure path (RunFailed) runs; any other state runs again (Lambda tasks are
  at-least-once on AWS too, and every handler is idempotent). An execution that cannot be resumed is
  failed with the reason.
Endpoints are served again by hosting's own restore (on their current config: an update cut short rolls
back to the config that served before it).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.sagemaker.models import sagemaker_backends
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.component.common.flow.start_at import StartAt
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

log = logging.getLogger("headrace.local")

# What SageMaker reports for a job whose instance was lost (its documented FailureReason prefix).
LOST_JOB_REASON = "InternalServerError: the local plane stopped while the job ran"
STOPPED_REASON = "the local plane stopped while the execution ran"
TASK_FAILED = "States.TaskFailed"
# A Task state's Resource for it ends so, whatever the partition.
_SAGEMAKER_SYNC = ":states:::sagemaker:createTrainingJob.sync"


@dataclass(frozen=True)
class Interrupted:
    """The state an execution was in when the plane stopped, and the input it entered with."""

    state: str
    state_input: Any
    last_event_id: int


def reconcile(account: str, region: str) -> list[str]:
    """End or resume what the restored state says was running; returns one line per thing reconciled."""
    notes = _fail_lost_training_jobs(account, region)
    notes += _resume_executions(account, region)
    return notes


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


def interrupted_state(history: list[dict[str, Any]]) -> Interrupted | None:
    """The last state entered and not exited, from an execution's history events."""
    entered: dict[str, dict[str, Any]] = {}
    last_id = 0
    for event in history:
        last_id = max(last_id, int(event.get("id", 0)))
        if details := event.get("stateEnteredEventDetails"):
            entered[details["name"]] = details
        elif details := event.get("stateExitedEventDetails"):
            entered.pop(details["name"], None)
    if not entered:
        return None
    details = list(entered.values())[-1]
    return Interrupted(details["name"], json.loads(details.get("input") or "{}"), last_id)


def caught(
    definition: dict[str, Any], state: str, state_input: Any, error: str, cause: str
) -> tuple[str, Any]:
    """Where the state's Catch sends `error`, and the input it gives that state (ResultPath applied).
    LookupError when no catcher matches: the error would fail the execution."""
    for catcher in definition["States"][state].get("Catch", []):
        errors = catcher.get("ErrorEquals", [])
        if (
            error in errors
            or "States.ALL" in errors
            or (error.startswith("States.") and "States.TaskFailed" in errors)
        ):
            result = {"Error": error, "Cause": cause}
            path = catcher.get("ResultPath", "$")
            if path is None:
                return catcher["Next"], state_input
            if path == "$":
                return catcher["Next"], result
            target = dict(state_input)
            node = target
            parts = path.removeprefix("$.").split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = result
            return catcher["Next"], target
    raise LookupError(f"state {state} has no Catch for {error}")


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
    start, state_input = where.state, where.state_input
    failure = _known_failure(state, state_input, execution.account_id, execution.region_name)
    if failure is not None:
        start, state_input = caught(definition, where.state, state_input, TASK_FAILED, failure)
    resumed = _ResumedWorker(execution, start, state_input, env.event_manager, where.last_event_id)
    execution.exec_worker = resumed
    resumed.start()  # type: ignore[no-untyped-call]
    how = f"caught {TASK_FAILED} in {where.state}, resumed at {start}" if failure else f"resumed at {start}"
    return f"execution {execution.name}: {how}"


def _known_failure(state: dict[str, Any], state_input: Any, account: str, region: str) -> str | None:
    """The cause a task would fail with now, for a `.sync` training task whose job has ended badly."""
    if state.get("Type") != "Task" or not str(state.get("Resource", "")).endswith(_SAGEMAKER_SYNC):
        return None
    jobs = sagemaker_backends[account][region].training_jobs
    for job in jobs.values():
        if job.training_job_status in ("Failed", "Stopped") and _job_of(state, state_input, job):
            return to_json_str(
                {
                    "TrainingJobName": job.training_job_name,
                    "TrainingJobArn": job.arn,
                    "TrainingJobStatus": job.training_job_status,
                    "FailureReason": getattr(job, "failure_reason", None) or "Stopped",
                }
            )
    return None


def _job_of(state: dict[str, Any], state_input: Any, job: Any) -> bool:
    """Whether `job` is the one this task state created: its name parameter, resolved from the input."""
    parameters = state.get("Parameters", {})
    if "TrainingJobName" in parameters:
        return bool(parameters["TrainingJobName"] == job.training_job_name)
    path = parameters.get("TrainingJobName.$", "")
    node: Any = state_input
    for part in path.removeprefix("$.").split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return bool(node == job.training_job_name)


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
