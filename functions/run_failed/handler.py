"""RunFailed Lambda: every step's Catch leads here with the whole state; `$.failure` out, for the Fail state.

Thin on purpose: parse the payload, call `headrace.training.run_failed.record_failure`, return the failure.
It reads no model config: a failure must be recorded even when the input named an unknown model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.event_bus import EventBridgePublisher
from headrace.lambda_env import per_environment
from headrace.metrics import PowertoolsMetrics
from headrace.training import aws
from headrace.training.payloads import RunFailedRequest, parse_request
from headrace.training.run_failed import record_failure
from headrace.training.runtime import TRAINING_DOMAIN
from headrace.training.settings import RunFailedSettings

logger = Logger()
metrics = Metrics()


@dataclass(frozen=True)
class Runtime:
    settings: RunFailedSettings
    ledger: aws.DynamoRunLedger
    events: EventBridgePublisher


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    logger.remove_keys(["model", "execution", "job_name"])  # a warm container must not log the last run's ids
    request = parse_request(RunFailedRequest, event)
    logger.append_keys(model=request.state.model, execution=request.execution.name)
    failure = record_failure(
        request,
        names=runtime.settings.names,
        ledger=runtime.ledger,
        events=runtime.events,
        metrics=PowertoolsMetrics(metrics),
        clock=aws.now,
    )
    return failure.model_dump(mode="json")


@per_environment(RunFailedSettings, logger=logger, metrics=metrics, domain=TRAINING_DOMAIN)
def _runtime(settings: RunFailedSettings) -> Runtime:
    return Runtime(
        settings=settings,
        ledger=aws.DynamoRunLedger(aws.client("dynamodb"), settings.ledger_table),
        events=EventBridgePublisher(
            aws.client("events"), settings.event_bus_name, settings.names.event_source
        ),
    )
