"""DeployFailed Lambda: every deploy step's Catch leads here; records the failure (a rollback included) in
the ledger, announces it on the event bus, and returns `$.failure` for the Fail state.

Thin on purpose: parse the payload, call `headrace.serving.deploy.record_failure`.
"""

from __future__ import annotations

# isort: off
from headrace import cold_start  # before the others: the collector pauses while they import (Lambda only)

# isort: on

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.lambda_env import Runtime, per_environment
from headrace.serving.deploy import record_failure
from headrace.serving.payloads import DeployFailedRequest
from headrace.serving.ports import DeployPorts
from headrace.serving.runtime import SERVING_DOMAIN, DeploySettings, deploy_runtime
from headrace.steps import parse_request

MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    logger.remove_keys(["model", "execution"])
    request = parse_request(DeployFailedRequest, event)
    logger.append_keys(model=request.model, execution=request.execution.name)
    model = runtime.models.get(request.model)  # an unknown model still has its failure recorded
    failure = record_failure(request, runtime.ports, model, runtime.settings.names)
    return failure.model_dump(mode="json")


@per_environment(DeploySettings, logger=logger, metrics=metrics, domain=SERVING_DOMAIN)
def _runtime(settings: DeploySettings) -> Runtime[DeploySettings, DeployPorts]:
    return deploy_runtime(settings, metrics, MODELS_DOCUMENT)


cold_start.imported()
