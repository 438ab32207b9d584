"""What Lambda's service does with a function's output, done locally: the log goes to CloudWatch Logs under
`/aws/lambda/<name>`, and Embedded Metric Format lines (powertools Metrics) become CloudWatch metrics."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from typing import Any

from headrace.local.aws import Clients
from headrace.local.lambda_runtime import FunctionSpec, InvocationResult

log = logging.getLogger("headrace.local")


def emf_metric_data(record: dict[str, Any]) -> tuple[str, list[dict[str, Any]]] | None:
    """(namespace, MetricData) of one EMF record, or None if the line is not EMF."""
    meta = record.get("_aws")
    if not isinstance(meta, dict):
        return None
    data: list[dict[str, Any]] = []
    namespace = ""
    for directive in meta.get("CloudWatchMetrics", []):
        namespace = directive.get("Namespace", namespace)
        dimension_sets = directive.get("Dimensions", [[]]) or [[]]
        for metric in directive.get("Metrics", []):
            values = record.get(metric["Name"])
            for value in values if isinstance(values, list) else [values]:
                if not isinstance(value, int | float):
                    continue
                for names in dimension_sets:
                    data.append(
                        {
                            "MetricName": metric["Name"],
                            "Value": float(value),
                            "Unit": metric.get("Unit", "None"),
                            "Dimensions": [{"Name": n, "Value": str(record.get(n, ""))} for n in names],
                        }
                    )
    return (namespace, data) if namespace and data else None


class Telemetry:
    """A HandlerRuntime listener; it never fails an invocation, it only records what it can."""

    def __init__(self, clients: Clients) -> None:
        self._logs = clients.client("logs")
        self._cloudwatch = clients.client("cloudwatch")

    def __call__(self, spec: FunctionSpec, result: InvocationResult) -> None:
        try:
            self._forward(spec, result)
        except Exception:
            log.exception("could not forward the log of %s", spec.name)

    def _forward(self, spec: FunctionSpec, result: InvocationResult) -> None:
        lines = [line for line in result.log.splitlines() if line.strip()]
        group = f"/aws/lambda/{spec.name}"
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
            self._logs.create_log_group(logGroupName=group)
        self._logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        if lines:
            self._logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": now, "message": line} for line in lines],
            )
        for line in lines:
            if not line.startswith("{"):
                continue
            try:
                parsed = emf_metric_data(json.loads(line))
            except json.JSONDecodeError:
                continue
            if parsed:
                namespace, data = parsed
                self._cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
