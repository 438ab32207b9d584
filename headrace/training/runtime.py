"""What the training functions' handlers share beyond headrace.lambda_env: finding the payload's model, and
the runtime of the steps that judge and register a candidate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from headrace.config import ModelConfig
from headrace.lambda_env import models_for
from headrace.training import aws
from headrace.training.settings import BucketStepSettings

# The stdlib loggers the training functions route through their Powertools Logger.
TRAINING_DOMAIN = "headrace.training"


class UnknownModel(LookupError):
    """The payload names a model this deployment does not have."""


def model_named(models: Mapping[str, ModelConfig], name: str) -> ModelConfig:
    if name not in models:
        raise UnknownModel(f"no model named '{name}' in this deployment (known: {', '.join(sorted(models))})")
    return models[name]


@dataclass(frozen=True)
class RegistryStep:
    """Evaluate and Register: the run's files, its ledger item and the model's registry group."""

    settings: BucketStepSettings
    models: dict[str, ModelConfig]
    store: aws.S3Store
    ledger: aws.DynamoRunLedger
    registry: aws.SageMakerRegistry

    @classmethod
    def connect(cls, settings: BucketStepSettings, models_document: Path) -> RegistryStep:
        return cls(
            settings=settings,
            models=models_for(settings, models_document),
            store=aws.S3Store(aws.client("s3")),
            ledger=aws.DynamoRunLedger(aws.client("dynamodb"), settings.ledger_table),
            registry=aws.SageMakerRegistry(aws.client("sagemaker")),
        )
