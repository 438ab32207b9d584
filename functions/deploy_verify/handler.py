"""DeployVerify Lambda: after the rollout, the endpoint must run the planned config; a silent rollback by
SageMaker raises DeploymentRolledBack. `$.deployed` out.

Thin on purpose: parse the payload, call `headrace.serving.deploy.verify`, return what is serving.
"""

from __future__ import annotations

# isort: off
from headrace import cold_start  # before the others: the collector pauses while they import (Lambda only)

# isort: on

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.lambda_env import Runtime, per_environment
from headrace.serving.deploy import verify
from headrace.serving.payloads import VerifyRequest
from headrace.serving.ports import DeployPorts
from headrace.serving.runtime import SERVING_DOMAIN, DeploySettings, deploy_runtime
from headrace.steps import model_named, parse_request

MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    logger.remove_keys(["model"])
    request = parse_request(VerifyRequest, event)
    logger.append_keys(model=request.model)
    deployed = verify(
        request, model_named(runtime.models, request.model), runtime.ports, names=runtime.settings.names
    )
    logger.info(
        "version serving", extra={"version": deployed.version, "config": deployed.endpoint_config_name}
    )
    return deployed.model_dump(mode="json")


@per_environment(DeploySettings, logger=logger, metrics=metrics, domain=SERVING_DOMAIN)
def _runtime(settings: DeploySettings) -> Runtime[DeploySettings, DeployPorts]:
    return deploy_runtime(settings, metrics, MODELS_DOCUMENT)


cold_start.imported()
