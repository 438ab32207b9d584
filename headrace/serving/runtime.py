"""What the serving functions' handlers build once per environment (headrace.lambda_env.per_environment):
their settings, the deployment's models and their workflow's ports."""

from __future__ import annotations

from pathlib import Path

from aws_lambda_powertools import Metrics
from pydantic import Field

from headrace.lambda_env import BusSettings, NonEmpty, Runtime, models_for
from headrace.serving.aws import connect
from headrace.serving.ports import DeployPorts

# The stdlib loggers the serving functions route through their Powertools Logger.
SERVING_DOMAIN = "headrace.serving"


class DeploySettings(BusSettings):
    data_bucket: NonEmpty = Field(alias="DATA_BUCKET")


def deploy_runtime(
    settings: DeploySettings, metrics: Metrics, models_document: Path
) -> Runtime[DeploySettings, DeployPorts]:
    models = models_for(settings, models_document)
    return Runtime(settings=settings, models=models, ports=connect(settings, metrics))
