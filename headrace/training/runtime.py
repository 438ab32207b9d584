"""What the training functions' handlers build once per environment (headrace.lambda_env.per_environment):
their settings, the deployment's models and the steps' ports."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from aws_lambda_powertools import Metrics

from headrace.lambda_env import FunctionSettings, Runtime, models_for
from headrace.training.aws import connect
from headrace.training.ports import TrainingPorts

# The stdlib loggers the training functions route through their Powertools Logger.
TRAINING_DOMAIN = "headrace.training"

S = TypeVar("S", bound=FunctionSettings)


def training_runtime(
    settings: S, metrics: Metrics, models_document: Path | None
) -> Runtime[S, TrainingPorts]:
    """`models_document` None: the function reads no model config (RunFailed must record a failure even
    when the input named an unknown model)."""
    models = models_for(settings, models_document) if models_document else {}
    return Runtime(settings=settings, models=models, ports=connect(settings, metrics))
