"""Each training function's environment, parsed once per environment into a typed model. Every variable is
required: a missing one is a broken deployment and fails loudly, naming the variable."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from headrace.naming import Names

NonEmpty = Annotated[str, Field(min_length=1)]
S = TypeVar("S", bound="StepSettings")


class SettingsError(RuntimeError):
    """The function's environment is incomplete or malformed; the message names each variable."""


class StepSettings(BaseModel):
    """What every training function reads: who it is, where it reports, the ledger and the models."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    service_name: NonEmpty = Field(alias="POWERTOOLS_SERVICE_NAME")
    metrics_namespace: NonEmpty = Field(alias="POWERTOOLS_METRICS_NAMESPACE")
    stage: NonEmpty = Field(alias="HEADRACE_STAGE")
    ledger_table: NonEmpty = Field(alias="LEDGER_TABLE")
    # Tests and the local plane point this at a models/ folder; deployed functions read their models.json.
    models_dir: Path | None = Field(default=None, alias="HEADRACE_MODELS_DIR")

    @field_validator("stage")
    @classmethod
    def _known_stage_shape(cls, value: str) -> str:
        Names(value)  # raises ValueError naming the expected pattern
        return value

    @property
    def names(self) -> Names:
        return Names(self.stage)

    @classmethod
    def from_environ(cls: type[S], environ: Mapping[str, str]) -> S:
        try:
            return cls.model_validate(dict(environ))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise SettingsError(f"the {cls.__name__} environment is invalid: {problems}") from None

    @classmethod
    def variables(cls) -> list[str]:
        return [str(f.alias) for f in cls.model_fields.values()]


class BucketStepSettings(StepSettings):
    """Prepare, Evaluate and Register: they read and write the run's files in the data bucket."""

    data_bucket: NonEmpty = Field(alias="DATA_BUCKET")


class RunFailedSettings(StepSettings):
    event_bus_name: NonEmpty = Field(alias="EVENT_BUS_NAME")
