"""What Lambda's service does with a function's output, done locally: the log goes to CloudWatch Logs under
`/aws/lambda/<name>`, and Embedded Metric Format lines (powertools Metrics) become CloudWatch metrics."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Mapping
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

    def __init__(self, clients: Clients, accounts: Mapping[str, Clients] | None = None) -> None:
        # A function's logs and metrics go to its own account's CloudWatch (`accounts`: each account's
        # clients, for a plane whose stages live in several; else `clients`' account).
        self._clients = {clients.account: clients, **(accounts or {})}
        self._default = clients.account
        self._by_account: dict[str, tuple[Any, Any]] = {}

    def __call__(self, spec: FunctionSpec, result: InvocationResult) -> None:
        try:
            self._forward(spec, result)
        except Exception:
            log.exception("could not forward the log of %s", spec.name)

    def _services(self, function_arn: str) -> tuple[Any, Any]:
        parts = function_arn.split(":")
        account = parts[4] if len(parts) > 5 and parts[4] in self._clients else self._default
        if account not in self._by_account:
            clients = self._clients[account]
            self._by_account[account] = (clients.client("logs"), clients.client("cloudwatch"))
        return self._by_account[account]

    def _forward(self, spec: FunctionSpec, result: InvocationResult) -> None:
        logs, cloudwatch = self._services(spec.arn)
        lines = [line for line in result.log.splitlines() if line.strip()]
        group = f"/aws/lambda/{spec.name}"
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        if lines:
            logs.put_log_events(
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
                cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
