"""What the deploy functions' handlers share: their settings and the runtime built once per environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from headrace.config import ModelConfig
from headrace.event_bus import EventBridgePublisher
from headrace.lambda_env import FunctionSettings, NonEmpty, models_for
from headrace.serving.aws import DynamoDeploymentLedger, SageMakerHosting
from headrace.training import aws

# The stdlib loggers the deploy functions route through their Powertools Logger.
SERVING_DOMAIN = "headrace.serving"


class DeploySettings(FunctionSettings):
    data_bucket: NonEmpty = Field(alias="DATA_BUCKET")
    event_bus_name: NonEmpty = Field(alias="EVENT_BUS_NAME")


@dataclass(frozen=True)
class DeployStep:
    settings: DeploySettings
    models: dict[str, ModelConfig]
    hosting: SageMakerHosting
    ledger: DynamoDeploymentLedger
    events: EventBridgePublisher

    @classmethod
    def connect(cls, settings: DeploySettings, models_document: Path) -> DeployStep:
        return cls(
            settings=settings,
            models=models_for(settings, models_document),
            hosting=SageMakerHosting(aws.client("sagemaker"), aws.client("cloudwatch")),
            ledger=DynamoDeploymentLedger(aws.client("dynamodb"), settings.ledger_table),
            events=EventBridgePublisher(
                aws.client("events"), settings.event_bus_name, settings.names.event_source
            ),
        )
