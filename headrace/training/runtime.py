"""What every training function's handler loads once per environment: settings, models, clients."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from aws_lambda_powertools import Logger, Metrics

from headrace.config import ModelConfig, load_models, parse_models_document
from headrace.training.settings import StepSettings

# Besides the settings: where and how boto3 connects.
CONNECTION_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")


class UnknownModel(LookupError):
    """The payload names a model this deployment does not have."""


def models_for(settings: StepSettings, document: Path) -> dict[str, ModelConfig]:
    """The deployment's models: `HEADRACE_MODELS_DIR` when set, else the asset's models.json."""
    if settings.models_dir is not None:
        return {m.name: m for m in load_models(settings.models_dir)}
    return parse_models_document(document.read_text(encoding="utf-8"))


def model_named(models: Mapping[str, ModelConfig], name: str) -> ModelConfig:
    if name not in models:
        raise UnknownModel(f"no model named '{name}' in this deployment (known: {', '.join(sorted(models))})")
    return models[name]


def observe(settings: StepSettings, logger: Logger, metrics: Metrics) -> None:
    """Name the handler's Logger and Metrics from the settings (the environment may be set after import),
    and route the domain's stdlib logs through the Logger's JSON handler."""
    metrics.namespace = settings.metrics_namespace
    metrics.service = settings.service_name
    logger.append_keys(service=settings.service_name)
    domain = logging.getLogger("headrace.training")
    if logger.registered_handler not in domain.handlers:
        domain.addHandler(logger.registered_handler)
    domain.setLevel(logger.log_level)
    domain.propagate = False
