"""SageMaker hyperparameter tuning jobs that really run: each trial is a training job started through
CreateTrainingJob, as SageMaker's tuning service starts them, so TrainingCompute runs it (a subprocess, or the
image under Docker) like any other.

moto keeps the tuning job's record (created by CreateHyperParameterTuningJob, "Completed" at once, with canned
counters); this module takes the record over: InProgress while trials run, at most MaxParallelTrainingJobs at
once until MaxNumberOfTrainingJobs have started; the search (tuning_search.py) picks each trial's values from
the earlier trials' objectives; each objective line a trial prints is reported to the search, whose pruner may
stop the trial (early stopping, Hyperband); the job ends Completed with its BestTrainingJob, Failed when no
trial produced an objective, or Stopped (StopHyperParameterTuningJob).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import optuna
from optuna.trial import TrialState

from headrace.local.aws import Clients
from headrace.local.sagemaker.tuning_search import Search, grid_size, ranges_of, search_for
from headrace.local.sagemaker.tuning_trials import (
    ENDED,
    TrialRun,
    best,
    counters,
    objective_of,
    summary,
    trial_request,
)

log = logging.getLogger("headrace.local")


class TuningRecords(Protocol):
    """SageMaker's records by (account, name); account None: whichever account holds the name."""

    def tuning_job(self, name: str, account: str | None = None) -> Any:
        """The tuning job's record (KeyError if there is none)."""
        ...

    def training_job(self, name: str, account: str | None = None) -> Any:
        """A training job's record (KeyError if there is none)."""
        ...


class TrialJobs(Protocol):
    """SageMaker's training API as the tuning service calls it, in the tuning job's account."""

    def create(self, account: str, request: dict[str, Any]) -> None:
        """CreateTrainingJob (raises with SageMaker's message when it is refused)."""
        ...

    def stop(self, account: str, name: str) -> None:
        """StopTrainingJob."""
        ...


class ApiTrialJobs:
    """Trials started and stopped through the plane's own SageMaker API, as SageMaker's tuning service starts
    them: the same request checks and the same training compute as any CreateTrainingJob. Each in the tuning
    job's own account (`by_account`: the plane's clients of each account it serves), as on AWS, where
    automatic model tuning "runs many training jobs on your dataset" in the account that created the tuning
    job (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning.html), each one's
    DescribeTrainingJob naming its TuningJobArn."""

    def __init__(self, by_account: Mapping[str, Clients]) -> None:
        self._sagemaker = {account: clients.client("sagemaker") for account, clients in by_account.items()}

    def _client(self, account: str) -> Any:
        if account not in self._sagemaker:
            raise KeyError(f"the local plane serves no account {account}")
        return self._sagemaker[account]

    def create(self, account: str, request: dict[str, Any]) -> None:
        self._client(account).create_training_job(**request)

    def stop(self, account: str, name: str) -> None:
        self._client(account).stop_training_job(TrainingJobName=name)


@dataclass
class _Running:
    name: str
    account: str  # the tuning job's, where its trials run
    search: Search
    objective: dict[str, str]
    trials: dict[str, tuple[TrialRun, optuna.Trial]] = field(default_factory=dict)
    stop_requested: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class TuningCompute:
    def __init__(self, records: TuningRecords, jobs: TrialJobs, poll_s: float = 0.2) -> None:
        self._records = records
        self._jobs = jobs
        self._poll_s = poll_s
        # By (account, name): stages in different accounts may name their tuning jobs alike (records.py);
        # trials by name (SageMaker's random suffix: `<tuning job>-<NNN>-<8 hex>`).
        self._running: dict[tuple[str, str], _Running] = {}
        self._by_trial: dict[str, _Running] = {}
        self._lock = threading.Lock()

    def start(self, name: str, account: str | None = None) -> None:
        record = self._records.tuning_job(name, account)
        now = datetime.now(UTC)
        config = record.hyper_parameter_tuning_job_config
        record.hyper_parameter_tuning_job_status = "InProgress"
        record.creation_time = record.last_modified_time = now
        record.hyper_parameter_tuning_end_time = None
        record.best_training_job = record.OverallBestTrainingJob = None
        record.failure_reason = None
        record.tuning_job_completion_details = None
        record.consumed_resources = {"RuntimeInSeconds": 0}
        record.trial_summaries = []
        record.training_job_status_counters, record.objective_status_counters = counters([])
        objective = dict(config.get("HyperParameterTuningJobObjective") or {})
        search = search_for(config, self._max_jobs(config))
        # The account its ARN names (arn:aws:sagemaker:region:account:hyper-parameter-tuning-job/name).
        running = _Running(name, str(record.arn).split(":")[4], search, objective)
        with self._lock:
            self._running[running.account, name] = running
        threading.Thread(target=self._run, args=(running,), name=f"tuning-{name}", daemon=True).start()

    def stop(self, name: str, account: str | None = None) -> None:
        """StopHyperParameterTuningJob: Stopping, every running trial stopped, then Stopped."""
        running = self._job(name, account)
        if running is None or running.done.is_set():
            return
        running.stop_requested = True
        self._records.tuning_job(name, running.account).hyper_parameter_tuning_job_status = "Stopping"

    def wait(self, name: str, timeout_s: float, account: str | None = None) -> bool:
        running = self._job(name, account)
        return running.done.wait(timeout_s) if running else True

    def _job(self, name: str, account: str | None) -> _Running | None:
        """The tuning job of that name in `account`; None: the first of that name, whatever its account."""
        with self._lock:
            if account is not None:
                return self._running.get((account, name))
            return next((r for (_, n), r in self._running.items() if n == name), None)

    def observe(self, training_job: str, metric: str, value: float) -> None:
        """A metric line of a running training job (TrainingCompute.on_metric): a trial's objective value
        for the epoch goes to the search, whose pruner decides whether the trial goes on."""
        with self._lock:
            running = self._by_trial.get(training_job)
        if running is None or metric != running.objective.get("MetricName"):
            return
        trial, study_trial = running.trials[training_job]
        study_trial.report(value, trial.steps)
        trial.steps += 1
        if not trial.prune and study_trial.should_prune():
            trial.prune = True  # stopped by the tuning job's loop, not from the training job's log thread

    @staticmethod
    def _max_jobs(config: dict[str, Any]) -> int:
        limits = config.get("ResourceLimits") or {}
        if limits.get("MaxNumberOfTrainingJobs"):
            return int(limits["MaxNumberOfTrainingJobs"])
        # Grid search without MaxNumberOfTrainingJobs: "automatically calculated to be the total number of
        # distinct categorical combinations possible" (automatic-model-tuning-how-it-works.html); the other
        # strategies: the request checks (sagemaker_rules.py) ask for the limit.
        return int(grid_size(ranges_of(config.get("ParameterRanges") or {})))

    def _run(self, running: _Running) -> None:
        record = self._records.tuning_job(running.name, running.account)
        started = time.monotonic()
        try:
            self._execute(record, running)
        except Exception as exc:
            log.exception("tuning job %s failed in the local plane", running.name)
            record.failure_reason = f"InternalError: {exc}"
            record.hyper_parameter_tuning_job_status = "Failed"
        finally:
            now = datetime.now(UTC)
            record.hyper_parameter_tuning_end_time = record.last_modified_time = now
            record.consumed_resources = {"RuntimeInSeconds": int(time.monotonic() - started)}
            running.done.set()

    def _execute(self, record: Any, running: _Running) -> None:
        config = record.hyper_parameter_tuning_job_config
        definition = record.training_job_definition
        if not definition:
            # TrainingJobDefinitions (several algorithms in one job) is a SageMaker feature this plane lacks.
            raise RuntimeError("the local plane runs tuning jobs with one TrainingJobDefinition")
        self._warm_start(record, running)
        max_jobs = self._max_jobs(config)
        parallel = int(config["ResourceLimits"]["MaxParallelTrainingJobs"])
        launched = 0
        while True:
            self._refresh(record, running)
            active = [n for n, (t, _) in running.trials.items() if not self._ended(running.account, n, t)]
            if running.stop_requested:
                for name in active:
                    self._stop_trial(running.account, name)
            else:
                while len(active) < parallel and launched < max_jobs:
                    launched += 1
                    active.append(self._launch(record, running, definition, launched))
            if not active and (running.stop_requested or launched >= max_jobs):
                break
            time.sleep(self._poll_s)
        self._refresh(record, running)
        self._finish(record, running)

    def _warm_start(self, record: Any, running: _Running) -> None:
        """WarmStartConfig: the parents' finished trials join the study before the first trial is chosen."""
        for parent in (record.warm_start_config or {}).get("ParentHyperParameterTuningJobs") or []:
            try:
                parent_record = self._records.tuning_job(
                    parent["HyperParameterTuningJobName"], running.account
                )
            except KeyError:
                continue  # the request checks name a parent that does not exist
            for found in getattr(parent_record, "trial_summaries", None) or []:
                metric = found.get("FinalHyperParameterTuningJobObjectiveMetric")
                if metric is not None:
                    running.search.add_finished(found["TunedHyperParameters"], float(metric["Value"]))

    def _launch(self, record: Any, running: _Running, definition: dict[str, Any], number: int) -> str:
        study_trial = running.search.study.ask()
        tuned = running.search.suggest(study_trial)
        # Trials are named as SageMaker names them: <tuning job>-<NNN>-<8 hex>.
        name = f"{running.name}-{number:03d}-{uuid.uuid4().hex[:8]}"
        trial = TrialRun(name, tuned)
        with self._lock:
            running.trials[name] = (trial, study_trial)
            self._by_trial[name] = running
        try:
            request = trial_request(definition, name, tuned, running.objective["MetricName"])
            self._jobs.create(running.account, request)
            self._records.training_job(
                name, running.account
            ).tuning_job_arn = record.arn  # DescribeTrainingJob's TuningJobArn
        except Exception as exc:
            trial.creation_failure = str(exc)
        return name

    def _stop_trial(self, account: str, name: str) -> None:
        try:
            job = self._records.training_job(name, account)
        except KeyError:
            return
        if job.training_job_status == "InProgress":
            self._jobs.stop(account, name)

    def _ended(self, account: str, name: str, trial: TrialRun) -> bool:
        if trial.creation_failure is not None:
            return True
        return str(self._records.training_job(name, account).training_job_status) in ENDED

    def _refresh(self, record: Any, running: _Running) -> None:
        """Tell the search about trials that ended, stop pruned ones, and update the record's counters,
        summaries and best training job."""
        summaries = []
        for name, (trial, study_trial) in list(running.trials.items()):
            failed = trial.creation_failure is not None
            job = None if failed else self._records.training_job(name, running.account)
            pruned = trial.prune and not trial.early_stopped
            if job is not None and pruned and job.training_job_status == "InProgress":
                trial.early_stopped = True
                self._jobs.stop(running.account, name)
            if not trial.told and self._ended(running.account, name, trial):
                self._tell(running, trial, study_trial, job)
            summaries.append(summary(trial, job, running.name, running.objective))
        record.trial_summaries = summaries
        record.training_job_status_counters, record.objective_status_counters = counters(summaries)
        record.best_training_job = best(summaries, running.objective.get("Type") == "Maximize")
        record.last_modified_time = datetime.now(UTC)

    def _tell(self, running: _Running, trial: TrialRun, study_trial: optuna.Trial, job: Any | None) -> None:
        value = objective_of(job, running.objective["MetricName"]) if job is not None else None
        study = running.search.study
        if trial.early_stopped:
            study.tell(study_trial, state=TrialState.PRUNED)
        elif job is not None and job.training_job_status == "Completed" and value is not None:
            study.tell(study_trial, value)
        else:
            study.tell(study_trial, state=TrialState.FAIL)
        trial.told = True
        with self._lock:
            self._by_trial.pop(trial.name, None)

    @staticmethod
    def _finish(record: Any, running: _Running) -> None:
        if running.stop_requested:
            record.hyper_parameter_tuning_job_status = "Stopped"
        elif record.best_training_job is not None:
            record.hyper_parameter_tuning_job_status = "Completed"
        else:
            failed = record.training_job_status_counters
            record.failure_reason = (
                f"No training job completed with a {running.objective['MetricName']} objective value "
                f"({failed['NonRetryableError']} failed, {failed['Stopped']} stopped of "
                f"{len(record.trial_summaries)})"
            )
            record.hyper_parameter_tuning_job_status = "Failed"
