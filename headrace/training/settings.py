"""Each training function's environment: the common settings (headrace.lambda_env) plus what its step
touches besides the ledger."""

from __future__ import annotations

from pydantic import Field

from headrace.lambda_env import BusSettings, FunctionSettings, NonEmpty


class BucketStepSettings(FunctionSettings):
    """Prepare, Evaluate and Register: they read and write the run's files in the data bucket."""

    data_bucket: NonEmpty = Field(alias="DATA_BUCKET")


class RegisterSettings(BucketStepSettings):
    """Register's: the bucket step's. The stage's approval policy (stages.yaml) reaches it in the models
    themselves, as the stage applies it (headrace.stages.StageSettings.apply)."""


class RunFailedSettings(BusSettings):
    """RunFailed announces the failure on the deployment's bus."""


class TuningResultSettings(FunctionSettings):
    """TuningResult reads SageMaker's tuning job and writes the run's ledger item; no bucket, no bus."""
