"""Reconciliation on start: end what a stopped plane left running, as AWS would have ended it, and deliver
what it acknowledged but never delivered.

A plane that stopped (`local down`, or a crash) restores records of work whose processes and threads are
gone. On AWS that work would have gone on or failed, so on the next start (seams/executions.py applies it to
moto's backends):
- a training job InProgress is Failed with an InternalServerError FailureReason, as SageMaker fails a job
  whose instance was lost (one Stopping is Stopped);
- a RUNNING Step Functions execution is resumed by moto's interpreter from the state it was in, with that
  state's recorded input: a `.sync` training task goes on waiting on the job it had created (now Failed), so
  the definition's own Catch sends it down its failure path (RunFailed), as on AWS; any other state runs
  again (Lambda tasks are at-least-once on AWS too, and every handler is idempotent). An execution that
  cannot be resumed is failed with the reason.
Events waiting for delivery live only in memory (targets.py), so an acknowledged upload may have no dataset
and no rejection: its "Object Created" event is sent again (`undelivered`), and a dataset recorded without
its execution gets it started (`unstarted`), both as ingest would have (it is idempotent).
Endpoints are served again by hosting's own restore (on their current config: an update cut short rolls
back to the config that served before it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from headrace.ingest.ports import RunStarter
from headrace.ledger import DatasetItem, LedgerItem, MisplacedItem, RejectionItem, TrainingInput

# What SageMaker reports for a job whose instance was lost (its documented FailureReason prefix).
LOST_JOB_REASON = "InternalServerError: the local plane stopped while the job ran"
STOPPED_REASON = "the local plane stopped while the execution ran"


@dataclass(frozen=True)
class Interrupted:
    """The state an execution was in when the plane stopped, and the input it entered with."""

    state: str
    state_input: Any
    last_event_id: int


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


def named_job(state: dict[str, Any], state_input: Any) -> str | None:
    """The training job a task state creates: its TrainingJobName parameter, resolved from the input."""
    parameters = state.get("Parameters", {})
    if "TrainingJobName" in parameters:
        return str(parameters["TrainingJobName"])
    path = parameters.get("TrainingJobName.$")
    if not path:
        return None
    node: Any = state_input
    for part in str(path).removeprefix("$.").split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, str) else None


@dataclass(frozen=True)
class Upload:
    """One object version in the data bucket."""

    bucket: str
    key: str
    version_id: str | None


class Uploads(Protocol):
    """The data bucket's side of redelivery (seams/executions.py: moto's S3 backend)."""

    def incoming(self, bucket: str, prefix: str) -> list[Upload]:
        """Every object version under `prefix`."""

    def sha256(self, upload: Upload) -> str: ...

    def notify(self, upload: Upload) -> None:
        """Send the version's "Object Created" event again, the way S3 sends it (through EventBridge)."""


class Records(Protocol):
    """What ingest recorded (headrace.ledger.DynamoLedger)."""

    def partition(self, model: str) -> list[LedgerItem]: ...


def undelivered(
    uploads: Iterable[Upload], recorded: Iterable[LedgerItem], sha256: Callable[[Upload], str]
) -> list[Upload]:
    """The uploads ingest never answered: no dataset, rejection or misplaced file names the version, nor
    (read only for the rest) holds its content: a duplicate upload of recorded content records nothing of its
    own, and sending it again after a failed run would start another attempt."""
    items = list(recorded)
    answered = DatasetItem | RejectionItem | MisplacedItem
    known = {(item.key, item.version_id) for item in items if isinstance(item, answered)}
    contents = {item.sha256 for item in items if isinstance(item, DatasetItem | RejectionItem)}
    return [
        upload
        for upload in uploads
        if (upload.key, upload.version_id) not in known and sha256(upload) not in contents
    ]


def unstarted(recorded: Iterable[LedgerItem], exists: Callable[[str], bool]) -> list[DatasetItem]:
    """Datasets whose latest attempt's execution was never started (ingest stopped between the two)."""
    return [
        item
        for item in recorded
        if isinstance(item, DatasetItem) and item.execution_arn and not exists(item.execution_arn)
    ]


@dataclass(frozen=True)
class DataPlane:
    """Where a deployment's uploads land and what ingest made of them."""

    bucket: str
    # model name -> its `<model>/incoming/` prefix
    incoming: dict[str, str]
    records: Records
    runs: RunStarter
    execution_exists: Callable[[str], bool]


def redeliver(data: DataPlane, uploads: Uploads) -> list[str]:
    """Start the runs recorded datasets lack, then send undelivered uploads' events again; one note each."""
    notes = []
    for model, prefix in data.incoming.items():
        recorded = data.records.partition(model)
        for item in unstarted(recorded, data.execution_exists):
            name = str(item.execution_arn).rsplit(":", 1)[-1]
            data.runs.start(model, name, TrainingInput.of(item.version()).to_json())
            notes.append(f"dataset {model}/{item.sha256[:12]}: started its run {name}")
        for upload in undelivered(uploads.incoming(data.bucket, prefix), recorded, uploads.sha256):
            uploads.notify(upload)
            notes.append(f"upload {upload.key} ({upload.version_id}): delivered again")
    return notes
