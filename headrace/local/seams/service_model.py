"""Requests checked against botocore's service model, as the AWS service checks them before acting.

moto accepts almost any request body; AWS refuses what its API model does not allow, with a 400
ValidationException. Step Functions' service integrations make this matter: moto's ASL interpreter sends
their parameters with botocore's own client-side validation switched off (`parameter_validation=False`,
moto/stepfunctions/parser/asl/utils/boto_client.py), so an invalid parameter block reaches the local API
unchecked where AWS would refuse it.

Two passes over the operation's input shape:
- botocore's `ParamValidator` (what boto3 checks client-side): required members, unknown members, types,
  minimum lengths and values;
- the constraints botocore leaves to the service (maximum lengths and values, enums, patterns), reported as
  AWS's request validation words them: "Value '...' at 'stoppingCondition.maxRuntimeInSeconds' failed to
  satisfy constraint: Member must ...", the path in lower camel case, list items as `name.N.member`.
Patterns are Java regular expressions matched against the whole value (Java's `Pattern.matches`); the
`regex` module reads their `\\p{L}` classes, and a pattern it cannot read is not enforced.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
from datetime import UTC, datetime
from typing import Any, Final

import regex
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from botocore.validate import ParamValidator

log = logging.getLogger("headrace.local")

# Java's UTF-16 surrogate-pair range for the supplementary planes, as one code point range.
_SURROGATE_PAIRS: Final = "\\uD800\\uDC00-\\uDBFF\\uDFFF"
_SUPPLEMENTARY: Final = "\\U00010000-\\U0010FFFF"
# Shown values are cut, as AWS cuts them in its messages.
_SHOWN_MAX: Final = 120


class RequestInvalid(Exception):
    """A request the service model refuses: the message lists every violation, each naming its member."""

    def __init__(self, violations: list[str]) -> None:
        count = len(violations)
        noun = "error" if count == 1 else "errors"
        super().__init__(f"{count} validation {noun} detected: {'; '.join(violations)}")
        self.violations = violations


def check_request(operation: OperationModel, params: dict[str, Any]) -> None:
    """Raise RequestInvalid where `params` (the request's JSON body, parsed) breaks `operation`'s input."""
    shape = operation.input_shape
    if shape is None:
        return
    typed = _from_wire(params, shape)
    report = ParamValidator().validate(typed, shape)
    violations = report.generate_report().splitlines() if report.has_errors() else []
    violations.extend(_service_constraints(typed, shape, ""))
    if violations:
        raise RequestInvalid(violations)


def _from_wire(value: Any, shape: Shape) -> Any:
    """The JSON protocol's encodings back into the Python values botocore validates: timestamps arrive as
    epoch seconds, blobs as base64."""
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        members = shape.members
        return {k: _from_wire(v, members[k]) if k in members else v for k, v in value.items()}
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_from_wire(v, shape.member) for v in value]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {k: _from_wire(v, shape.value) for k, v in value.items()}
    if shape.type_name == "timestamp" and isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if shape.type_name == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            return value
    return value


def _path(parent: str, member: str) -> str:
    name = member[:1].lower() + member[1:]
    return f"{parent}.{name}" if parent else name


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _SHOWN_MAX else text[:_SHOWN_MAX] + "..."


def _violation(value: Any, path: str, constraint: str) -> str:
    return f"Value '{_shown(value)}' at '{path}' failed to satisfy constraint: Member must {constraint}"


def _service_constraints(value: Any, shape: Shape, path: str) -> list[str]:
    """Maximum lengths and values, enums and patterns: what botocore leaves to the service."""
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return [
            found
            for name, member in shape.members.items()
            if value.get(name) is not None
            for found in _service_constraints(value[name], member, _path(path, name))
        ]
    if isinstance(shape, ListShape) and isinstance(value, list):
        items = [
            found
            for index, item in enumerate(value, start=1)
            for found in _service_constraints(item, shape.member, f"{path}.{index}.member")
        ]
        return _longest(value, shape, path) + items
    if isinstance(shape, MapShape) and isinstance(value, dict):
        entries = [
            found
            for key, item in value.items()
            for found in _service_constraints(key, shape.key, f"{path}.{key}.key")
            + _service_constraints(item, shape.value, f"{path}.{key}.value")
        ]
        return _longest(value, shape, path) + entries
    if isinstance(value, str) and shape.type_name == "string":
        return _longest(value, shape, path) + _string_values(value, shape, path)
    return _highest(value, shape, path)


def _longest(value: str | list[Any] | dict[str, Any], shape: Shape, path: str) -> list[str]:
    longest = shape.metadata.get("max")
    if longest is not None and len(value) > longest:
        return [_violation(value, path, f"have length less than or equal to {longest}")]
    return []


def _highest(value: Any, shape: Shape, path: str) -> list[str]:
    highest = shape.metadata.get("max")
    numeric = shape.type_name in ("integer", "long", "float", "double")
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric and is_number and highest is not None and value > highest:
        return [_violation(value, path, f"have value less than or equal to {highest}")]
    return []


def _string_values(value: str, shape: Shape, path: str) -> list[str]:
    found: list[str] = []
    if shape.enum and value not in shape.enum:
        found.append(_violation(value, path, f"satisfy enum value set: [{', '.join(shape.enum)}]"))
    pattern = shape.metadata.get("pattern")
    compiled = _compiled(pattern) if pattern else None
    if compiled is not None and compiled.fullmatch(value) is None:
        found.append(_violation(value, path, f"satisfy regular expression pattern: {pattern}"))
    return found


@functools.cache
def _compiled(pattern: str) -> Any:
    """`pattern` as the service matches it, or None where the Java regular expression has no reading here."""
    try:
        return regex.compile(pattern.replace(_SURROGATE_PAIRS, _SUPPLEMENTARY))
    except regex.error:
        log.debug("the service model's pattern %r is not enforced locally", pattern)
        return None
