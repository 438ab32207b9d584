"""What the monitoring functions' handlers build once per environment (headrace.lambda_env.per_environment):
their settings, the deployment's models and their workflow's ports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from pydantic import Field, Json

from headrace.config import ModelConfig
from headrace.lambda_env import BusSettings, FunctionSettings, NonEmpty, Runtime, models_for
from headrace.monitoring.aws import connect_drift, connect_retrain
from headrace.monitoring.ports import DriftPorts
from headrace.monitoring.retrain import RetrainPorts

MONITORING_DOMAIN = "headrace.monitoring"


class DriftSettings(FunctionSettings):
    data_bucket: NonEmpty = Field(alias="DATA_BUCKET")


class RetrainSettings(BusSettings):
    training_state_machines: Json[dict[str, Annotated[str, Field(min_length=1)]]] = Field(
        alias="TRAINING_STATE_MACHINES"
    )


def drift_runtime(settings: DriftSettings, models_document: Path) -> Runtime[DriftSettings, DriftPorts]:
    return Runtime(
        settings=settings, models=models_for(settings, models_document), ports=connect_drift(settings)
    )


@dataclass(frozen=True)
class RetrainRuntime(Runtime[RetrainSettings, RetrainPorts]):
    idempotency: IdempotencyConfig

    def register(self, context: Any) -> None:
        """Give idempotency the invocation's deadline, so a timed-out attempt does not block its retry."""
        if hasattr(context, "get_remaining_time_in_millis"):
            self.idempotency.register_lambda_context(context)


def retrain_runtime(settings: RetrainSettings, models_document: Path) -> RetrainRuntime:
    models: dict[str, ModelConfig] = models_for(settings, models_document)
    ports, idempotency = connect_retrain(settings, settings.training_state_machines)
    return RetrainRuntime(settings=settings, models=models, ports=ports, idempotency=idempotency)
