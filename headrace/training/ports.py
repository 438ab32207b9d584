"""What the training steps need from the outside world: the shared ports (headrace.ports) and training's
own, as Protocols, bundled in `TrainingPorts`. `aws.py` implements them with boto3 and Powertools and
`connect` builds the bundle; unit tests pass in-memory fakes. The steps receive it as an argument."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from headrace.ledger import RunLedger
from headrace.ports import Clock, EventPublisher, MetricSink, ObjectStore
from headrace.training.payloads import ApprovalStatus, ChampionInfo


@dataclass(frozen=True)
class PackageVersion:
    arn: str
    group: str
    version: int
    approval_status: ApprovalStatus


class Registry(Protocol):
    def champion(self, group: str) -> ChampionInfo | None:
        """The newest Approved version of `group`, None when there is none (or no group yet)."""
        ...

    def ensure_group(self, group: str, description: str, tags: Mapping[str, str]) -> None: ...

    def find_version(self, group: str, training_job: str, created_after: datetime) -> str | None:
        """The ARN of the version of `group` registered for `training_job` since `created_after`, if any."""
        ...

    def create_version(self, request: Mapping[str, Any]) -> str:
        """CreateModelPackage with `request` as its parameters; returns the new version's ARN."""
        ...

    def describe_version(self, arn: str) -> PackageVersion: ...


class TuningJobs(Protocol):
    """SageMaker's tuning job calls that Prepare and TuningResult make (boto3's responses, as dicts)."""

    def describe(self, name: str) -> Mapping[str, Any]:
        """DescribeHyperParameterTuningJob."""
        ...

    def training_jobs(self, name: str) -> Iterable[Mapping[str, Any]]:
        """Every TrainingJobSummary of ListTrainingJobsForHyperParameterTuningJob, all pages."""
        ...

    def describe_training_job(self, name: str) -> Mapping[str, Any]: ...

    def newest_completed(self, name_contains: str) -> list[str]:
        """Names of the Completed tuning jobs whose name contains `name_contains`, newest first."""
        ...


@dataclass(frozen=True)
class TrainingPorts:
    """Everything a training step touches: the run's files, its ledger item, the model's registry group,
    the bus, the function's counters and the clock."""

    store: ObjectStore
    ledger: RunLedger
    registry: Registry
    events: EventPublisher
    metrics: MetricSink
    clock: Clock
    # Only the steps of tuned models call it (Prepare, TuningResult); None where nothing was connected.
    tuning: TuningJobs | None = None

    def tuning_jobs(self) -> TuningJobs:
        if self.tuning is None:
            raise RuntimeError("these training ports were built without SageMaker's tuning job calls")
        return self.tuning
