"""The ingest function's environment: the common settings (headrace.lambda_env) plus the data bucket, the
training state machine of each model and the event bus its outcomes go to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar

from pydantic import Field, Json

from headrace.lambda_env import FunctionSettings, NonEmpty, SettingsError

__all__ = ["IngestSettings", "SettingsError"]

STATE_MACHINE_ARN = r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$"


class IngestSettings(FunctionSettings):
    owner: ClassVar[str | None] = "ingest function's"

    data_bucket: NonEmpty = Field(alias="DATA_BUCKET")
    # {model name: training state machine ARN}
    training_state_machines: Json[dict[str, Annotated[str, Field(pattern=STATE_MACHINE_ARN)]]] = Field(
        alias="TRAINING_STATE_MACHINES"
    )
    event_bus_name: NonEmpty = Field(alias="EVENT_BUS_NAME")
    # {model name: batch state machine ARN} (issue 17): a drop under <model>/batch/incoming/ starts it.
    batch_state_machines: Json[dict[str, Annotated[str, Field(pattern=STATE_MACHINE_ARN)]]] = Field(
        default_factory=dict, alias="BATCH_STATE_MACHINES"
    )

    def check_models(self, models: Mapping[str, object]) -> None:
        """Every model needs a training state machine; a gap would otherwise show on its first drop only."""
        missing = sorted(set(models) - set(self.training_state_machines))
        if missing:
            raise SettingsError(
                f"TRAINING_STATE_MACHINES has no state machine for {', '.join(missing)} "
                f"(it names {', '.join(sorted(self.training_state_machines)) or 'none'})"
            )
