"""Training attempts of one dataset version: may its content start another run, and under what name.

The first upload of some content starts attempt 1. The same bytes again are a duplicate while that run is
in progress or once it ended at the gate or in the registry; after a failed run (its ledger item says
"failed", as RunFailed writes it) they start attempt 2, and so on. `headrace retrain --dataset` may also
start a new attempt after a finished run, never beside one in progress. Each attempt has its own execution
name, derived from the content and the attempt number, so twins of one attempt still collapse into one
execution, and the dataset item moves on only from the attempt it was read at (`record_attempt`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from headrace.ingest.ports import RunStarter
from headrace.ledger import DatasetItem, DatasetLedger, DatasetVersion, RunItem, RunStatus, TrainingInput
from headrace.naming import execution_name, training_job_name

# A run in one of these states is over: another attempt cannot race it.
FINISHED = frozenset({RunStatus.FAILED.value, RunStatus.REJECTED.value, RunStatus.REGISTERED.value})


@dataclass(frozen=True)
class Attempt:
    number: int
    # The dataset item as the previous attempt left it (None for the first attempt).
    previous: DatasetItem | None = None


@dataclass(frozen=True)
class Started:
    execution_arn: str
    # False when a twin got there first: the execution existed, or the ledger had moved on.
    created: bool


def attempt_execution_name(model: str, sha256: str, number: int) -> str:
    """Attempt 1 keeps the name executions always had; later ones add `a<N>`."""
    return execution_name(model, sha256, "" if number == 1 else f"a{number}")


def last_job_name(item: DatasetItem) -> str | None:
    """The training job (and run item) of the item's latest attempt, named from its execution."""
    if not item.execution_arn:
        return None
    return training_job_name(item.model, item.sha256, item.execution_arn.rsplit(":", 1)[-1])


def next_attempt(
    seen: DatasetItem | None, run: RunItem | None, *, after_finished: bool = False
) -> int | None:
    """The attempt this content may start, or None when it may not (a duplicate, or a run in progress).

    `run` is the run item of `seen`'s latest attempt; None means Prepare has not written it yet, so the run
    is still starting. A re-upload (`after_finished` False) retries only a failed run; an explicit retrain
    (`after_finished` True) any run that is over."""
    if seen is None or not seen.execution_arn:
        return 1
    if run is None or run.status not in FINISHED:
        return None
    if run.status == RunStatus.FAILED.value or after_finished:
        return seen.attempt + 1
    return None


def previous_run(seen: DatasetItem | None, ledger: DatasetLedger) -> RunItem | None:
    job = last_job_name(seen) if seen is not None else None
    return ledger.run(seen.model, job) if seen is not None and job else None


def start_attempt(
    version: DatasetVersion,
    attempt: Attempt,
    ledger: DatasetLedger,
    runs: RunStarter,
    clock: Callable[[], datetime],
) -> Started:
    """Start the attempt's execution, then record it on the dataset item. A crash in between leaves the
    item on the previous attempt: the next try computes the same attempt, finds its execution (a duplicate)
    and records it then."""
    name = attempt_execution_name(version.model, version.sha256, attempt.number)
    run = runs.start(version.model, name, TrainingInput.of(version).to_json())
    if attempt.previous is None or not attempt.previous.execution_arn:
        recorded = ledger.record_dataset(DatasetItem.started(version, run.execution_arn, clock()))
    else:
        item = attempt.previous.attempted(attempt.number, run.execution_arn, clock())
        recorded = ledger.record_attempt(item, attempt.previous.execution_arn)
    return Started(run.execution_arn, run.created and recorded)


class DatasetNotFound(LookupError):
    """No accepted dataset version of the model has this content."""


class RunInProgress(RuntimeError):
    """The dataset's latest run has not ended: another attempt would race it."""


def retrain_dataset(
    model: str, sha256: str, ledger: DatasetLedger, runs: RunStarter, clock: Callable[[], datetime]
) -> Started:
    """Start another training attempt of a recorded dataset version (`headrace retrain --dataset`).

    Two of these at once compute the same attempt and start one execution; `created` says which did."""
    seen = ledger.dataset(model, sha256)
    if seen is None:
        raise DatasetNotFound(f"model {model} has no accepted dataset version {sha256}")
    run = previous_run(seen, ledger)
    number = next_attempt(seen, run, after_finished=True)
    if number is None:
        state = run.status if run is not None and run.status else "starting"
        raise RunInProgress(f"the run of dataset {sha256[:12]} is still {state}: {seen.execution_arn}")
    return start_attempt(seen.version(), Attempt(number, seen), ledger, runs, clock)
