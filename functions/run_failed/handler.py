"""RunFailed Lambda: every step's Catch leads here with the whole state; `$.failure` out, for the Fail state.

Thin on purpose: parse the payload, call `headrace.training.run_failed.record_failure`, return the failure.
It reads no model config: a failure must be recorded even when the input named an unknown model.
"""

from __future__ import annotations

# isort: off
from headrace import cold_start  # before the others: the collector pauses while they import (Lambda only)

# isort: on

from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.lambda_env import Runtime, per_environment
from headrace.steps import parse_request
from headrace.training.payloads import RunFailedRequest
from headrace.training.ports import TrainingPorts
from headrace.training.run_failed import record_failure
from headrace.training.runtime import TRAINING_DOMAIN, training_runtime
from headrace.training.settings import RunFailedSettings

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    logger.remove_keys(["model", "execution", "job_name"])  # a warm container must not log the last run's ids
    request = parse_request(RunFailedRequest, event)
    logger.append_keys(model=request.state.model, execution=request.execution.name)
    failure = record_failure(request, runtime.ports, names=runtime.settings.names)
    return failure.model_dump(mode="json")


@per_environment(RunFailedSettings, logger=logger, metrics=metrics, domain=TRAINING_DOMAIN)
def _runtime(settings: RunFailedSettings) -> Runtime[RunFailedSettings, TrainingPorts]:
    return training_runtime(settings, metrics, None)


cold_start.imported()
