"""Each training function's environment: the common settings (headrace.lambda_env) plus what its step
touches besides the ledger."""

from __future__ import annotations

from pydantic import Field

from headrace.lambda_env import FunctionSettings, NonEmpty


class BucketStepSettings(FunctionSettings):
    """Prepare, Evaluate and Register: they read and write the run's files in the data bucket."""

    data_bucket: NonEmpty = Field(alias="DATA_BUCKET")


class RunFailedSettings(FunctionSettings):
    event_bus_name: NonEmpty = Field(alias="EVENT_BUS_NAME")
