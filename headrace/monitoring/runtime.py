"""What the monitoring functions share: their settings and the runtime built once per environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from pydantic import Field, Json

from headrace.config import ModelConfig
from headrace.event_bus import EventBridgePublisher
from headrace.idempotency import IdempotentOnce, ledger_persistence
from headrace.lambda_env import FunctionSettings, NonEmpty, models_for
from headrace.monitoring.aws import (
    DynamoLedger,
    EndpointArtifacts,
    PowertoolsDriftMetrics,
    S3Store,
    StepFunctionsTraining,
)
from headrace.monitoring.retrain import RetrainDecision
from headrace.training import aws

MONITORING_DOMAIN = "headrace.monitoring"
# A redelivered alarm event (EventBridge retries for up to 24 hours) replays the decision already made.
IDEMPOTENCY_TTL_S = 48 * 3600


class DriftSettings(FunctionSettings):
    data_bucket: NonEmpty = Field(alias="DATA_BUCKET")


class RetrainSettings(FunctionSettings):
    training_state_machines: Json[dict[str, Annotated[str, Field(min_length=1)]]] = Field(
        alias="TRAINING_STATE_MACHINES"
    )
    event_bus_name: NonEmpty = Field(alias="EVENT_BUS_NAME")


@dataclass(frozen=True)
class DriftStep:
    settings: DriftSettings
    models: dict[str, ModelConfig]
    store: S3Store
    serving: EndpointArtifacts
    ledger: DynamoLedger
    metrics: PowertoolsDriftMetrics

    @classmethod
    def connect(cls, settings: DriftSettings, models_document: Path) -> DriftStep:
        return cls(
            settings=settings,
            models=models_for(settings, models_document),
            store=S3Store(aws.client("s3")),
            serving=EndpointArtifacts(aws.client("sagemaker")),
            ledger=DynamoLedger(aws.client("dynamodb"), settings.ledger_table),
            metrics=PowertoolsDriftMetrics(settings.metrics_namespace),
        )


@dataclass(frozen=True)
class RetrainStep:
    settings: RetrainSettings
    models: dict[str, ModelConfig]
    ledger: DynamoLedger
    runs: StepFunctionsTraining
    events: EventBridgePublisher
    once: IdempotentOnce[RetrainDecision]

    @classmethod
    def connect(cls, settings: RetrainSettings, models_document: Path) -> RetrainStep:
        dynamodb = aws.client("dynamodb")
        return cls(
            settings=settings,
            models=models_for(settings, models_document),
            ledger=DynamoLedger(dynamodb, settings.ledger_table),
            runs=StepFunctionsTraining(aws.client("stepfunctions"), settings.training_state_machines),
            events=EventBridgePublisher(
                aws.client("events"), settings.event_bus_name, settings.names.event_source
            ),
            once=IdempotentOnce(
                ledger_persistence(settings.ledger_table, dynamodb),
                IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_TTL_S),
                RetrainDecision,
                "headrace-retrain",
            ),
        )
