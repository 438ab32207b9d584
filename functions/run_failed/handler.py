"""RunFailed Lambda: every step's Catch leads here with the whole state; `$.failure` out, for the Fail state.

Thin on purpose: parse the payload, call `headrace.training.run_failed.record_failure`, return the failure.
It reads no model config: a failure must be recorded even when the input named an unknown model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.training import aws
from headrace.training.payloads import RunFailedRequest, parse_request
from headrace.training.run_failed import record_failure
from headrace.training.runtime import CONNECTION_VARIABLES, observe
from headrace.training.settings import RunFailedSettings

RUNTIME_VARIABLES = (*RunFailedSettings.variables(), *CONNECTION_VARIABLES)

logger = Logger()
metrics = Metrics()


@dataclass(frozen=True)
class Runtime:
    settings: RunFailedSettings
    ledger: aws.DynamoRunLedger
    events: aws.EventBridgePublisher


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime(tuple(os.environ.get(name) for name in RUNTIME_VARIABLES))
    logger.remove_keys(["model", "execution", "job_name"])  # a warm container must not log the last run's ids
    request = parse_request(RunFailedRequest, event)
    logger.append_keys(model=request.state.model, execution=request.execution.name)
    failure = record_failure(
        request,
        names=runtime.settings.names,
        ledger=runtime.ledger,
        events=runtime.events,
        metrics=aws.PowertoolsMetrics(metrics),
        clock=aws.now,
    )
    return failure.model_dump(mode="json")


@cache
def _runtime(environment: tuple[str | None, ...]) -> Runtime:
    """Built once per distinct environment: in Lambda that is once per container (the cold start)."""
    settings = RunFailedSettings.from_environ(os.environ)
    observe(settings, logger, metrics)
    return Runtime(
        settings=settings,
        ledger=aws.DynamoRunLedger(aws.client("dynamodb"), settings.ledger_table),
        events=aws.EventBridgePublisher(
            aws.client("events"), settings.event_bus_name, settings.names.event_source
        ),
    )
