"""SageMaker transform jobs that really run: the Model's serve container (the same image and entry point as
an endpoint's) driven as SageMaker's batch transform drives it
(https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-batch-code.html): `serve` with
SAGEMAKER_BATCH and the job's settings in its environment, `GET /ping` until it answers, the optional
`GET /execution-parameters`, then mini-batches of whole records POSTed to `/invocations`, at most
MaxConcurrentTransforms in flight per instance (transform_records.py cuts and joins them).

moto keeps the job's record (created by CreateTransformJob, "Completed" at once); this module takes it over:
InProgress while it runs, then Completed, Failed with a FailureReason, or Stopped (StopTransformJob). The
input objects are shared among InstanceCount instances (one container process each), whole objects each.
An object's output is uploaded only once all of it was transformed, and none when the job is stopped
(TransformOutput.S3OutputPath: "Batch transform doesn't upload partially processed objects";
StopTransformJob: "SageMaker doesn't store the job's output in Amazon S3"). The container log goes to
CloudWatch Logs under `/aws/sagemaker/TransformJobs`, its EMF lines to metrics.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
import shutil
import tarfile
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from headrace.local.aws import Clients
from headrace.local.network import free_port
from headrace.local.sagemaker.containers import (
    Container,
    ContainerLauncher,
    ImageRegistry,
    LogStream,
    SubprocessLauncher,
    split_s3,
    stop_container,
)
from headrace.local.sagemaker.transform_instances import (
    LOG_GROUP,
    Instance,
    batch_environment,
    execution_parameters,
    invoke,
    wait_ready,
)
from headrace.local.sagemaker.transform_records import (
    Plan,
    TransformFailed,
    assembled_body,
    described,
    object_chunks,
    output_key,
    payload,
    plan_of,
    records,
    request_bodies,
)
from headrace.local.telemetry import emf_metric_data

log = logging.getLogger("headrace.local")

# SageMaker's FailureReason is at most 1024 characters (DescribeTransformJob's model).
FAILURE_REASON_MAX = 1024


class TransformRecords(Protocol):
    def transform_job(self, name: str, account: str | None = None) -> Any:
        """The transform job's record in `account` (None: whichever holds the name); KeyError if none."""
        ...

    def model_container(self, name: str) -> dict[str, Any]:
        """The model's primary container (Image, ModelDataUrl, Environment)."""
        ...


class Stopped(Exception):
    """The job was stopped while it ran."""


@dataclass
class RunningJob:
    name: str
    account: str | None = None  # where its record is (None: whichever account holds the name)
    instances: list[Instance] = field(default_factory=list)
    stop_reason: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


class TransformCompute:
    def __init__(
        self,
        clients: Clients,
        images: ImageRegistry,
        work_dir: Path,
        records: TransformRecords,
        launcher: ContainerLauncher | None = None,
    ) -> None:
        self._aws = clients
        self._images = images
        self._launcher = launcher or SubprocessLauncher()
        self._work_dir = work_dir
        self._records = records
        # Clients signed as the Model's execution role (seams/iam.py) when the plane enforces IAM: SageMaker
        # reads the model, the input and writes the output and logs as that role.
        self.model_clients: Callable[[str], Clients] | None = None
        # The clients of an account (a job's own, whose CloudWatch gets its metrics); None: clients.
        self.account_clients: Callable[[str], Clients] | None = None
        # By (account, name): a name is unique only within an account (CreateTransformJob's TransformJobName).
        self._jobs: dict[tuple[str | None, str], RunningJob] = {}
        self._lock = threading.Lock()

    def start(self, name: str, account: str | None = None) -> None:
        job = self._records.transform_job(name, account)
        now = datetime.now(UTC)
        job.transform_job_status, job.failure_reason = "InProgress", None
        job.transform_start_time, job.transform_end_time, job.last_modified_time = now, None, now
        running = RunningJob(name, account)
        with self._lock:
            self._jobs[account, name] = running
        threading.Thread(target=self._run, args=(running,), name=f"transform-{name}", daemon=True).start()

    def stop(self, name: str, account: str | None = None) -> None:
        running = self._job(name, account)
        if running is None or running.done.is_set():
            return
        running.stop_reason = "Stopped by StopTransformJob"
        job = self._records.transform_job(name, running.account)
        job.transform_job_status, job.last_modified_time = "Stopping", datetime.now(UTC)
        for instance in list(running.instances):
            stop_container(instance.process)

    def running(self, name: str, account: str | None = None) -> bool:
        running = self._job(name, account)
        return running is not None and not running.done.is_set()

    def wait(self, name: str, timeout_s: float, account: str | None = None) -> bool:
        running = self._job(name, account)
        return running.done.wait(timeout_s) if running else True

    def _job(self, name: str, account: str | None) -> RunningJob | None:
        """The job of that name in `account`; None: the first of that name, whatever its account."""
        with self._lock:
            if account is not None:
                return self._jobs.get((account, name))
            return next((r for (_, n), r in self._jobs.items() if n == name), None)

    def _run(self, running: RunningJob) -> None:
        job = self._records.transform_job(running.name, running.account)
        root = self._work_dir / "transform" / (running.account or "") / running.name
        try:
            self._execute(job, running, root)
        except (Stopped, OSError, http.client.HTTPException) as exc:
            if running.stop_reason:  # the containers went away because the job was stopped
                self._finish(job, "Stopped", None)
            else:
                self._finish(job, "Failed", f"ClientError: {exc}")
        except TransformFailed as failed:
            self._finish(job, "Stopped" if running.stop_reason else "Failed", str(failed))
        except Exception as exc:
            log.exception("transform job %s failed in the local plane", running.name)
            self._finish(job, "Failed", f"InternalServerError: {type(exc).__name__}: {exc}")
        finally:
            for instance in running.instances:
                stop_container(instance.process)
            # The job's copies of the model and of its outputs do not outlive it.
            shutil.rmtree(root, ignore_errors=True)
            running.done.set()

    def _execute(self, job: Any, running: RunningJob, root: Path) -> None:
        container = self._records.model_container(job.model_name)
        try:
            directory = self._images.resolve(container["Image"])
        except LookupError as exc:
            raise TransformFailed(f"ClientError: {exc}") from exc
        aws = self.model_clients(job.model_name) if self.model_clients else self._aws
        objects = _input_objects(aws, job.transform_input)
        count = max(1, int((job.transform_resources or {}).get("InstanceCount") or 1))
        model = _model_archive(aws, container["ModelDataUrl"])
        variables = {
            **{str(k): str(v) for k, v in (container.get("Environment") or {}).items()},
            **{str(k): str(v) for k, v in (job.environment or {}).items()},
            **batch_environment(job),
        }
        self._start_instances(job, running, directory, root, model, variables, aws, min(count, len(objects)))
        plan = plan_of(described(job), execution_parameters(running.instances[0]))
        shares = [objects[i :: len(running.instances)] for i in range(len(running.instances))]
        outputs: dict[str, Path] = {}
        failures: list[str] = []
        threads = [
            threading.Thread(
                target=self._instance_work,
                args=(running, instance, share, plan, aws, root, outputs, failures),
                name=f"transform-{running.name}-{i}",
                daemon=True,
            )
            for i, (instance, share) in enumerate(zip(running.instances, shares, strict=True))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if running.stop_reason:
            raise Stopped()
        self._upload(job, outputs, aws)
        if failures:
            raise TransformFailed(failures[0])
        self._finish(job, "Completed", None)

    def _start_instances(
        self,
        job: Any,
        running: RunningJob,
        directory: Path,
        root: Path,
        model: bytes,
        variables: dict[str, str],
        aws: Clients,
        count: int,
    ) -> None:
        """The instances boot side by side (SageMaker provisions them together): each is launched, then each
        awaited, so the job waits for the slowest start rather than for their sum."""
        for index in range(count):
            if running.stop_reason:
                raise Stopped()
            instance_root = root / f"algo-{index + 1}"
            with tarfile.open(fileobj=io.BytesIO(model), mode="r:gz") as tar:
                tar.extractall(instance_root / "model", filter="data")
            running.instances.append(self._instance(job, directory, instance_root, variables, aws, index))
        for instance in running.instances:
            if running.stop_reason:
                raise Stopped()
            wait_ready(instance, job.model_name)

    def _upload(self, job: Any, outputs: dict[str, Path], aws: Clients) -> None:
        """Every output object, side by side, once all were transformed."""
        bucket, prefix = split_s3(job.transform_output["S3OutputPath"])
        workers = max(1, len(outputs))
        with ThreadPoolExecutor(workers, thread_name_prefix=f"{job.transform_job_name}-upload") as pool:
            uploads = [
                pool.submit(aws.s3.upload_file, str(staged), bucket, output_key(prefix, _prefix(job), key))
                for key, staged in outputs.items()
            ]
        for upload in uploads:
            upload.result()

    def _instance(
        self, job: Any, directory: Path, root: Path, variables: dict[str, str], aws: Clients, index: int
    ) -> Instance:
        port = free_port()
        process = self._launcher.start(directory, "serve", root, variables, port=port)
        stream = f"{job.transform_job_name}/algo-{index + 1}-{int(time.time())}"
        owner = str(job.arn).split(":")[4]  # the job's account, whose CloudWatch gets its metrics
        threading.Thread(
            target=self._forward_output, args=(process, stream, aws, owner), name="transform-log", daemon=True
        ).start()
        return Instance(port, process)

    def _instance_work(
        self,
        running: RunningJob,
        instance: Instance,
        keys: list[tuple[str, str]],
        plan: Plan,
        aws: Clients,
        root: Path,
        outputs: dict[str, Path],
        failures: list[str],
    ) -> None:
        for number, (bucket, key) in enumerate(keys):
            if running.stop_reason or failures:
                return
            staged = root / "output" / f"{instance.port}-{number}.out"
            staged.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._transform_object(running, instance, plan, aws, bucket, key, staged)
            except Exception as exc:
                if not running.stop_reason:
                    detail = str(exc) if isinstance(exc, TransformFailed) else f"{type(exc).__name__}: {exc}"
                    failures.append(f"ClientError: s3://{bucket}/{key}: {detail}")
                return
            outputs[key] = staged

    def _transform_object(
        self,
        running: RunningJob,
        instance: Instance,
        plan: Plan,
        aws: Clients,
        bucket: str,
        key: str,
        staged: Path,
    ) -> None:
        chunks = object_chunks(aws.s3.get_object(Bucket=bucket, Key=key)["Body"], plan.gzip)
        if plan.split_lines:
            bodies = request_bodies(chunks, plan)
        else:
            whole = b"".join(chunks)
            if plan.max_payload is not None and len(whole) > plan.max_payload:
                raise TransformFailed(
                    f"the object is {len(whole)} bytes, over MaxPayloadInMB, and SplitType is None"
                )
            whole = payload(list(records([whole]))) if plan.join_input else whole.rstrip(b"\n") + b"\n"
            bodies = iter([whole])
        # At most MaxConcurrentTransforms requests in flight; the next body is cut, and the last answer
        # joined, while the container works on those in flight: it never waits for this side's bytes work.
        window: deque[tuple[bytes, Future[bytes]]] = deque()
        with ThreadPoolExecutor(plan.concurrency) as pool, staged.open("wb") as out:
            for body in bodies:
                if running.stop_reason:
                    raise Stopped()
                done = window.popleft() if len(window) >= plan.concurrency else None
                answer = done[1].result() if done else b""
                window.append((body, pool.submit(invoke, instance, body, plan)))
                if done:
                    out.write(assembled_body(done[0], answer, plan))
            while window:
                sent, pending = window.popleft()
                out.write(assembled_body(sent, pending.result(), plan))

    def _forward_output(self, process: Container, stream: str, aws: Clients, account: str) -> None:
        """The container's output to CloudWatch Logs, its EMF lines to metrics (as CloudWatch Logs does)."""
        try:
            logs = LogStream(aws, LOG_GROUP, stream)
            # The job's own account's CloudWatch (a plane whose stages live in several accounts).
            owner = self.account_clients(account) if self.account_clients else self._aws
            cloudwatch = owner.client("cloudwatch")
            for line in process.stdout or ():
                line = line.rstrip("\n")
                if not line:
                    continue
                logs.write(line)
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        if parsed := emf_metric_data(json.loads(line)):
                            cloudwatch.put_metric_data(Namespace=parsed[0], MetricData=parsed[1])
            logs.flush()
        except Exception:
            log.debug("could not forward a transform container's output", exc_info=True)
            with contextlib.suppress(Exception):
                for _ in process.stdout or ():  # still drained: a full pipe would stall the container
                    pass

    def _finish(self, job: Any, status: str, reason: str | None) -> None:
        now = datetime.now(UTC)
        job.transform_end_time = job.last_modified_time = now
        job.failure_reason = reason[:FAILURE_REASON_MAX] if reason else None
        job.transform_job_status = status


def _prefix(job: Any) -> str:
    return split_s3(job.transform_input["DataSource"]["S3DataSource"]["S3Uri"])[1]


def _input_objects(aws: Clients, transform_input: dict[str, Any]) -> list[tuple[str, str]]:
    source = transform_input["DataSource"]["S3DataSource"]
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise TransformFailed(f"S3DataType {source['S3DataType']} is not supported by the local plane")
    bucket, prefix = split_s3(source["S3Uri"])
    found: list[tuple[str, str]] = []
    try:
        for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [(bucket, item["Key"]) for item in page.get("Contents", []) if item["Size"] > 0]
    except aws.s3.exceptions.NoSuchBucket:
        found = []
    if not found:
        # SageMaker's words for an input prefix with nothing under it.
        raise TransformFailed(
            f'ClientError: No S3 objects found under S3 URL "{source["S3Uri"]}" given in input data source. '
            "Please ensure that the bucket exists in the selected region, that objects exist under that S3 "
            "prefix, and that the role has s3:ListBucket permissions on the bucket"
        )
    return found


def _model_archive(aws: Clients, uri: str) -> bytes:
    bucket, key = split_s3(uri)
    try:
        body: bytes = aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        raise TransformFailed(f"ClientError: could not download the model data {uri}: {exc}") from exc
    return body
