"""What every function's handler builds once per environment: typed settings, models, observability.

Every variable is required: a missing one is a broken deployment and fails loudly, naming the variable.
Nothing is read at import: tests and the local plane may set the environment whenever they like, and a
handler rebuilds its runtime when the environment it depends on changes (in Lambda: once, at cold start).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, ClassVar, Generic, TypeVar

from aws_lambda_powertools import Logger, Metrics
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from headrace.config import ModelConfig, load_models, parse_models_document
from headrace.naming import Names

# Besides the settings: where and how boto3 connects.
CONNECTION_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")

NonEmpty = Annotated[str, Field(min_length=1)]
S = TypeVar("S", bound="FunctionSettings")
P = TypeVar("P")
R = TypeVar("R")


class SettingsError(RuntimeError):
    """The function's environment is incomplete or malformed; the message names each variable."""


class FunctionSettings(BaseModel):
    """What every function reads: who it is, where it reports, the ledger and the models."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    # Whose environment an error message names; the class name when unset.
    owner: ClassVar[str | None] = None

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
            raise SettingsError(
                f"the {cls.owner or cls.__name__} environment is invalid: {problems}"
            ) from None

    @classmethod
    def variables(cls) -> list[str]:
        return [str(f.alias) for f in cls.model_fields.values()]


class BusSettings(FunctionSettings):
    """A function that announces what it did on the deployment's event bus."""

    event_bus_name: NonEmpty = Field(alias="EVENT_BUS_NAME")


@dataclass(frozen=True)
class Runtime(Generic[S, P]):
    """What a handler builds once per environment: its settings, the deployment's models and its domain's
    ports bundle."""

    settings: S
    models: dict[str, ModelConfig]
    ports: P


def models_for(settings: FunctionSettings, document: Path) -> dict[str, ModelConfig]:
    """The deployment's models: `HEADRACE_MODELS_DIR` when set, else the asset's models.json."""
    if settings.models_dir is not None:
        return {m.name: m for m in load_models(settings.models_dir)}
    try:
        return parse_models_document(document.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise SettingsError(
            f"cannot read the models document {document}: {exc}; "
            "ship models.json with the function (the CDK asset does) or set HEADRACE_MODELS_DIR"
        ) from None


def observe(settings: FunctionSettings, logger: Logger, metrics: Metrics, *, domain: str) -> None:
    """Name the handler's Logger and Metrics from the settings (the environment may be set after import),
    and route the `domain` package's stdlib logs through the Logger's JSON handler, so every line carries
    the same appended keys."""
    metrics.namespace = settings.metrics_namespace
    metrics.service = settings.service_name
    logger.append_keys(service=settings.service_name)
    domain_log = logging.getLogger(domain)
    if logger.registered_handler not in domain_log.handlers:
        domain_log.addHandler(logger.registered_handler)
    domain_log.setLevel(logger.log_level)
    domain_log.propagate = False


def per_environment(
    settings_type: type[S], *, logger: Logger, metrics: Metrics, domain: str
) -> Callable[[Callable[[S], R]], Callable[[], R]]:
    """Decorate a handler's runtime builder: it gets the parsed settings, with the Logger and Metrics already
    named, and runs once per distinct environment (the settings' variables and boto3's connection ones)."""
    variables = (*settings_type.variables(), *CONNECTION_VARIABLES)

    def decorate(build: Callable[[S], R]) -> Callable[[], R]:
        @cache
        def built(environment: tuple[str | None, ...]) -> R:
            settings = settings_type.from_environ(os.environ)
            observe(settings, logger, metrics, domain=domain)
            return build(settings)

        def current() -> R:
            return built(tuple(os.environ.get(name) for name in variables))

        current.__doc__ = build.__doc__
        return current

    return decorate
