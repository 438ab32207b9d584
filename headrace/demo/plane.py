"""The demo's window on its local plane: what it puts there and what it reads back, through boto3 and the
plane's control port as a user or AWS would, for one model. The story judges; this only fetches."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headrace.cli.checks import start_check
from headrace.config import ModelConfig
from headrace.deployment import DeploymentInfo, ModelInfo, describe
from headrace.drift import DriftResult
from headrace.ingest.routing import GROUND_TRUTH, INCOMING
from headrace.ledger import (
    BatchItem,
    DatasetItem,
    DeploymentItem,
    DynamoLedger,
    LabelFileItem,
    RejectionItem,
    RetrainDecision,
    RunItem,
)
from headrace.ledger.batches import FINISHED_BATCH
from headrace.local.aws import Clients
from headrace.local.control import start_detached, stop_detached
from headrace.local.control_server import TickRequest, request_tick
from headrace.local.plane_info import PlaneInfo
from headrace.monitoring.payloads import CheckOutcome
from headrace.monitoring.retrain import EPOCH
from headrace.naming import Names, execution_name
from headrace.quality.check import QualityResult
from headrace.quality.payloads import QualityOutcome
from headrace.serving.client import EndpointClient
from headrace.serving.endpoints import list_deployments
from headrace.serving.rollout import capture_prefix
from headrace.training.payloads import Registered, RunInfo
from headrace.waiting import wait_for

# Step Functions' DescribeExecution is cheap locally; a third of a second follows a run closely.
POLL_S = 0.3


def broken_artifact(model_tar_gz: bytes) -> bytes:
    """A copy of a good model.tar.gz whose features.json asks the serving container to answer 5xx
    (containers/serve/CONTRACT.md, the fault hook): a version that passes every check but serving."""
    with tarfile.open(fileobj=io.BytesIO(model_tar_gz), mode="r:gz") as tar:
        files = {
            member.name.removeprefix("./"): extracted.read()
            for member in tar.getmembers()
            if member.isfile() and (extracted := tar.extractfile(member)) is not None
        }
    files["features.json"] = json.dumps(json.loads(files["features.json"]) | {"fault": "5xx"}).encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return archive.getvalue()


def _execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


@dataclass(frozen=True)
class DemoPlane:
    plane: PlaneInfo
    clients: Clients
    deployment: DeploymentInfo
    names: Names
    model: ModelConfig

    @classmethod
    def start(cls, work_dir: Path, models_dir: Path, model: ModelConfig) -> DemoPlane:
        """A fresh plane (one left running in `work_dir` by an earlier demo is stopped first)."""
        stop_detached(work_dir)
        plane = start_detached(work_dir=work_dir, models_dir=models_dir)
        clients, names = plane.clients(), Names(plane.stage)
        return cls(plane, clients, describe(clients.cloudformation, names, [model]), names, model)

    @property
    def info(self) -> ModelInfo:
        return self.deployment.model(self.model.name)

    def client(self, service: str) -> Any:
        return self.clients.client(service)

    @property
    def ledger(self) -> DynamoLedger:
        return DynamoLedger(self.client("dynamodb"), self.deployment.ledger_table)

    # --- data ---------------------------------------------------------------------------------------------

    def put(self, key: str, body: bytes) -> None:
        self.clients.s3.put_object(Bucket=self.info.data_bucket, Key=key, Body=body)

    @property
    def ground_truth_prefix(self) -> str:
        """Where people drop label files (headrace/ingest/routing.py)."""
        return f"{self.model.name}/{GROUND_TRUTH}/{INCOMING}/"

    def label_file(self, source_key: str) -> LabelFileItem | None:
        """The ledger's accepted label file dropped at `source_key`; None until ingest has accepted it."""
        return next((f for f in self.ledger.label_files(self.model.name) if f.source_key == source_key), None)

    def datasets(self) -> list[DatasetItem]:
        """Every accepted dataset version of the model (uploads and labelled production rows)."""
        return self.ledger.datasets_since(self.model.name, EPOCH)

    def dataset_rows(self, sha256: str) -> int | None:
        """The rows ingest recorded for a dataset version; None until it has."""
        item = self.ledger.dataset(self.model.name, sha256)
        return item.rows if item else None

    def quarantine_reason(self, key: str) -> dict[str, Any] | None:
        """The reason.json quarantine wrote for the file dropped at `key`; None until it has."""
        s3, bucket = self.clients.s3, self.info.data_bucket
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=self.info.quarantine_prefix)
        for item in listed.get("Contents", []):
            if item["Key"].endswith("reason.json"):
                doc = json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
                if doc["source"]["key"] == key:
                    return dict(doc)
        return None

    def batch_ended(self, key: str) -> BatchItem | RejectionItem | None:
        """The batch job of the file dropped at `key` once it has ended, or its rejection if ingest
        quarantined the file (as `headrace batch --wait` reads them); None meanwhile."""
        mine = [b for b in self.ledger.batches(self.model.name) if b.input_key == key]
        if mine and mine[0].status in FINISHED_BATCH:
            return mine[0]
        rejected = [
            r for r in self.ledger.partition(self.model.name) if isinstance(r, RejectionItem) and r.key == key
        ]
        return rejected[-1] if rejected else None

    def output_lines(self, uri: str) -> tuple[int, list[bytes]]:
        """A transform job's output under `uri` (s3://bucket/prefix/): how many objects, and their lines in
        key order (one object per input object, so the input's order)."""
        bucket, prefix = uri.removeprefix("s3://").split("/", 1)
        s3 = self.clients.s3
        keys = sorted(
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        )
        lines = [
            line
            for key in keys
            for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()
            if line.strip()
        ]
        return len(keys), lines

    # --- workflows ----------------------------------------------------------------------------------------

    def training_execution_arn(self, dataset_sha256: str) -> str:
        """The training run a dataset version starts (its name is derived from the content hash)."""
        name = execution_name(self.model.name, dataset_sha256)
        return _execution_arn(self.info.training_state_machine_arn, name)

    def training_executions(self) -> list[dict[str, Any]]:
        machine = self.info.training_state_machine_arn
        executions = self.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
        return sorted(executions, key=lambda e: e["startDate"])

    def execution_input(self, arn: str) -> str:
        return str(self.client("stepfunctions").describe_execution(executionArn=arn)["input"])

    def deploy_executions(self) -> list[dict[str, Any]]:
        """Oldest first."""
        arn = self.info.deploy_state_machine_arn
        if arn is None:
            raise RuntimeError("the pipeline stack has no deploy workflow")
        executions = self.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]
        return sorted(executions, key=lambda e: e["startDate"])

    def ended(self, arn: str, what: str, timeout_s: float) -> dict[str, Any]:
        """DescribeExecution's answer once the execution is no longer RUNNING."""
        sfn = self.client("stepfunctions")

        def ended() -> dict[str, Any] | None:
            described = sfn.describe_execution(executionArn=arn)
            return dict(described) if described["status"] != "RUNNING" else None

        return wait_for(ended, f"{what} to end", timeout_s=timeout_s, interval_s=POLL_S)

    def deployment_ended(
        self, count: int, timeout_s: float, on_poll: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """The `count`-th deploy execution, once it has ended; `on_poll` runs at every look."""
        sfn = self.client("stepfunctions")

        def ended() -> dict[str, Any] | None:
            if on_poll is not None:
                on_poll()
            executions = self.deploy_executions()
            if len(executions) < count:
                return None
            described = sfn.describe_execution(executionArn=executions[count - 1]["executionArn"])
            return dict(described) if described["status"] != "RUNNING" else None

        return wait_for(ended, f"deployment {count} to end", timeout_s=timeout_s, interval_s=POLL_S)

    # --- registry and endpoint ----------------------------------------------------------------------------

    def registered(self, training_arn: str) -> Registered:
        """What a finished training run registered, checked against the registry itself."""
        execution = self.client("stepfunctions").describe_execution(executionArn=training_arn)
        output = json.loads(execution.get("output") or "{}")
        if not output.get("registered"):
            raise RuntimeError("the training run ended without registering a version")
        registered = Registered.model_validate(output["registered"])
        package = self.client("sagemaker").describe_model_package(
            ModelPackageName=registered.model_package_arn
        )
        if package["ModelApprovalStatus"] != registered.approval_status:
            raise RuntimeError(
                f"the registry says {package['ModelApprovalStatus']}, "
                f"the run said {registered.approval_status}"
            )
        return registered

    def register_broken_copy(self, of_version: int) -> None:
        """Register, Approved, a copy of `of_version` whose container answers 5xx (broken_artifact)."""
        sagemaker, s3 = self.client("sagemaker"), self.clients.s3
        group = self.names.model_package_group(self.model.name)
        arn = f"arn:aws:sagemaker:{self.plane.region}:{self.plane.account}:model-package/{group}/{of_version}"
        container = sagemaker.describe_model_package(ModelPackageName=arn)["InferenceSpecification"][
            "Containers"
        ][0]
        bucket, key = str(container["ModelDataUrl"]).removeprefix("s3://").split("/", 1)
        broken_key = f"{self.model.name}/runs/demo-broken-copy-of-v{of_version}/output/model.tar.gz"
        good = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        s3.put_object(Bucket=bucket, Key=broken_key, Body=broken_artifact(good))
        sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelPackageDescription=f"headrace demo: v{of_version}'s artifact with fault 5xx (CONTRACT.md)",
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": container["Image"], "ModelDataUrl": f"s3://{bucket}/{broken_key}"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )

    def run_info(self, training_arn: str) -> tuple[RunInfo, RunItem]:
        """What a finished training run read (its `$.run`: datasets, the holdout) and the ledger's record of
        the same run, which must agree."""
        execution = self.client("stepfunctions").describe_execution(executionArn=training_arn)
        run = RunInfo.model_validate(json.loads(execution.get("output") or "{}")["run"])
        item = self.ledger.run(self.model.name, run.job_name)
        if item is None or item.datasets is None:
            raise RuntimeError(f"the ledger has no record of the datasets run {run.job_name} read")
        recorded = {d["sha256"] for d in json.loads(item.datasets)["datasets"]}
        if recorded != {d.sha256 for d in run.datasets}:
            raise RuntimeError(
                f"the ledger's run {run.job_name} lists datasets {sorted(recorded)}, "
                f"the execution {sorted(d.sha256 for d in run.datasets)}"
            )
        return run, item

    def endpoint(self) -> dict[str, Any]:
        return dict(self.client("sagemaker").describe_endpoint(EndpointName=self.info.endpoint_name))

    def endpoint_client(self) -> EndpointClient:
        return EndpointClient(self.info.endpoint_name, runtime=self.client("sagemaker-runtime"))

    def deployment_record(self, version: int) -> DeploymentItem | None:
        """The ledger's newest deployment of `version` (deploy.py writes it)."""
        records = list_deployments(self.client("dynamodb"), self.deployment.ledger_table, self.model.name)
        return next((d for d in records if d.version == version), None)

    # --- monitoring ---------------------------------------------------------------------------------------

    def capture_lines(self) -> list[bytes]:
        """Every record in the endpoint's capture files in S3 (one per InvokeEndpoint call), in key order."""
        s3, bucket = self.clients.s3, self.info.data_bucket
        prefix = f"{capture_prefix(self.model.name)}/{self.info.endpoint_name}/"
        keys = sorted(
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        )
        return [
            line
            for key in keys
            for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()
            if line.strip()
        ]

    def captured_calls(self) -> int:
        """Records in the endpoint's capture files in S3: one per InvokeEndpoint call."""
        return len(self.capture_lines())

    def drift_check(self, timeout_s: float) -> tuple[CheckOutcome, DriftResult]:
        """Fire the model's drift schedule now (as `headrace local tick --schedules --name` does) and return
        the check's outcome and result once its workflow has ended."""
        port = self.plane.control_port
        if port is None:
            raise RuntimeError("the local plane has no control port to fire the drift schedule with")
        schedule = self.names.drift_schedule(self.model.name)
        report = request_tick(
            port,
            TickRequest(schedules=True, alarms=False, names=[schedule]),
            self.plane.credentials.secret_access_key,
        )
        fired = next((s for s in report.schedules if s.name == schedule), None)
        if fired is None or fired.execution is None:
            raise RuntimeError(f"schedule {schedule} did not fire: {fired.error if fired else 'not found'}")
        machine = self.info.drift_state_machine_arn
        if machine is None:
            raise RuntimeError("the pipeline stack has no drift workflow")
        execution = self.ended(_execution_arn(machine, fired.execution), "the drift check", timeout_s)
        if execution["status"] != "SUCCEEDED":
            raise RuntimeError(f"the drift check ended {execution['status']}: {execution.get('cause')}")
        outcome = CheckOutcome.model_validate(json.loads(execution["output"])["check"])
        if outcome.result_uri is None:
            raise RuntimeError(f"the drift check found nothing to judge ({outcome.status})")
        bucket, key = outcome.result_uri.removeprefix("s3://").split("/", 1)
        body = self.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return outcome, DriftResult.model_validate_json(body)

    def quality_check(self, timeout_s: float) -> tuple[QualityOutcome, QualityResult]:
        """Start the model's quality check now, as `headrace quality` does, and return its outcome and the
        result document its Finish step wrote once the workflow has ended."""
        machine = self.info.quality_state_machine_arn
        if machine is None:
            raise RuntimeError("the pipeline stack has no quality workflow")
        sfn = self.client("stepfunctions")
        arn = start_check(sfn, machine, "the quality check")
        execution = self.ended(arn, "the quality check", timeout_s)
        if execution["status"] != "SUCCEEDED":
            raise RuntimeError(f"the quality check ended {execution['status']}: {execution.get('cause')}")
        outcome = QualityOutcome.model_validate(json.loads(execution["output"])["check"])
        if outcome.result_uri is None:
            raise RuntimeError(f"the quality check wrote no result ({outcome.status})")
        bucket, key = outcome.result_uri.removeprefix("s3://").split("/", 1)
        body = self.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return outcome, QualityResult.model_validate_json(body)

    def quality_recorded(self, check_id: str) -> bool:
        """Whether the ledger holds the quality check `check_id` (Finish records it)."""
        return any(c.check_id == check_id for c in self.ledger.quality_checks(self.model.name, 10))

    def alarm(self, name: str) -> dict[str, Any] | None:
        alarms = self.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
        return dict(alarms[0]) if alarms else None

    def retrain_decisions(self) -> list[RetrainDecision]:
        """The ledger's retraining decisions: one per alarm episode, started or skipped, oldest first."""
        items = self.ledger.partition(self.model.name)
        return [i for i in items if isinstance(i, RetrainDecision)]
