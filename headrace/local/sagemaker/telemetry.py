"""What every InvokeEndpoint leaves behind on AWS, done locally: the `AWS/SageMaker` invocation metrics
(Invocations, 4XX, 5XX, ModelLatency, OverheadLatency per EndpointName/VariantName, flushed each second) and,
when the endpoint config turns data capture on, the sampled requests and answers in SageMaker's capture
format (JSON lines) under the config's S3 destination.

The metrics mean what https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html says:
Invocations counts every InvokeEndpoint request sent to a variant, Invocation4XXErrors and
Invocation5XXErrors those answered with a 4XX / 5XX code (1 per such request, 0 otherwise), a call whose
container was down included; ModelLatency and OverheadLatency only where the model answered."""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from headrace.local.aws import Clients
from headrace.local.sagemaker.containers import split_s3

log = logging.getLogger("headrace.local")

METRICS_NAMESPACE = "AWS/SageMaker"
FLUSH_INTERVAL_S = 1.0
# PutMetricData takes at most 150 values per datum; the data go out 500 to a call.
VALUES_PER_DATUM = 150
DATA_PER_CALL = 500


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
        bucket, prefix = split_s3(config["DestinationS3Uri"])
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

    def line(
        self,
        body: bytes,
        content_type: str,
        answer: bytes,
        answered_type: str,
        inference_id: str | None = None,
    ) -> str:
        """One captured invocation, as SageMaker writes it: `eventId` always a fresh uuid, the caller's
        InferenceId as `inferenceId` beside it when the call had one. Model Monitor joins ground truth on
        `inferenceId` when a record has it, else on `eventId`
        (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-merge.html)."""
        captured: dict[str, Any] = {}
        if "Input" in self.modes:
            encoding, data = self.encode(content_type, body)
            captured["endpointInput"] = {
                "observedContentType": content_type,
                "mode": "INPUT",
                "data": data,
                "encoding": encoding,
            }
        if "Output" in self.modes:
            encoding, data = self.encode(answered_type, answer)
            captured["endpointOutput"] = {
                "observedContentType": answered_type,
                "mode": "OUTPUT",
                "data": data,
                "encoding": encoding,
            }
        metadata = {"eventId": str(uuid.uuid4())}
        if inference_id is not None:
            metadata["inferenceId"] = inference_id
        metadata["inferenceTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return json.dumps({"captureData": captured, "eventMetadata": metadata, "eventVersion": "0"})


class InvocationTelemetry:
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

    def record(
        self,
        endpoint: str,
        variant: str,
        status: int,
        model_us: int | None = None,
        overhead_us: int | None = None,
    ) -> None:
        """One invocation answered with `status`; the latencies when the model answered it."""
        with self._lock:
            counts = self._counts[(endpoint, variant)]
            counts[0] += 1
            if 400 <= status < 500:
                counts[1] += 1
            elif status >= 500:
                counts[2] += 1
            if model_us is not None:
                self._latency[(endpoint, variant, "ModelLatency")][model_us] += 1
            if overhead_us is not None:
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
            for start in range(0, len(values), VALUES_PER_DATUM):
                chunk = values[start : start + VALUES_PER_DATUM]
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
            for start in range(0, len(data), DATA_PER_CALL):
                cloudwatch.put_metric_data(
                    Namespace=METRICS_NAMESPACE, MetricData=data[start : start + DATA_PER_CALL]
                )
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
