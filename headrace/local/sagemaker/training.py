"""SageMaker training jobs that really run: the image's `train` entry point (a subprocess, or the built image
under Docker) under SageMaker's container contract (containers.py), in a private `/opt/ml` tree.

moto keeps the job's record (created by CreateTrainingJob, "Completed" at once); this module takes the job
over: InProgress while the process runs, then Completed with the model uploaded to S3, or Failed with the
container's own `/opt/ml/output/failure` as FailureReason, or Stopped (StopTrainingJob, MaxRuntimeInSeconds).
The container log goes to CloudWatch Logs under `/aws/sagemaker/TrainingJobs`, as SageMaker writes it.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from headrace.local.aws import Clients
from headrace.local.sagemaker.containers import (
    Container,
    ContainerLauncher,
    ImageRegistry,
    LogStream,
    SubprocessLauncher,
    split_s3,
)
from headrace.local.sagemaker.records import SageMakerRecords

log = logging.getLogger("headrace.local")

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# SageMaker's FailureReason is at most 1024 characters.
FAILURE_REASON_MAX = 1024


@dataclass
class RunningJob:
    name: str
    account: str | None = None  # where its record is (None: whichever account holds the name)
    process: Container | None = None
    stop_reason: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


class TrainingCompute:
    def __init__(
        self,
        clients: Clients,
        images: ImageRegistry,
        work_dir: Path,
        records: SageMakerRecords,
        launcher: ContainerLauncher | None = None,
    ) -> None:
        self._aws = clients
        self._images = images
        self._launcher = launcher or SubprocessLauncher()
        self._work_dir = work_dir
        self._records = records
        # Clients signed as an execution role (seams/iam.py) when the plane enforces IAM: SageMaker reads
        # channels, writes the model and logs as the job's role.
        self.role_clients: Callable[[str], Clients] | None = None
        # Called with (job, metric, value) for each metric line while the job runs: a tuning job's trials
        # report their objective per epoch (tuning.py).
        self.on_metric: Callable[[str, str, float], None] | None = None
        # By (account, name): stages in different accounts may name their jobs alike (records.py).
        self._jobs: dict[tuple[str | None, str], RunningJob] = {}
        self._lock = threading.Lock()

    def start(self, name: str, metric_definitions: list[dict[str, str]], account: str | None = None) -> None:
        job = self._records.training_job(name, account)
        now = datetime.now(UTC)
        job.training_job_status, job.secondary_status = "InProgress", "Starting"
        job.training_start_time, job.training_end_time, job.last_modified_time = now, None, now
        job.final_metric_data_list = []
        job.secondary_status_transitions = [
            {"Status": "Starting", "StartTime": now, "StatusMessage": "Preparing the local training process"}
        ]
        # moto overwrites the caller's metric definitions with a canned one; put the caller's back.
        job.algorithm_specification["MetricDefinitions"] = metric_definitions
        running = RunningJob(name, account)
        with self._lock:
            self._jobs[account, name] = running
        threading.Thread(target=self._run, args=(running,), name=f"training-{name}", daemon=True).start()

    def stop(self, name: str, reason: str = "Stopped by StopTrainingJob", account: str | None = None) -> None:
        running = self._running(name, account)
        if running is None or running.done.is_set():
            return
        running.stop_reason = reason
        self._records.training_job(name, running.account).training_job_status = "Stopping"
        if running.process:
            running.process.terminate()

    def wait(self, name: str, timeout_s: float, account: str | None = None) -> bool:
        running = self._running(name, account)
        return running.done.wait(timeout_s) if running else True

    def _running(self, name: str, account: str | None) -> RunningJob | None:
        """The job of that name in `account`; None: the first of that name, whatever its account."""
        with self._lock:
            if account is not None:
                return self._jobs.get((account, name))
            return next((r for (_, n), r in self._jobs.items() if n == name), None)

    def _root(self, running: RunningJob) -> Path:
        """The job's private /opt/ml tree: apart per account, where two may run jobs of one name."""
        parent = self._work_dir / "training"
        return (parent / running.account if running.account else parent) / running.name

    def _run(self, running: RunningJob) -> None:
        job = self._records.training_job(running.name, running.account)
        try:
            self._execute(job, running)
        except Exception as exc:
            log.exception("training job %s failed in the local plane", running.name)
            self._finish(job, "Failed", f"ClientError: {exc}"[:FAILURE_REASON_MAX])
        finally:
            # The job's copy of its input data (often a team's raw data) does not outlive the job.
            shutil.rmtree(self._root(running) / "input" / "data", ignore_errors=True)
            running.done.set()

    def _execute(self, job: Any, running: RunningJob) -> None:
        root = self._root(running)
        self._prepare(job, root)
        directory = self._images.resolve(job.algorithm_specification["TrainingImage"])
        self._transition(job, "Training", "Training the model in a local process")
        stream = f"{job.training_job_name}/algo-1-{int(time.time())}"
        logs = LogStream(self._as_role(job), LOG_GROUP, stream)
        definitions = [
            (d["Name"], re.compile(d["Regex"]))
            for d in job.algorithm_specification.get("MetricDefinitions", [])
        ]
        metrics: dict[str, float] = {}
        limit = float(job.stopping_condition.get("MaxRuntimeInSeconds", 86_400))
        timer = threading.Timer(
            limit, self.stop, args=(job.training_job_name, "MaxRuntimeExceeded", running.account)
        )
        process = self._launcher.start(
            directory,
            "train",
            root,
            {"TRAINING_JOB_NAME": job.training_job_name},
            network_isolation=bool(job.enable_network_isolation),
        )
        running.process = process
        if running.stop_reason:  # a stop that came while the process was starting
            process.terminate()
        timer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                logs.write(line.rstrip("\n"))
                for metric, pattern in definitions:
                    if match := pattern.search(line):
                        metrics[metric] = float(match.group(1))
                        if self.on_metric:
                            self.on_metric(job.training_job_name, metric, metrics[metric])
            code = process.wait()
        finally:
            timer.cancel()
            logs.flush()
        job.final_metric_data_list = [
            {"MetricName": k, "Value": v, "Timestamp": datetime.now(UTC)} for k, v in metrics.items()
        ]
        self._upload_checkpoints(job, root)
        if running.stop_reason:
            self._finish(job, "Stopped", running.stop_reason, secondary=_stopped_status(running.stop_reason))
        elif code != 0:
            failure = root / "output" / "failure"
            reason = failure.read_text(errors="replace").strip() if failure.exists() else ""
            self._finish(job, "Failed", (reason or f"AlgorithmError: the train process exited with {code}"))
        else:
            self._transition(job, "Uploading", "Uploading the generated training model")
            self._upload_model(job, root)
            self._finish(job, "Completed", None)

    def _as_role(self, job: Any) -> Clients:
        return self.role_clients(job.role_arn) if self.role_clients else self._aws

    def _prepare(self, job: Any, root: Path) -> None:
        self._transition(job, "Downloading", "Downloading input data")
        config = root / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (root / "model").mkdir(exist_ok=True)
        (root / "output" / "data").mkdir(parents=True, exist_ok=True)
        (config / "hyperparameters.json").write_text(json.dumps(job.hyper_parameters or {}))
        (config / "resourceconfig.json").write_text(
            json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "lo"})
        )
        channels = {c["ChannelName"]: c for c in job.input_data_config or []}
        (config / "inputdataconfig.json").write_text(
            json.dumps({n: {"ContentType": c.get("ContentType", "")} for n, c in channels.items()})
        )
        for name, channel in channels.items():
            source = channel["DataSource"]["S3DataSource"]["S3Uri"]
            self._download_prefix(self._as_role(job), source, root / "input" / "data" / name)
        checkpoint_uri = (job.checkpoint_config or {}).get("S3Uri")
        if checkpoint_uri:
            self._download_prefix(self._as_role(job), checkpoint_uri, root / "checkpoints")

    def _download_prefix(self, aws: Clients, uri: str, target: Path) -> None:
        bucket, prefix = split_s3(uri)
        target.mkdir(parents=True, exist_ok=True)
        pages = aws.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :].lstrip("/") or Path(item["Key"]).name
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                # GetObject, not download_file: that starts with HeadObject, whose 403 has no body, and a
                # denial would reach the job's FailureReason without the action and resource it names.
                body = aws.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"]
                with destination.open("wb") as out:
                    shutil.copyfileobj(body, out)

    def _upload_model(self, job: Any, root: Path) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for path in sorted((root / "model").rglob("*")):
                archive.add(path, arcname=path.relative_to(root / "model").as_posix(), recursive=False)
        bucket, key = split_s3(job.model_artifacts["S3ModelArtifacts"])
        self._as_role(job).s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())

    def _upload_checkpoints(self, job: Any, root: Path) -> None:
        checkpoint_uri = (job.checkpoint_config or {}).get("S3Uri")
        if not checkpoint_uri:
            return
        bucket, prefix = split_s3(checkpoint_uri)
        aws = self._as_role(job)
        for path in sorted((root / "checkpoints").rglob("*")):
            if path.is_file():
                key = f"{prefix.rstrip('/')}/{path.relative_to(root / 'checkpoints').as_posix()}"
                aws.s3.upload_file(str(path), bucket, key)

    def _transition(self, job: Any, status: str, message: str) -> None:
        now = datetime.now(UTC)
        if job.secondary_status_transitions:
            job.secondary_status_transitions[-1].setdefault("EndTime", now)
        job.secondary_status_transitions.append(
            {"Status": status, "StartTime": now, "StatusMessage": message}
        )
        job.secondary_status, job.last_modified_time = status, now

    def _finish(self, job: Any, status: str, reason: str | None, secondary: str | None = None) -> None:
        self._transition(job, secondary or status, reason or "Training job completed")
        now = datetime.now(UTC)
        job.training_end_time = job.last_modified_time = now
        if reason:
            job.failure_reason = reason[:FAILURE_REASON_MAX]
        job.training_job_status = status


def _stopped_status(reason: str) -> str:
    return "MaxRuntimeExceeded" if reason == "MaxRuntimeExceeded" else "Stopped"
