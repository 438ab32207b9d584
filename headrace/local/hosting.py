"""SageMaker hosting on the local plane: endpoints whose production variants are serve containers.

What SageMaker's hosting does, done locally and nothing more (the rollout policy comes from the caller's
DeploymentConfig, the model from the registry, the alarms from CloudWatch):
- CreateEndpoint starts one serve process per production variant (the image's `serve` script under the
  container contract: the model unpacked into `<root>/model`, `PORT`, the Model's Environment) and moves the
  endpoint Creating -> InService once every `/ping` answers (Failed, with the reason, if one does not).
- InvokeEndpoint picks a variant by the live weights (or `TargetVariant`), forwards the body over loopback
  HTTP, and answers as SageMaker does: the container's body on 200, `ModelError` (424) with the original
  status and message otherwise. Every invocation is counted in `AWS/SageMaker` metrics (Invocations, 4XX,
  5XX, ModelLatency, OverheadLatency, per EndpointName/VariantName, flushed each second) and, when data
  capture is on, sampled into SageMaker's capture format (JSON lines) under the config's S3 destination.
- UpdateEndpoint with a blue/green DeploymentConfig: the new fleet starts beside the old; traffic shifts by
  the canary or linear steps, each held for WaitIntervalInSeconds, then the bake (TerminationWaitInSeconds);
  while it shifts and bakes, the AutoRollbackConfiguration alarms are watched and one in ALARM sends all
  traffic back to the old fleet, which ends InService on its old config (silently, as SageMaker does). A
  fleet is stopped only after new requests stopped reaching it and its in-flight ones finished, so callers
  see no failure during a rollout.
Container output goes to CloudWatch Logs under `/aws/sagemaker/Endpoints/<endpoint>`, and its Embedded
Metric Format lines become metrics, as on AWS.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import logging
import os
import random
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from headrace.local.aws import Clients
from headrace.local.plane import free_port
from headrace.local.telemetry import emf_metric_data
from headrace.local.training import ImageRegistry, LogStream

log = logging.getLogger("headrace.local")

LOG_GROUP = "/aws/sagemaker/Endpoints"
PING_TIMEOUT_S = 60.0
# SageMaker's own limit for a container's answer to InvokeEndpoint.
INVOKE_TIMEOUT_S = 60.0
METRICS_NAMESPACE = "AWS/SageMaker"
FLUSH_INTERVAL_S = 1.0
ALARM_POLL_S = 0.25
# How long a retiring fleet's in-flight requests may take before it is stopped anyway.
DRAIN_TIMEOUT_S = 30.0

AlarmStates = Callable[[list[str]], dict[str, str]]


class HostingError(RuntimeError):
    pass


def _split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


@dataclass
class Fleet:
    """One production variant of one endpoint config: a serve process on a loopback port."""

    endpoint: str
    config_name: str
    variant: str
    model_name: str
    port: int
    root: Path
    process: subprocess.Popen[str] | None = None
    in_flight: int = 0
    weight: float = 0.0
    _local: threading.local = field(default_factory=threading.local)

    def connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=INVOKE_TIMEOUT_S)
            self._local.conn = conn
        return conn

    def drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str
    variant: str


@dataclass
class Capture:
    """An EndpointConfig's DataCaptureConfig, as the proxy applies it."""

    bucket: str
    prefix: str
    percent: float
    kms_key: str | None
    modes: set[str]
    csv_types: set[str]
    json_types: set[str]

    @classmethod
    def of(cls, config: dict[str, Any] | None) -> Capture | None:
        if not config or not config.get("EnableCapture"):
            return None
        bucket, prefix = _split_s3(config["DestinationS3Uri"])
        header = config.get("CaptureContentTypeHeader") or {}
        return cls(
            bucket=bucket,
            prefix=prefix.rstrip("/"),
            percent=float(config.get("InitialSamplingPercentage", 100)),
            kms_key=config.get("KmsKeyId"),
            modes={o["CaptureMode"] for o in config.get("CaptureOptions", [])},
            csv_types=set(header.get("CsvContentTypes", [])),
            json_types=set(header.get("JsonContentTypes", [])),
        )

    def encode(self, content_type: str, data: bytes) -> tuple[str, str]:
        bare = content_type.split(";")[0].strip()
        try:
            if bare in self.csv_types:
                return "CSV", data.decode()
            if bare in self.json_types:
                return "JSON", data.decode()
        except UnicodeDecodeError:
            pass
        return "BASE64", base64.b64encode(data).decode()


@dataclass
class HostedEndpoint:
    name: str
    fleets: list[Fleet] = field(default_factory=list)
    capture: Capture | None = None
    lock: threading.Condition = field(default_factory=threading.Condition)

    def choose(self, target_variant: str | None) -> Fleet:
        with self.lock:
            live = [f for f in self.fleets if f.weight > 0]
            if target_variant:
                live = [f for f in self.fleets if f.variant == target_variant and f.weight > 0] or [
                    f for f in self.fleets if f.variant == target_variant
                ]
                if not live:
                    raise HostingError(f"endpoint {self.name} has no variant {target_variant}")
            if not live:
                raise HostingError(f"endpoint {self.name} has no variant with traffic")
            chosen = random.choices(live, weights=[f.weight or 1 for f in live])[0]
            chosen.in_flight += 1
            return chosen

    def release(self, fleet: Fleet) -> None:
        with self.lock:
            fleet.in_flight -= 1
            self.lock.notify_all()

    def drain(self, fleets: list[Fleet]) -> None:
        """Wait until `fleets` (already weighted 0) finished the requests they had."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        with self.lock:
            while any(f.in_flight for f in fleets) and time.monotonic() < deadline:
                self.lock.wait(0.1)


class _Telemetry:
    """Per-second invocation metrics and captured records, flushed by one thread."""

    def __init__(self, clients: Clients) -> None:
        self._clients = clients
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        self._latency: dict[tuple[str, str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self._captured: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._captures: dict[tuple[str, str], Capture] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="headrace-endpoint-telemetry", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()

    def record(self, endpoint: str, variant: str, status: int, model_us: int, overhead_us: int) -> None:
        with self._lock:
            counts = self._counts[(endpoint, variant)]
            counts[0] += 1
            if 400 <= status < 500:
                counts[1] += 1
            elif status >= 500:
                counts[2] += 1
            self._latency[(endpoint, variant, "ModelLatency")][model_us] += 1
            self._latency[(endpoint, variant, "OverheadLatency")][overhead_us] += 1

    def capture(self, endpoint: str, variant: str, capture: Capture, line: str) -> None:
        with self._lock:
            self._captures[(endpoint, variant)] = capture
            self._captured[(endpoint, variant)].append(line)

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            try:
                self.flush()
            except Exception:
                log.exception("could not flush endpoint metrics or captured data")

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, defaultdict(lambda: [0, 0, 0])
            latency, self._latency = self._latency, defaultdict(lambda: defaultdict(int))
            captured, self._captured = self._captured, defaultdict(list)
            captures = dict(self._captures)
        now = datetime.now(UTC)
        data: list[dict[str, Any]] = []
        for (endpoint, variant), (total, client, server) in counts.items():
            dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
            for name, value in (
                ("Invocations", total),
                ("Invocation4XXErrors", client),
                ("Invocation5XXErrors", server),
            ):
                data.append(_counted(name, dims, value, total, now))
        for (endpoint, variant, name), histogram in latency.items():
            dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
            values = list(histogram.items())
            for start in range(0, len(values), 150):  # PutMetricData takes 150 values per datum
                chunk = values[start : start + 150]
                data.append(
                    {
                        "MetricName": name,
                        "Dimensions": dims,
                        "Timestamp": now,
                        "Unit": "Microseconds",
                        "Values": [float(v) for v, _ in chunk],
                        "Counts": [float(c) for _, c in chunk],
                    }
                )
        if data:
            cloudwatch = self._clients.client("cloudwatch")
            for start in range(0, len(data), 500):
                cloudwatch.put_metric_data(Namespace=METRICS_NAMESPACE, MetricData=data[start : start + 500])
        for (endpoint, variant), lines in captured.items():
            if lines:
                self._write_capture(endpoint, variant, captures[(endpoint, variant)], lines, now)

    def _write_capture(
        self, endpoint: str, variant: str, capture: Capture, lines: list[str], now: datetime
    ) -> None:
        # SageMaker's layout: <destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl
        key = (
            f"{capture.prefix}/{endpoint}/{variant}/{now:%Y/%m/%d/%H}/"
            f"{now:%M-%S}-{now.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
        ).lstrip("/")
        extra: dict[str, Any] = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": capture.kms_key} if capture.kms_key else {}
        )
        self._clients.client("s3").put_object(
            Bucket=capture.bucket, Key=key, Body="\n".join(lines).encode() + b"\n", **extra
        )


def _counted(
    name: str, dims: list[dict[str, str]], value: int, samples: int, now: datetime
) -> dict[str, Any]:
    return {
        "MetricName": name,
        "Dimensions": dims,
        "Timestamp": now,
        "Unit": "None",
        "StatisticValues": {
            "SampleCount": float(samples),
            "Sum": float(value),
            "Minimum": 0.0 if value < samples else 1.0,
            "Maximum": 1.0 if value else 0.0,
        },
    }


class EndpointHosting:
    """The serve processes behind every endpoint of moto's SageMaker, in the process that runs moto."""

    def __init__(
        self, clients: Clients, images: ImageRegistry, work_dir: Path, alarm_states: AlarmStates
    ) -> None:
        self._aws = clients
        self._images = images
        self._work_dir = work_dir
        self._alarm_states = alarm_states
        self._endpoints: dict[str, HostedEndpoint] = {}
        self._lock = threading.Lock()
        self._telemetry = _Telemetry(clients)
        self._threads: list[threading.Thread] = []

    # --- moto's records, in this process ---------------------------------------------------------------
    def _backend(self) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[self._aws.account][self._aws.region]

    def _record(self, name: str) -> Any:
        return self._backend().endpoints[name]

    def start(self) -> None:
        self._telemetry.start()

    def stop(self) -> None:
        with self._lock:
            endpoints = list(self._endpoints.values())
            self._endpoints.clear()
        for endpoint in endpoints:
            for fleet in endpoint.fleets:
                fleet.stop()
        self._telemetry.stop()

    def restore(self) -> None:
        """Serve again every endpoint a restored state says is InService (after `local up --state-dir`)."""
        for name, record in list(self._backend().endpoints.items()):
            if record.endpoint_status in ("InService", "Creating", "Updating", "RollingBack"):
                record.endpoint_status = "Creating"
                self._spawn(f"restore-{name}", self._create, name, record.endpoint_config_name)

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"hosting-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    # --- CreateEndpoint / UpdateEndpoint / DeleteEndpoint ----------------------------------------------
    def created(self, name: str, config_name: str) -> None:
        record = self._record(name)
        record.endpoint_status = "Creating"
        self._spawn(f"create-{name}", self._create, name, config_name)

    def _create(self, name: str, config_name: str) -> None:
        record = self._record(name)
        try:
            fleets = self._start_fleets(name, config_name)
        except Exception as exc:
            log.warning("endpoint %s failed to start: %s", name, exc)
            record.endpoint_status, record.failure_reason = "Failed", str(exc)[:1024]
            return
        for fleet in fleets:
            fleet.weight = self._variant(config_name, fleet.variant).get("InitialVariantWeight", 1.0)
        hosted = HostedEndpoint(name, fleets, Capture.of(self._config(config_name).get("DataCaptureConfig")))
        with self._lock:
            self._endpoints[name] = hosted
        self._publish_variants(record, fleets)
        record.endpoint_status, record.failure_reason = "InService", None
        record.last_modified_time = datetime.now(UTC)

    def update(self, name: str, config_name: str, deployment: dict[str, Any] | None) -> None:
        from moto.sagemaker.exceptions import ValidationError

        endpoints = self._backend().endpoints
        if name not in endpoints:
            raise ValidationError(message=f"Could not find endpoint '{name}'.")
        record = endpoints[name]
        if record.endpoint_status != "InService":
            raise ValidationError(
                message=f"Cannot update in-progress endpoint '{record.arn}' ({record.endpoint_status})."
            )
        self._config(config_name)  # raises when the config does not exist
        record.endpoint_status = "Updating"
        record.last_modified_time = datetime.now(UTC)
        self._spawn(f"update-{name}", self._roll_out, name, config_name, deployment or {})

    def deleted(self, name: str) -> None:
        with self._lock:
            hosted = self._endpoints.pop(name, None)
        if hosted:
            with hosted.lock:
                for fleet in hosted.fleets:
                    fleet.weight = 0
            hosted.drain(hosted.fleets)
            for fleet in hosted.fleets:
                fleet.stop()

    def _roll_out(self, name: str, config_name: str, deployment: dict[str, Any]) -> None:
        record = self._record(name)
        with self._lock:
            hosted = self._endpoints.get(name)
        if hosted is None:
            record.endpoint_status, record.failure_reason = (
                "Failed",
                "the endpoint's containers are not running",
            )
            return
        old_config = record.endpoint_config_name
        blue = list(hosted.fleets)
        try:
            green = self._start_fleets(name, config_name)
        except Exception as exc:
            log.warning("update of %s: the new fleet did not start: %s", name, exc)
            record.endpoint_status, record.failure_reason = "InService", f"Update failed: {exc}"[:1024]
            return
        policy = deployment.get("BlueGreenUpdatePolicy", {})
        routing = policy.get("TrafficRoutingConfiguration", {"Type": "ALL_AT_ONCE"})
        alarms = [a["AlarmName"] for a in deployment.get("AutoRollbackConfiguration", {}).get("Alarms", [])]
        steps = _traffic_steps(routing)
        wait_s = float(routing.get("WaitIntervalInSeconds", 0))
        bake_s = float(policy.get("TerminationWaitInSeconds", 0))
        with hosted.lock:
            hosted.fleets = blue + green
        fired: str | None = None
        for index, share in enumerate(steps):
            self._shift(hosted, blue, green, share)
            # DescribeEndpoint's PendingDeploymentSummary: the new config and its live share, as on AWS.
            record.pending_deployment_summary = {
                "EndpointConfigName": config_name,
                "ProductionVariants": [
                    {"VariantName": f.variant, "CurrentWeight": f.weight, "DesiredWeight": 1.0} for f in green
                ],
                "StartTime": datetime.now(UTC),
            }
            log.info("endpoint %s: %d%% of traffic on %s", name, round(share * 100), config_name)
            last = index == len(steps) - 1
            fired = self._watch(alarms, bake_s if last else wait_s)
            if fired:
                break
        if fired:
            log.warning("endpoint %s: alarm %s fired; rolling back to %s", name, fired, old_config)
            record.endpoint_status = "RollingBack"
            self._shift(hosted, blue, green, 0.0)
            self._retire(hosted, green)
            record.pending_deployment_summary = None
            record.endpoint_status = "InService"
            return
        self._retire(hosted, blue)
        # The config switches before the pending summary goes: no moment shows neither the old nor the new.
        record.endpoint_config_name = config_name
        record.pending_deployment_summary = None
        self._publish_variants(record, green)
        hosted.capture = Capture.of(self._config(config_name).get("DataCaptureConfig"))
        record.endpoint_status, record.failure_reason = "InService", None
        record.last_modified_time = datetime.now(UTC)

    def _shift(self, hosted: HostedEndpoint, blue: list[Fleet], green: list[Fleet], share: float) -> None:
        with hosted.lock:
            for fleet in green:
                fleet.weight = share / len(green)
            for fleet in blue:
                fleet.weight = (1 - share) / len(blue)

    def _retire(self, hosted: HostedEndpoint, fleets: list[Fleet]) -> None:
        with hosted.lock:
            for fleet in fleets:
                fleet.weight = 0
        hosted.drain(fleets)
        with hosted.lock:
            hosted.fleets = [f for f in hosted.fleets if f not in fleets]
        for fleet in fleets:
            fleet.stop()

    def _watch(self, alarms: list[str], seconds: float) -> str | None:
        """Hold for `seconds`, looking at the guard alarms; the first one in ALARM, or None."""
        deadline = time.monotonic() + seconds
        while True:
            if alarms:
                states = self._alarm_states(alarms)
                fired = next((a for a in alarms if states.get(a) == "ALARM"), None)
                if fired:
                    return fired
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            time.sleep(min(ALARM_POLL_S, remaining))

    # --- the containers ----------------------------------------------------------------------------------
    def _config(self, config_name: str) -> dict[str, Any]:
        response: dict[str, Any] = self._backend().describe_endpoint_config(config_name)
        return response

    def _variant(self, config_name: str, variant: str) -> dict[str, Any]:
        return next(v for v in self._config(config_name)["ProductionVariants"] if v["VariantName"] == variant)

    def _start_fleets(self, endpoint: str, config_name: str) -> list[Fleet]:
        fleets: list[Fleet] = []
        try:
            for variant in self._config(config_name)["ProductionVariants"]:
                fleets.append(self._start_fleet(endpoint, config_name, variant))
        except Exception:
            for fleet in fleets:
                fleet.stop()
            raise
        return fleets

    def _start_fleet(self, endpoint: str, config_name: str, variant: dict[str, Any]) -> Fleet:
        model = self._backend().describe_model(variant["ModelName"])
        container = model.primary_container or model.containers[0]
        directory = self._images.resolve(container["Image"])
        root = (
            self._work_dir
            / "endpoints"
            / endpoint
            / f"{config_name}-{variant['VariantName']}-{uuid.uuid4().hex[:6]}"
        )
        (root / "model").mkdir(parents=True)
        bucket, key = _split_s3(container["ModelDataUrl"])
        archive = self._aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            tar.extractall(root / "model", filter="data")
        fleet = Fleet(
            endpoint=endpoint,
            config_name=config_name,
            variant=variant["VariantName"],
            model_name=variant["ModelName"],
            port=free_port(),
            root=root,
        )
        env = {
            **os.environ,
            **{str(k): str(v) for k, v in (container.get("Environment") or {}).items()},
            "HEADRACE_OPT_ML": str(root),
            "HEADRACE_SERVE_HOST": "127.0.0.1",
            "PORT": str(fleet.port),
            "PYTHONPATH": os.pathsep.join([str(directory), os.environ.get("PYTHONPATH", "")]),
            "PYTHONUNBUFFERED": "1",
            "OMP_WAIT_POLICY": "PASSIVE",
        }
        fleet.process = subprocess.Popen(
            [sys.executable, str(directory / "serve"), "serve"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        stream = f"{variant['VariantName']}/{config_name}/{uuid.uuid4().hex[:8]}"
        threading.Thread(
            target=self._forward_output,
            args=(fleet, endpoint, stream),
            name=f"serve-log-{endpoint}",
            daemon=True,
        ).start()
        try:
            self._wait_ready(fleet)
        except Exception:
            fleet.stop()
            raise
        return fleet

    def _wait_ready(self, fleet: Fleet) -> None:
        deadline = time.monotonic() + PING_TIMEOUT_S
        while time.monotonic() < deadline:
            if fleet.process and fleet.process.poll() is not None:
                raise HostingError(
                    f"the serving container of {fleet.model_name} exited with {fleet.process.returncode} "
                    f"before answering /ping (see {LOG_GROUP}/{fleet.endpoint})"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", fleet.port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            time.sleep(0.1)
        raise HostingError(
            f"the serving container of {fleet.model_name} did not answer /ping in {PING_TIMEOUT_S:.0f} s"
        )

    def _forward_output(self, fleet: Fleet, endpoint: str, stream: str) -> None:
        """The container's output to CloudWatch Logs; its EMF lines to CloudWatch metrics."""
        logs = LogStream(self._aws, f"{LOG_GROUP}/{endpoint}", stream)
        cloudwatch = self._aws.client("cloudwatch")
        assert fleet.process is not None and fleet.process.stdout is not None
        try:
            for line in fleet.process.stdout:
                line = line.rstrip("\n")
                if not line:
                    continue
                logs.write(line)
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        if parsed := emf_metric_data(json.loads(line)):
                            cloudwatch.put_metric_data(Namespace=parsed[0], MetricData=parsed[1])
        except Exception:
            log.debug("could not forward the output of %s", endpoint, exc_info=True)
        finally:
            with contextlib.suppress(Exception):
                logs.flush()

    def _publish_variants(self, record: Any, fleets: list[Fleet]) -> None:
        record.production_variants = [
            {
                "VariantName": f.variant,
                "CurrentWeight": f.weight,
                "DesiredWeight": f.weight,
                "CurrentInstanceCount": 1,
                "DesiredInstanceCount": 1,
            }
            for f in fleets
        ]

    # --- InvokeEndpoint ----------------------------------------------------------------------------------
    def weights(self, name: str) -> dict[str, float]:
        """The live share of traffic per fleet (`<config>/<variant>`), for status displays and tests."""
        with self._lock:
            hosted = self._endpoints.get(name)
        if hosted is None:
            return {}
        with hosted.lock:
            return {f"{f.config_name}/{f.variant}": f.weight for f in hosted.fleets}

    def invoke(
        self, name: str, body: bytes, content_type: str, accept: str | None, target_variant: str | None
    ) -> Answer:
        started = time.perf_counter()
        with self._lock:
            hosted = self._endpoints.get(name)
        if hosted is None:
            raise HostingError(f"Endpoint {name} of account {self._aws.account} not found.")
        fleet = hosted.choose(target_variant)
        try:
            sent = time.perf_counter()
            status, answer, answered_type = self._forward(fleet, body, content_type, accept)
            model_s = time.perf_counter() - sent
        finally:
            hosted.release(fleet)
        overhead_s = time.perf_counter() - started - model_s
        self._telemetry.record(name, fleet.variant, status, int(model_s * 1e6), int(overhead_s * 1e6))
        capture = hosted.capture
        if capture and random.uniform(0, 100) < capture.percent:
            self._telemetry.capture(
                name,
                fleet.variant,
                capture,
                _capture_line(capture, body, content_type, answer, answered_type),
            )
        return Answer(status, answer, answered_type, fleet.variant)

    def _forward(
        self, fleet: Fleet, body: bytes, content_type: str, accept: str | None
    ) -> tuple[int, bytes, str]:
        headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        if accept:
            headers["Accept"] = accept
        for attempt in (1, 2):
            conn = fleet.connection()
            try:
                conn.request("POST", "/invocations", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    fleet.drop_connection()
                return response.status, payload, response.getheader("Content-Type", "application/json")
            except (OSError, http.client.HTTPException):
                # A kept-alive connection the server closed: one fresh try, as an HTTP client pool does.
                fleet.drop_connection()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def _traffic_steps(routing: dict[str, Any]) -> list[float]:
    """The new fleet's share of traffic at each step of a TrafficRoutingConfiguration."""
    kind = routing.get("Type", "ALL_AT_ONCE")
    if kind == "CANARY":
        return [min(1.0, float(routing.get("CanarySize", {}).get("Value", 10)) / 100), 1.0]
    if kind == "LINEAR":
        step = float(routing.get("LinearStepSize", {}).get("Value", 25)) / 100
        shares: list[float] = []
        share = 0.0
        while share < 1.0 - 1e-9:
            share = min(1.0, share + step)
            shares.append(share)
        return shares
    return [1.0]


def _capture_line(capture: Capture, body: bytes, content_type: str, answer: bytes, answered_type: str) -> str:
    captured: dict[str, Any] = {}
    if "Input" in capture.modes:
        encoding, data = capture.encode(content_type, body)
        captured["endpointInput"] = {
            "observedContentType": content_type,
            "mode": "INPUT",
            "data": data,
            "encoding": encoding,
        }
    if "Output" in capture.modes:
        encoding, data = capture.encode(answered_type, answer)
        captured["endpointOutput"] = {
            "observedContentType": answered_type,
            "mode": "OUTPUT",
            "data": data,
            "encoding": encoding,
        }
    return json.dumps(
        {
            "captureData": captured,
            "eventMetadata": {
                "eventId": str(uuid.uuid4()),
                "inferenceTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            },
            "eventVersion": "0",
        }
    )


@contextlib.contextmanager
def served(hosting: EndpointHosting) -> Iterator[EndpointHosting]:
    hosting.start()
    try:
        yield hosting
    finally:
        hosting.stop()
