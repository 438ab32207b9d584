"""Each training function's environment: the common settings (headrace.lambda_env) plus what its step
touches besides the ledger."""

from __future__ import annotations

from pydantic import Field

from headrace.lambda_env import FunctionSettings, NonEmpty
from headrace.stages import APPROVAL_POLICY_VARIABLE, ApprovalPolicy


class BucketStepSettings(FunctionSettings):
    """Prepare, Evaluate and Register: they read and write the run's files in the data bucket."""

    data_bucket: NonEmpty = Field(alias="DATA_BUCKET")


class RegisterSettings(BucketStepSettings):
    """Register also applies the stage's approval policy (stages.yaml): `model` leaves each model's
    gate.approval in charge, `manual` or `auto` overrides it."""

    approval_policy: ApprovalPolicy = Field(alias=APPROVAL_POLICY_VARIABLE)


class RunFailedSettings(FunctionSettings):
    event_bus_name: NonEmpty = Field(alias="EVENT_BUS_NAME")
