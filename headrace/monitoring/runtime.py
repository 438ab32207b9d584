"""What the drift check's handlers build once per environment (headrace.lambda_env.per_environment): their
settings, the deployment's models and the check's ports. The retrain function's are in retrain_aws.py."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from headrace.lambda_env import FunctionSettings, NonEmpty, Runtime, models_for
from headrace.monitoring.aws import connect_drift
from headrace.monitoring.ports import DriftPorts

MONITORING_DOMAIN = "headrace.monitoring"


class DriftSettings(FunctionSettings):
    data_bucket: NonEmpty = Field(alias="DATA_BUCKET")


def drift_runtime(settings: DriftSettings, models_document: Path) -> Runtime[DriftSettings, DriftPorts]:
    return Runtime(
        settings=settings, models=models_for(settings, models_document), ports=connect_drift(settings)
    )
