"""SageMaker hosting on the local plane: endpoints whose production variants are serve containers.

What SageMaker's hosting does, done locally and nothing more (the rollout policy comes from the caller's
DeploymentConfig, the model from the registry, the alarms from CloudWatch):
- CreateEndpoint starts a serve process per instance of each production variant (fleets.py) and moves the
  endpoint Creating -> InService once every `/ping` answers (Failed, with the reason, if one does not).
- InvokeEndpoint picks a variant by the live weights (or `TargetVariant`) and forwards the body over
  loopback HTTP; the answer is the container's status and body, counted and captured (telemetry.py), the
  call's InferenceId (checked as SageMaker checks it) in the captured record and nowhere else.
- UpdateEndpoint with a blue/green DeploymentConfig shifts traffic to the new fleet (rollout.py).
- DeleteEndpoint stops the endpoint's fleets once their in-flight requests finished.
- A serve container that exits on its own is an instance SageMaker replaces: the variant shows it
  (CurrentInstanceCount 0, VariantStatus Updating with the reason) until a new process answers /ping; one
  that keeps exiting, or whose replacement does not start, fails the endpoint with a FailureReason. Calls
  that reach a dead container answer 503 and count in Invocations and Invocation5XXErrors (telemetry.py),
  so the endpoint's guard alarms see them.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from headrace.local.aws import Clients
from headrace.local.sagemaker import capacity
from headrace.local.sagemaker.containers import ContainerLauncher, ImageRegistry
from headrace.local.sagemaker.fleets import (
    LOG_GROUP,
    ContainerDown,
    Fleet,
    FleetLauncher,
    HostedEndpoint,
    HostingError,
)
from headrace.local.sagemaker.inference_id import check_inference_id
from headrace.local.sagemaker.records import SageMakerRecords
from headrace.local.sagemaker.rollout import AlarmStates, fleet_size, shift_traffic
from headrace.local.sagemaker.telemetry import Capture, InvocationTelemetry

log = logging.getLogger("headrace.local")

# SageMaker's FailureReason is at most 1024 characters.
FAILURE_REASON_MAX = 1024
# A variant whose container exits more than this often within the window is not replaced again: the
# endpoint fails, as a model that cannot stay up fails it on SageMaker.
MAX_REPLACEMENTS = 3
REPLACEMENT_WINDOW_S = 300.0

__all__ = ["Answer", "EndpointHosting", "HostingError", "served"]


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str
    variant: str


class EndpointHosting:
    """The serve processes behind every endpoint SageMaker's records hold, in the process that runs moto."""

    def __init__(
        self,
        clients: Clients,
        images: ImageRegistry,
        work_dir: Path,
        alarm_states: AlarmStates,
        records: SageMakerRecords,
        launcher: ContainerLauncher | None = None,
    ) -> None:
        self._aws = clients
        self._records = records
        self._alarm_states = alarm_states
        self._fleets = FleetLauncher(clients, images, work_dir, records, launcher)
        self._fleets.on_exit = self._container_exited
        self._endpoints: dict[str, HostedEndpoint] = {}
        self._lock = threading.Lock()
        self._telemetry = InvocationTelemetry(clients)
        self._threads: list[threading.Thread] = []

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
        for name, record in list(self._records.endpoints().items()):
            if record.endpoint_status in ("InService", "Creating", "Updating", "RollingBack"):
                record.endpoint_status = "Creating"
                self._spawn(f"restore-{name}", self._create, name, record.endpoint_config_name)

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"hosting-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    # --- CreateEndpoint / UpdateEndpoint / DeleteEndpoint ----------------------------------------------
    def created(self, name: str, config_name: str) -> None:
        record = self._records.endpoints()[name]
        record.endpoint_status = "Creating"
        self._spawn(f"create-{name}", self._create, name, config_name)

    def _create(self, name: str, config_name: str) -> None:
        record = self._records.endpoints()[name]
        try:
            fleets = self._fleets.start(name, config_name)
        except Exception as exc:
            log.warning("endpoint %s failed to start: %s", name, exc)
            record.endpoint_status, record.failure_reason = "Failed", str(exc)[:FAILURE_REASON_MAX]
            return
        config = self._records.endpoint_config(config_name)
        for fleet in fleets:  # a variant's weight, spread over its instances
            variant = next(v for v in config["ProductionVariants"] if v["VariantName"] == fleet.variant)
            count = sum(1 for f in fleets if f.variant == fleet.variant)
            fleet.weight = variant.get("InitialVariantWeight", 1.0) / count
        hosted = HostedEndpoint(name, fleets, Capture.of(config.get("DataCaptureConfig")))
        with self._lock:
            self._endpoints[name] = hosted
        capacity.publish_variants(record, fleets)
        record.endpoint_status, record.failure_reason = "InService", None
        record.last_modified_time = datetime.now(UTC)

    def update(self, name: str, config_name: str, deployment: dict[str, Any] | None) -> None:
        """UpdateEndpoint: refused (HostingError) unless the endpoint is InService; rolls out in the
        background, the endpoint Updating meanwhile."""
        endpoints = self._records.endpoints()
        if name not in endpoints:
            raise HostingError(f"Could not find endpoint '{name}'.")
        record = endpoints[name]
        if record.endpoint_status != "InService":
            raise HostingError(
                f"Cannot update in-progress endpoint '{record.arn}' ({record.endpoint_status})."
            )
        self._records.endpoint_config(config_name)  # raises when the config does not exist
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
        record = self._records.endpoints()[name]
        with self._lock:
            hosted = self._endpoints.get(name)
        if hosted is None:
            record.endpoint_status, record.failure_reason = (
                "Failed",
                "the endpoint's containers are not running",
            )
            return
        try:
            green = self._fleets.start(name, config_name)
        except Exception as exc:
            log.warning("update of %s: the new fleet did not start: %s", name, exc)
            record.endpoint_status = "InService"
            record.failure_reason = f"Update failed: {exc}"[:FAILURE_REASON_MAX]
            return
        variants = self._records.endpoint_config(config_name).get("ProductionVariants") or []
        instances = fleet_size(variants)
        if not shift_traffic(hosted, record, green, config_name, deployment, self._alarm_states, instances):
            return
        # The config switches before the pending summary goes: no moment shows neither the old nor the new.
        record.endpoint_config_name = config_name
        record.pending_deployment_summary = None
        capacity.publish_variants(record, green)
        hosted.capture = Capture.of(self._records.endpoint_config(config_name).get("DataCaptureConfig"))
        record.endpoint_status, record.failure_reason = "InService", None
        record.last_modified_time = datetime.now(UTC)

    def scale(self, name: str, variant: str, count: int) -> None:
        """`count` instances for `variant`, done before it returns (the local Application Auto Scaling)."""
        self.change_capacity(name, [{"VariantName": variant, "DesiredInstanceCount": count}])()

    def change_capacity(self, name: str, changes: list[dict[str, Any]]) -> Callable[[], None]:
        """UpdateEndpointWeightsAndCapacities (capacity.py): checked now (HostingError), the endpoint Updating
        until the returned change has run."""
        with self._lock:
            hosted = self._endpoints.get(name)
        if hosted is None or name not in self._records.endpoints():
            raise HostingError(f"Could not find endpoint '{name}'.")
        return capacity.accept(hosted, self._fleets, self._records, self._records.endpoints()[name], changes)

    def update_capacity(self, name: str, changes: list[dict[str, Any]]) -> None:
        """The API call: answered at once, the change made in the background, as on SageMaker."""
        self._spawn(f"capacity-{name}", self.change_capacity(name, changes))

    # --- a container that exits on its own -------------------------------------------------------------
    def _container_exited(self, fleet: Fleet) -> None:
        """Replace the instance of `fleet` in the background, once (its exit may be seen twice: by its
        output ending and by a call that found it dead)."""
        with self._lock:
            hosted = self._endpoints.get(fleet.endpoint)
        if hosted is None:
            return
        with hosted.lock:
            if fleet.stopping or fleet.replacing or fleet not in hosted.fleets:
                return
            fleet.replacing = True
        self._spawn(f"replace-{fleet.endpoint}", self._replace_or_fail, hosted, fleet)

    def _replace_or_fail(self, hosted: HostedEndpoint, fleet: Fleet) -> None:
        record = self._records.endpoints().get(hosted.name)
        if record is None:
            return
        try:
            self._replace(hosted, fleet, record)
        except Exception as exc:
            log.exception("endpoint %s: the instance of %s was not replaced", hosted.name, fleet.variant)
            self._fail(record, fleet, f"the instance of variant {fleet.variant} was not replaced: {exc}")

    def _replace(self, hosted: HostedEndpoint, fleet: Fleet, record: Any) -> None:
        code = fleet.process.returncode if fleet.process else None
        what = f"the serving container of variant {fleet.variant} ({fleet.model_name}) exited with {code}"
        now = time.monotonic()
        fleet.exits = [t for t in fleet.exits if now - t < REPLACEMENT_WINDOW_S] + [now]
        if len(fleet.exits) > MAX_REPLACEMENTS:
            self._fail(
                record,
                fleet,
                f"{what}, {len(fleet.exits)} times in {REPLACEMENT_WINDOW_S:.0f} s "
                f"(see {LOG_GROUP}/{hosted.name})",
            )
            return  # left dead: its calls keep answering 503, counted
        log.warning("endpoint %s: %s; replacing the instance", hosted.name, what)
        capacity.show_instance(record, fleet, f"Replacing an instance: {what}")
        try:
            self._fleets.replace(fleet)
        except Exception as exc:
            self._fail(record, fleet, f"{what}, and its replacement did not start: {exc}")
            return
        with hosted.lock:
            fleet.replacing = False
            retired = fleet.stopping
        if retired:  # retired or deleted while it was being replaced
            fleet.stop()
            return
        capacity.show_instance(record, fleet, None)

    def _fail(self, record: Any, fleet: Fleet, reason: str) -> None:
        log.warning("endpoint %s failed: %s", fleet.endpoint, reason)
        if fleet.config_name == record.endpoint_config_name:
            record.endpoint_status = "Failed"
        # else a new config's fleet during an update: the rollout (and its guard alarms) decide.
        record.failure_reason = reason[:FAILURE_REASON_MAX]
        record.last_modified_time = datetime.now(UTC)

    # --- InvokeEndpoint ----------------------------------------------------------------------------------
    def weights(self, name: str) -> dict[str, float]:
        """The live share of traffic per fleet (`<config>/<variant>`), for status displays and tests."""
        with self._lock:
            hosted = self._endpoints.get(name)
        if hosted is None:
            return {}
        shares: dict[str, float] = {}
        with hosted.lock:
            for f in hosted.fleets:  # a variant's instances together
                shares[f"{f.config_name}/{f.variant}"] = (
                    shares.get(f"{f.config_name}/{f.variant}", 0) + f.weight
                )
        return shares

    def pids(self, name: str) -> dict[str, int]:
        """The process of each fleet's container (`<config>/<variant>`), for supervision and tests."""
        with self._lock:
            hosted = self._endpoints.get(name)
        if hosted is None:
            return {}
        found: dict[str, int] = {}
        with hosted.lock:
            for f in hosted.fleets:  # a variant's second instance is `<config>/<variant>#2`, and so on
                key = f"{f.config_name}/{f.variant}"
                seen = sum(1 for k in found if k == key or k.startswith(f"{key}#"))
                if f.process:
                    found[f"{key}#{seen + 1}" if seen else key] = f.process.pid
        return found

    def invoke(
        self,
        name: str,
        body: bytes,
        content_type: str,
        accept: str | None,
        target_variant: str | None,
        inference_id: str | None = None,
    ) -> Answer:
        """The container's answer; HostingError for a request SageMaker refuses, OSError or HTTPException
        when the container did not answer. `inference_id` goes into the captured record only: SageMaker
        documents it as added to the captured data, not as sent to the container."""
        started = time.perf_counter()
        if inference_id is not None:
            check_inference_id(inference_id)
        with self._lock:
            hosted = self._endpoints.get(name)
        if hosted is None:
            raise HostingError(f"Endpoint {name} of account {self._aws.account} not found.")
        fleet = hosted.choose(target_variant)
        try:
            if not fleet.running:
                self._container_exited(fleet)
                raise ContainerDown(
                    f"the serving container of variant {fleet.variant} is not running "
                    "(its instance is being replaced)"
                )
            sent = time.perf_counter()
            status, answer, answered_type = _forward(fleet, body, content_type, accept)
            model_s = time.perf_counter() - sent
        except (OSError, http.client.HTTPException):
            # The caller gets a 503 (seams/sagemaker.py): an invocation and a 5XX error, as SageMaker counts
            # them, so guard alarms on Invocation5XXErrors see a dead container.
            self._telemetry.record(name, fleet.variant, 503)
            raise
        finally:
            hosted.release(fleet)
        overhead_s = time.perf_counter() - started - model_s
        self._telemetry.record(name, fleet.variant, status, int(model_s * 1e6), int(overhead_s * 1e6))
        capture = hosted.capture
        if capture and random.uniform(0, 100) < capture.percent:
            line = capture.line(body, content_type, answer, answered_type, inference_id)
            self._telemetry.capture(name, fleet.variant, capture, line)
        return Answer(status, answer, answered_type, fleet.variant)


def _forward(fleet: Fleet, body: bytes, content_type: str, accept: str | None) -> tuple[int, bytes, str]:
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


@contextlib.contextmanager
def served(hosting: EndpointHosting) -> Iterator[EndpointHosting]:
    hosting.start()
    try:
        yield hosting
    finally:
        hosting.stop()
