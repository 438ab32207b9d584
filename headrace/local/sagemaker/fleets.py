"""An endpoint's fleets: each instance of a production variant of an endpoint config is one serve process
on a loopback port (SageMaker's container contract: the model unpacked into `<root>/model`, `PORT`, the
Model's Environment), and the endpoint routes each request to one of them by the live weights.

A serve process that exits on its own is noticed at once (its output ends) and reported to `on_exit`:
hosting.py replaces the instance, as SageMaker does, or fails the endpoint when it keeps dying. One that
exits before answering /ping fails the start with SageMaker's reason plus the container's last line (the
inference container prints why it refuses a model there: containers/serve/CONTRACT.md)."""

from __future__ import annotations

import collections
import contextlib
import http.client
import io
import json
import logging
import random
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from headrace.local.sagemaker.records import SageMakerRecords
from headrace.local.sagemaker.telemetry import Capture
from headrace.local.telemetry import emf_metric_data

log = logging.getLogger("headrace.local")

LOG_GROUP = "/aws/sagemaker/Endpoints"
PING_TIMEOUT_S = 60.0
# SageMaker's own limit for a container's answer to InvokeEndpoint.
INVOKE_TIMEOUT_S = 60.0
# How long a retiring fleet's in-flight requests may take before it is stopped anyway.
DRAIN_TIMEOUT_S = 30.0
# The container's last output lines kept for a failure reason, and how long to wait for the rest of the
# output of a container that exited (its forwarding thread reads it).
TAIL_LINES = 5
OUTPUT_WAIT_S = 2.0
# Room left in FailureReason (1,024 characters on SageMaker) for the container's own words.
REASON_OUTPUT_MAX = 600


class HostingError(RuntimeError):
    """A request SageMaker would refuse (no such endpoint or variant, an endpoint not InService)."""


class ContainerDown(ConnectionError):
    """The chosen variant's container is not running (it exited and is being replaced): SageMaker's
    retryable 503, as for a container that dies mid-request (an OSError too)."""


@dataclass(frozen=True)
class Output:
    """A serve process's last output lines, and whether its output has ended (all of it read)."""

    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    ended: threading.Event = field(default_factory=threading.Event)


@dataclass
class Fleet:
    """One production variant of one endpoint config: a serve process on a loopback port."""

    endpoint: str
    config_name: str
    variant: str
    model_name: str
    port: int
    root: Path
    process: Container | None = None
    in_flight: int = 0
    weight: float = 0.0
    # Set once hosting retires or deletes it: its exit is then expected, not a failure to report.
    stopping: bool = False
    # Bumped when the instance is replaced (a new process on a new port): cached connections are stale.
    generation: int = 0
    # While its instance is being replaced (or, after too many exits, for good); when it exited recently.
    replacing: bool = False
    exits: list[float] = field(default_factory=list)
    # The current process's output (its last lines): a new one per process, so that a previous process's
    # forwarder, still draining, never writes into it.
    output: Output = field(default_factory=Output)
    _local: threading.local = field(default_factory=threading.local)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "generation", None) != self.generation:
            conn.close()
            conn = None
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=INVOKE_TIMEOUT_S)
            self._local.conn, self._local.generation = conn, self.generation
        return conn

    def drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def stop(self) -> None:
        self.stopping = True
        stop_container(self.process)


@dataclass
class HostedEndpoint:
    """The fleets behind one endpoint and the share of traffic each one gets; `capture` is the live
    config's data capture, None when off."""

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

    def shift(self, blue: list[Fleet], green: list[Fleet], share: float) -> None:
        """`share` of the traffic to the green fleets, the rest to the blue ones, evenly within each."""
        with self.lock:
            for fleet in green:
                fleet.weight = share / len(green)
            for fleet in blue:
                fleet.weight = (1 - share) / len(blue)

    def retire(self, fleets: list[Fleet]) -> None:
        """Stop `fleets` once new requests no longer reach them and their in-flight ones finished."""
        with self.lock:
            for fleet in fleets:
                fleet.weight = 0
        self.drain(fleets)
        with self.lock:
            self.fleets = [f for f in self.fleets if f not in fleets]
        for fleet in fleets:
            fleet.stop()


class FleetLauncher:
    """Starts an endpoint config's fleets: one serve container per production variant, ready once it
    answers `/ping`. Container output goes to CloudWatch Logs under `/aws/sagemaker/Endpoints/<endpoint>`,
    and its Embedded Metric Format lines become metrics, as on AWS."""

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
        # Clients signed as a model's execution role (seams/iam.py) when the plane enforces IAM: SageMaker
        # reads the model artifact and writes the container's logs as that role.
        self.model_clients: Callable[[str], Clients] | None = None
        # Told when a fleet's container exits without being stopped (hosting.py replaces it).
        self.on_exit: Callable[[Fleet], None] | None = None
        # The clients of the endpoint's own account, whose CloudWatch gets its metrics (a plane whose
        # stages live in several accounts); None: `clients`.
        self.account_clients: Callable[[str], Clients] | None = None

    def start(self, endpoint: str, config_name: str) -> list[Fleet]:
        """Every variant's fleet, an instance (a Fleet) per InitialInstanceCount, or none: a variant that does
        not start stops the others."""
        fleets: list[Fleet] = []
        try:
            for variant in self._records.endpoint_config(config_name)["ProductionVariants"]:
                for _ in range(max(1, int(variant.get("InitialInstanceCount") or 1))):
                    fleets.append(self._start_fleet(endpoint, config_name, variant))
        except Exception:
            for fleet in fleets:
                fleet.stop()
            raise
        return fleets

    def _start_fleet(self, endpoint: str, config_name: str, variant: dict[str, Any]) -> Fleet:
        container = self._records.model_container(variant["ModelName"])
        self._images.resolve(container["Image"])  # an image this deployment does not have: refused first
        root = (
            self._work_dir
            / "endpoints"
            / endpoint
            / f"{config_name}-{variant['VariantName']}-{uuid.uuid4().hex[:6]}"
        )
        (root / "model").mkdir(parents=True)
        bucket, key = split_s3(container["ModelDataUrl"])
        aws = self.model_clients(variant["ModelName"]) if self.model_clients else self._aws
        archive = aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
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
        fleet.process = self._serve(fleet, fleet.port)
        try:
            _wait_ready(fleet.process, fleet.port, fleet)
        except Exception:
            fleet.stop()
            raise
        return fleet

    def replace(self, fleet: Fleet) -> None:
        """A new instance for `fleet` (its container exited): the same model on a new port, swapped in once
        it answers /ping; HostingError when it does not."""
        port = free_port()
        process = self._serve(fleet, port)
        try:
            _wait_ready(process, port, fleet)
        except Exception:
            stop_container(process)
            raise
        fleet.process, fleet.port, fleet.generation = process, port, fleet.generation + 1

    def _serve(self, fleet: Fleet, port: int) -> Container:
        """Start the variant's serve container on `port`, its output forwarded by a thread of its own."""
        container = self._records.model_container(fleet.model_name)
        directory = self._images.resolve(container["Image"])
        aws = self.model_clients(fleet.model_name) if self.model_clients else self._aws
        variables = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
        process = self._launcher.start(directory, "serve", fleet.root, variables, port=port)
        output = fleet.output = Output()
        stream = f"{fleet.variant}/{fleet.config_name}/{uuid.uuid4().hex[:8]}"
        threading.Thread(
            target=self._forward_output,
            args=(fleet, process, stream, aws, output),
            name=f"serve-log-{fleet.endpoint}",
            daemon=True,
        ).start()
        return process

    def _forward_output(
        self, fleet: Fleet, process: Container, stream: str, aws: Clients, output: Output
    ) -> None:
        """The container's output to CloudWatch Logs; its EMF lines to CloudWatch metrics. The output ends
        when the container exits: one that was not stopped is reported to `on_exit`."""
        try:
            self._forward_lines(fleet.endpoint, process, stream, aws, output.tail)
        except Exception:
            log.debug("could not forward the output of %s", fleet.endpoint, exc_info=True)
        finally:
            with contextlib.suppress(Exception):
                for line in process.stdout or ():  # still drained: a full pipe would stall the container
                    if line.strip():
                        output.tail.append(line.rstrip("\n"))
            output.ended.set()
            process.wait()
            if not fleet.stopping and fleet.process is process and self.on_exit:
                self.on_exit(fleet)

    def _forward_lines(
        self, endpoint: str, process: Container, stream: str, aws: Clients, tail: collections.deque[str]
    ) -> None:
        assert process.stdout is not None
        logs = LogStream(aws, f"{LOG_GROUP}/{endpoint}", stream)
        owner = self.account_clients(endpoint) if self.account_clients else self._aws
        cloudwatch = owner.client("cloudwatch")
        try:
            for line in process.stdout:
                line = line.rstrip("\n")
                if not line:
                    continue
                tail.append(line)
                logs.write(line)
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        if parsed := emf_metric_data(json.loads(line)):
                            cloudwatch.put_metric_data(Namespace=parsed[0], MetricData=parsed[1])
        finally:
            with contextlib.suppress(Exception):
                logs.flush()


def _wait_ready(process: Container, port: int, fleet: Fleet) -> None:
    deadline = time.monotonic() + PING_TIMEOUT_S
    while time.monotonic() < deadline:
        if fleet.stopping:  # retired or deleted while starting: no instance is wanted any more
            raise HostingError(f"the fleet of {fleet.model_name} was stopped while it started")
        if process.poll() is not None:
            raise HostingError(_exited_before_ping(process, fleet))
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                conn.close()
                return
        time.sleep(0.1)
    raise HostingError(
        f"the serving container of {fleet.model_name} did not answer /ping in {PING_TIMEOUT_S:.0f} s"
    )


def _exited_before_ping(process: Container, fleet: Fleet) -> str:
    """SageMaker's FailureReason for a container that never passed /ping ("The primary container for
    production variant <variant> did not pass the ping health check. Please check CloudWatch logs for this
    endpoint.", https://repost.aws/knowledge-center/sagemaker-endpoint-creation-fail), with the exit code
    and the container's last line, which says why (its whole output is in the endpoint's log group)."""
    fleet.output.ended.wait(OUTPUT_WAIT_S)
    said = fleet.output.tail[-1] if fleet.output.tail else ""
    if len(said) > REASON_OUTPUT_MAX:
        said = said[: REASON_OUTPUT_MAX - 3] + "..."
    return (
        f"The primary container for production variant {fleet.variant} did not pass the ping health check: "
        f"the serving container of {fleet.model_name} exited with {process.returncode} before answering "
        f"/ping. Please check CloudWatch logs for this endpoint ({LOG_GROUP}/{fleet.endpoint})."
        + (f" Its last line: {said}" if said else "")
    )
