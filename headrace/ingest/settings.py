"""The ingest function's environment, parsed once per environment into a typed model. Every variable is
required: a missing one is a broken deployment and should fail loudly, not fall back to a guess."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Json, ValidationError, field_validator

from headrace.naming import Names

STATE_MACHINE_ARN = r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$"

NonEmpty = Annotated[str, Field(min_length=1)]


class SettingsError(RuntimeError):
    """The function's environment is incomplete or malformed; the message names each variable."""


class IngestSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    service_name: NonEmpty = Field(alias="POWERTOOLS_SERVICE_NAME")
    metrics_namespace: NonEmpty = Field(alias="POWERTOOLS_METRICS_NAMESPACE")
    stage: NonEmpty = Field(alias="HEADRACE_STAGE")
    data_bucket: NonEmpty = Field(alias="DATA_BUCKET")
    ledger_table: NonEmpty = Field(alias="LEDGER_TABLE")
    # {model name: training state machine ARN}
    training_state_machines: Json[dict[str, Annotated[str, Field(pattern=STATE_MACHINE_ARN)]]] = Field(
        alias="TRAINING_STATE_MACHINES"
    )
    event_bus_name: NonEmpty = Field(alias="EVENT_BUS_NAME")
    # Tests and the local plane point this at a models/ folder; deployed functions read their models.json.
    models_dir: Path | None = Field(default=None, alias="HEADRACE_MODELS_DIR")

    @field_validator("stage")
    @classmethod
    def _known_stage_shape(cls, value: str) -> str:
        Names(value)  # raises ValueError naming the expected pattern
        return value

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> IngestSettings:
        try:
            return cls.model_validate(dict(environ))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise SettingsError(f"the ingest function's environment is invalid: {problems}") from None

    def check_models(self, models: Mapping[str, object]) -> None:
        """Every model needs a training state machine; a gap would otherwise show on its first drop only."""
        missing = sorted(set(models) - set(self.training_state_machines))
        if missing:
            raise SettingsError(
                f"TRAINING_STATE_MACHINES has no state machine for {', '.join(missing)} "
                f"(it names {', '.join(sorted(self.training_state_machines)) or 'none'})"
            )

    @staticmethod
    def variables() -> list[str]:
        return [str(f.alias) for f in IngestSettings.model_fields.values()]
