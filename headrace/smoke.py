"""`headrace smoke`: does a deployed stage work, end to end, for one model? The check CI runs after a deploy.

The steps, each timed, each judged on the end state it can read back (never on a status alone):
  1. drop: the model's sample rows (headrace.datagen, a fresh seed: a new content hash, so a new dataset
     version and a new run) put under the model's incoming prefix, as a user drops a file;
  2. validated: ingest recorded the dataset version (or quarantined the file: the smoke fails with the
     reasons in words);
  3. registered: the training run the version started ended registered (a gate rejection or a failure
     fails the smoke with the ledger's reason); its version and approval status;
  4. deployed: when the stage's approval policy approved the version, the endpoint serves it (a rollback or a
     failed deployment fails the smoke); when it waits for a person, skipped, saying so: the smoke never
     approves, the stage's own policy decides;
  5. answers: the endpoint answers predictions for the sample rows, and which version answered (skipped
     when no version of the model was ever deployed in the stage).

It reads the ledger (headrace.ledger), S3 and SageMaker through the clients it is given, so the same code
runs against the local plane and a deployed stage (the CLI, headrace/cli/smoke.py, gives it either).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from botocore.exceptions import ClientError
from pydantic import BaseModel

from headrace.config import ModelConfig
from headrace.datagen import generate
from headrace.deployment import ModelInfo
from headrace.ingest.attempts import last_job_name
from headrace.ledger import DatasetItem, DeploymentItem, RejectionItem, RunItem
from headrace.ledger.item import LedgerItem
from headrace.ledger.runs import RunStatus
from headrace.serving.client import EndpointClient, ServingError
from headrace.serving.endpoints import describe_endpoint
from headrace.serving.rollout import version_of
from headrace.status import readable_reasons
from headrace.waiting import WaitTimeout, wait_for

StepStatus = Literal["passed", "failed", "skipped"]
# Rows sent to the endpoint: enough to see it score a batch, small enough for any payload limit.
PROBE_ROWS = 20
# The registry status under which the deploy workflow rolls a version out (SageMaker ModelApprovalStatus).
APPROVED = "Approved"
# A deployment in one of these is over without serving (headrace.serving.payloads.DeploymentStatus).
NOT_SERVED = frozenset({"failed", "rolled_back", "skipped"})


class SmokeLedger(Protocol):
    """What the smoke reads of the ledger: DynamoLedger (and MemoryLedger in tests) implement it."""

    def dataset(self, model: str, sha256: str) -> DatasetItem | None: ...

    def run(self, model: str, job_name: str) -> RunItem | None: ...

    def deployments(self, model: str) -> list[DeploymentItem]: ...

    def partition(self, model: str) -> list[LedgerItem]: ...


class SmokeStep(BaseModel):
    name: str
    status: StepStatus
    detail: str
    seconds: float


class SmokeReport(BaseModel):
    stage: str
    model: str
    seed: int
    rows: int
    steps: list[SmokeStep] = []

    @property
    def passed(self) -> bool:
        """Every step passed or did not apply: a smoke that failed nowhere."""
        return bool(self.steps) and all(s.status != "failed" for s in self.steps)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


class StepFailed(RuntimeError):
    """What a step saw instead of what it checks for, in words."""


class StepSkipped(Exception):
    """The step does not apply to this stage (its detail says why)."""


@dataclass(frozen=True)
class SmokeClients:
    s3: Any
    sagemaker: Any
    runtime: Any  # sagemaker-runtime


@dataclass
class _Seen:
    """What the steps learned so far, for the ones after them."""

    key: str = ""
    sha256: str = ""
    version: int | None = None
    approval_status: str | None = None


class Smoke:
    """One smoke of one model in one stage; `run` returns the report, every step in it, passed or not."""

    def __init__(
        self,
        stage: str,
        config: ModelConfig,
        info: ModelInfo,
        ledger: SmokeLedger,
        clients: SmokeClients,
        *,
        rows: int,
        seed: int,
        timeout_s: float,
        poll_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        on_step: Callable[[SmokeStep], None] = lambda step: None,
    ) -> None:
        if rows < 1:
            raise ValueError(f"rows must be at least 1, got {rows}")
        self.stage, self.config, self.info, self.ledger, self.clients = stage, config, info, ledger, clients
        self.rows, self.seed, self.poll_s, self.clock, self.on_step = rows, seed, poll_s, clock, on_step
        self._deadline = clock() + timeout_s
        self._seen = _Seen()

    def run(self) -> SmokeReport:
        report = SmokeReport(stage=self.stage, model=self.config.name, seed=self.seed, rows=self.rows)
        steps: list[tuple[str, Callable[[], str]]] = [
            ("drop sample data", self.drop),
            ("validated: dataset version", self.validated),
            ("training run registered", self.registered),
            ("deployed", self.deployed),
            ("endpoint answers", self.answers),
        ]
        failed = False
        for name, step in steps:
            started = self.clock()
            if failed:
                status, detail = "skipped", "an earlier step failed"
            else:
                status, detail = self._outcome(step)
                failed = status == "failed"
            done = SmokeStep(name=name, status=status, detail=detail, seconds=self.clock() - started)
            report.steps.append(done)
            self.on_step(done)
        return report

    @staticmethod
    def _outcome(step: Callable[[], str]) -> tuple[StepStatus, str]:
        try:
            return "passed", step()
        except StepSkipped as exc:
            return "skipped", str(exc)
        except (StepFailed, WaitTimeout, ServingError) as exc:
            return "failed", str(exc)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            return "failed", f"{error.get('Code', 'error')}: {error.get('Message', exc)}"

    def _wait(self, check: Callable[[], Any], what: str) -> Any:
        """Until `check` returns something truthy, within what is left of the smoke's timeout."""
        left = max(0.0, self._deadline - self.clock())
        return wait_for(check, what, timeout_s=left, interval_s=self.poll_s)

    # --- the steps ----------------------------------------------------------------------------------------

    def drop(self) -> str:
        body = generate(self.config, self.rows, seed=self.seed).to_csv(index=False).encode()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        key = f"{self.info.incoming_prefix}smoke-{stamp}-{self.seed}.csv"
        self.clients.s3.put_object(Bucket=self.info.data_bucket, Key=key, Body=body)
        self._seen.key, self._seen.sha256 = key, hashlib.sha256(body).hexdigest()
        return f"s3://{self.info.data_bucket}/{key} ({self.rows:,} rows, sha256 {self._seen.sha256[:12]})"

    def validated(self) -> str:
        model, sha256 = self.config.name, self._seen.sha256

        def outcome() -> DatasetItem | RejectionItem | None:
            dataset = self.ledger.dataset(model, sha256)
            if dataset is not None:
                return dataset
            rejected = [
                i
                for i in self.ledger.partition(model)
                if isinstance(i, RejectionItem) and i.key == self._seen.key
            ]
            return rejected[-1] if rejected else None

        found = self._wait(outcome, f"ingest to record {self._seen.key}")
        if isinstance(found, RejectionItem):
            reasons = readable_reasons(self.clients.s3, found.bucket, found.reason_key) or found.rules
            raise StepFailed(f"quarantined as {found.quarantine_key}: {'; '.join(reasons)}")
        if not found.execution_arn:
            raise StepFailed(
                f"dataset {sha256[:12]} was accepted ({found.status}) but started no training run"
            )
        return f"dataset {sha256[:12]}: {found.rows:,} rows; run {found.execution_arn.rsplit(':', 1)[-1]}"

    def registered(self) -> str:
        model = self.config.name

        def ended() -> RunItem | None:
            dataset = self.ledger.dataset(model, self._seen.sha256)
            job = last_job_name(dataset) if dataset is not None else None
            run = self.ledger.run(model, job) if job else None
            finished = (RunStatus.REGISTERED, RunStatus.REJECTED, RunStatus.FAILED)
            return run if run is not None and run.status in finished else None

        run: RunItem = self._wait(ended, f"the training run of dataset {self._seen.sha256[:12]} to end")
        if run.status == RunStatus.REJECTED:
            raise StepFailed(
                f"{run.job_name} rejected by the gate: {'; '.join(run.reasons or []) or 'no reason'}"
            )
        if run.status == RunStatus.FAILED:
            why = (run.cause or run.error or "no cause recorded").splitlines()[0]
            raise StepFailed(f"{run.job_name} failed in {run.failed_step or 'an unknown step'}: {why}")
        if run.version is None:
            raise StepFailed(f"{run.job_name} is registered but the ledger has no registry version for it")
        self._seen.version, self._seen.approval_status = run.version, run.approval_status
        return f"v{run.version} {run.approval_status} ({run.job_name})"

    def deployed(self) -> str:
        version = self._seen.version
        if self._seen.approval_status != APPROVED:
            raise StepSkipped(
                f"registered v{version}, {self._seen.approval_status}: not deployed (stage policy manual; "
                f"`headrace approve {self.config.name} {version} --stage {self.stage}` rolls it out)"
            )
        model = self.config.name

        def ended() -> DeploymentItem | None:
            mine = [d for d in self.ledger.deployments(model) if d.version == version]
            if mine and mine[0].status in NOT_SERVED:
                return mine[0]
            if mine and mine[0].status == "serving" and self._serving() == version:
                return mine[0]
            return None

        deployment: DeploymentItem = self._wait(ended, f"v{version} to serve on {self.info.endpoint_name}")
        if deployment.status != "serving":
            raise StepFailed(f"the deployment of v{version} ended {deployment.summary}")
        return f"{self.info.endpoint_name} InService on v{version}"

    def answers(self) -> str:
        served = self._serving()
        if served is None:
            raise StepSkipped(
                f"{self.info.endpoint_name} is not in service: no version of {self.config.name} "
                f"is deployed in {self.stage} yet"
            )
        if self._seen.approval_status == APPROVED and served != self._seen.version:
            raise StepFailed(f"{self.info.endpoint_name} serves v{served}, not the new v{self._seen.version}")
        frame = generate(self.config, PROBE_ROWS, seed=self.seed + 1)
        features = frame.drop(columns=[self.config.data.target])
        rows = [{str(k): v for k, v in row.items()} for row in features.to_dict("records")]
        client = EndpointClient(self.info.endpoint_name, runtime=self.clients.runtime)
        predictions = client.predict(rows)
        if len(predictions) != len(rows):
            raise StepFailed(f"{len(rows)} rows sent, {len(predictions)} predictions answered")
        values = [v for p in predictions for v in (p if isinstance(p, list) else [p])]
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            raise StepFailed(f"the endpoint answered values that are not finite numbers: {predictions[:3]}")
        return f"v{served} answered {len(predictions)} predictions (first {_first(predictions)})"

    def _serving(self) -> int | None:
        """The version the endpoint serves while InService; None without an endpoint or while not."""
        # InService: "available to process incoming requests"; Creating/Updating/RollingBack are not settled
        # (https://docs.aws.amazon.com/sagemaker/latest/dg/API_DescribeEndpoint.html, EndpointStatus).
        described = describe_endpoint(self.clients.sagemaker, self.info.endpoint_name)
        if described is None:
            return None
        if described.get("EndpointStatus") != "InService":
            return None
        return version_of(str(described.get("EndpointConfigName", "")))


def _first(predictions: list[Any]) -> str:
    first = predictions[0]
    return f"{first:.3f}" if isinstance(first, float) else str(first)
