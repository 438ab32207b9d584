"""DeployPlan Lambda: an approval event or a rollback request becomes a plan (create, update or skip), with
the version's Model and EndpointConfig created; `$.plan` out.

Thin on purpose: parse the payload, call `headrace.serving.deploy.plan`, return the plan.
"""

from __future__ import annotations

# isort: off
from headrace import cold_start  # before the others: the collector pauses while they import (Lambda only)

# isort: on

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.lambda_env import Runtime, per_environment
from headrace.serving.deploy import plan
from headrace.serving.payloads import PlanRequest
from headrace.serving.ports import DeployPorts
from headrace.serving.runtime import SERVING_DOMAIN, DeploySettings, deploy_runtime
from headrace.steps import model_named, parse_request

# Written into the deployed asset by headrace.config.models_document; HEADRACE_MODELS_DIR overrides it.
MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    logger.remove_keys(["model", "execution"])  # a warm container must not log the last deployment's ids
    request = parse_request(PlanRequest, event)
    logger.append_keys(model=request.model, execution=request.execution.name)
    planned = plan(
        request,
        model_named(runtime.models, request.model),
        runtime.ports,
        names=runtime.settings.names,
        bucket=runtime.settings.data_bucket,
    )
    logger.info("deployment planned", extra={"action": planned.action, "version": planned.version})
    return planned.model_dump(mode="json")


@per_environment(DeploySettings, logger=logger, metrics=metrics, domain=SERVING_DOMAIN)
def _runtime(settings: DeploySettings) -> Runtime[DeploySettings, DeployPorts]:
    return deploy_runtime(settings, metrics, MODELS_DOCUMENT)


cold_start.imported()
