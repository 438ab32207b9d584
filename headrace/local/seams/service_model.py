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

import regex  # type: ignore[import-untyped]
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
    """Raise RequestInvalid when `params` (the request's JSON body, parsed) breaks `operation`'s input shape."""
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
    found: list[str] = []
    meta = shape.metadata
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                found.extend(_service_constraints(value[name], member, _path(path, name)))
        return found
    if isinstance(shape, ListShape) and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            found.append(_violation(value, path, f"have length less than or equal to {meta['max']}"))
        for index, item in enumerate(value, start=1):
            found.extend(_service_constraints(item, shape.member, f"{path}.{index}.member"))
        return found
    if isinstance(shape, MapShape) and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            found.append(_violation(value, path, f"have length less than or equal to {meta['max']}"))
        for key, item in value.items():
            found.extend(_service_constraints(key, shape.key, f"{path}.{key}.key"))
            found.extend(_service_constraints(item, shape.value, f"{path}.{key}.value"))
        return found
    if isinstance(value, str) and shape.type_name == "string":
        if "max" in meta and len(value) > meta["max"]:
            found.append(_violation(value, path, f"have length less than or equal to {meta['max']}"))
        enum = shape.enum
        if enum and value not in enum:
            found.append(_violation(value, path, f"satisfy enum value set: [{', '.join(enum)}]"))
        pattern = meta.get("pattern")
        compiled = _compiled(pattern) if pattern else None
        if compiled is not None and compiled.fullmatch(value) is None:
            found.append(_violation(value, path, f"satisfy regular expression pattern: {pattern}"))
        return found
    numeric = shape.type_name in ("integer", "long", "float", "double")
    if numeric and isinstance(value, int | float) and not isinstance(value, bool):
        if "max" in meta and value > meta["max"]:
            found.append(_violation(value, path, f"have value less than or equal to {meta['max']}"))
    return found


@functools.cache
def _compiled(pattern: str) -> Any:
    """`pattern` as the service matches it, or None where the Java regular expression has no reading here."""
    try:
        return regex.compile(pattern.replace(_SURROGATE_PAIRS, _SUPPLEMENTARY))
    except regex.error:
        log.debug("the service model's pattern %r is not enforced locally", pattern)
        return None
