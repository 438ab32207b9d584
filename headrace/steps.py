"""What every state machine step shares, whichever domain it belongs to: the payload base, the execution
the state machine passes in, parsing a payload with errors that name each field, what a Catch hands on, and
finding the payload's model among the deployment's.

A handler reads: `parse_request(Request, event)` -> `domain(request, model_named(models, request.model),
ports)` -> `result.model_dump(mode="json")`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from headrace.config import ModelConfig

NonEmpty = Annotated[str, Field(min_length=1)]

T = TypeVar("T", bound=BaseModel)


class InvalidRequest(ValueError):
    """A step's payload does not have the shape the state machine sends; the message names each field."""


class UnknownModel(LookupError):
    """The payload names a model this deployment does not have."""


def parse_request(model: type[T], event: Any) -> T:
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], str(e["msg"])) for e in exc.errors())
        raise InvalidRequest(f"invalid {model.__name__} payload: {problems}") from None


def _problem(location: tuple[int | str, ...], message: str) -> str:
    field = ".".join(str(part) for part in location) or "(payload)"
    return f"{field}: {message.removeprefix('Value error, ')}"


def model_named(models: Mapping[str, ModelConfig], name: str) -> ModelConfig:
    if name not in models:
        raise UnknownModel(f"no model named '{name}' in this deployment (known: {', '.join(sorted(models))})")
    return models[name]


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True)


class Execution(Payload):
    """`$$.Execution.Name` and `$$.Execution.Id` (the execution's ARN), passed in by the state machine."""

    # Step Functions limits execution names to 80 characters.
    name: Annotated[str, Field(min_length=1, max_length=80)]
    id: NonEmpty


class StepError(Payload):
    """What Step Functions puts at a Catch's ResultPath: the error name and its cause (often JSON)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    error: str = Field(alias="Error")
    cause: str | None = Field(default=None, alias="Cause")
