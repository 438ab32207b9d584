"""A Task state's parameters against the input shape botocore has for the API call Step Functions makes.

Step Functions passes a service-integration Task's `Parameters` to the service API as that API's request,
member names as in the API reference (https://docs.aws.amazon.com/step-functions/latest/dg/connect-parameters.html).
botocore's service models are those API definitions, so a misspelled member, a missing required one or a
value of the wrong JSON type is found here, before the first execution reaches the state on AWS.

A key ending in `.$` (a JSONPath or intrinsic function, resolved at run time) counts as its member, present,
with a type that cannot be known statically.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape

# arn:aws:states:::<service>:<action>[.sync|.sync:2|.waitForTaskToken] (optimized integrations) and
# arn:aws:states:::aws-sdk:<service>:<action>[...] (AWS SDK integrations).
_INTEGRATION = re.compile(
    r"^arn:aws[a-z-]*:states:::(?:aws-sdk:)?(?P<service>[a-z0-9-]+):(?P<action>[A-Za-z0-9]+)"
    r"(?:\.sync(?::2)?|\.waitForTaskToken)?$"
)
# Integration service names that are not botocore's.
_BOTOCORE_SERVICE = {"states": "stepfunctions", "sfn": "stepfunctions"}

# Members Step Functions serializes for the service when given a JSON object where the API takes a string:
# EventBridge PutEvents' Detail (https://docs.aws.amazon.com/step-functions/latest/dg/connect-eventbridge.html).
_JSON_AS_STRING = {("events", "Detail")}

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "character": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    # An ISO 8601 string or epoch seconds, as botocore itself accepts.
    "timestamp": (str, int, float),
}


@dataclass(frozen=True)
class Operation:
    service: str
    name: str

    def input_shape(self) -> StructureShape:
        model = _session().get_service_model(self.service)
        shape = model.operation_model(self.name).input_shape
        assert isinstance(shape, StructureShape), f"{self.service}.{self.name} takes no input"
        return shape


def operation_for(resource: str) -> Operation | None:
    """The API operation a Task's `Resource` calls; None for a resource that is not a service integration
    (a Lambda function's or an activity's ARN)."""
    match = _INTEGRATION.match(resource)
    if match is None:
        return None
    service = _BOTOCORE_SERVICE.get(match["service"], match["service"])
    action = match["action"]
    model = _session().get_service_model(service)
    name = action[0].upper() + action[1:]
    assert name in model.operation_names, f"{resource}: botocore's {service} has no operation {name}"
    return Operation(service, name)


def problems(operation: Operation, parameters: Any) -> list[str]:
    """What in `parameters` the operation's input shape refuses, one line each, located by member path."""
    return list(_check(operation.service, operation.input_shape(), parameters, operation.name))


def _check(service: str, shape: Shape, value: Any, path: str) -> Iterator[str]:
    if isinstance(value, str) and value.startswith("{%"):
        return  # a JSONata expression (a state's Arguments): its type is known only at run time
    if isinstance(shape, StructureShape):
        yield from _check_structure(service, shape, value, path)
    elif isinstance(shape, ListShape):
        if not isinstance(value, list):
            yield f"{path}: expected a list, got {type(value).__name__}"
            return
        for index, item in enumerate(value):
            yield from _check(service, shape.member, item, f"{path}[{index}]")
    elif isinstance(shape, MapShape):
        if not isinstance(value, dict):
            yield f"{path}: expected a map, got {type(value).__name__}"
            return
        for key, item in value.items():
            if not key.endswith(".$"):
                yield from _check(service, shape.value, item, f"{path}.{key}")
    else:
        yield from _check_scalar(service, shape, value, path)


def _check_structure(service: str, shape: StructureShape, value: Any, path: str) -> Iterator[str]:
    if not isinstance(value, dict):
        yield f"{path}: expected an object ({shape.name}), got {type(value).__name__}"
        return
    present = set()
    for key, item in value.items():
        name = key.removesuffix(".$")
        present.add(name)
        if name not in shape.members:
            yield f"{path}.{name}: not a member of {shape.name}"
        elif not key.endswith(".$"):
            yield from _check(service, shape.members[name], item, f"{path}.{name}")
    for name in shape.required_members:
        if name not in present:
            yield f"{path}.{name}: required by {shape.name}, missing"


def _check_scalar(service: str, shape: Shape, value: Any, path: str) -> Iterator[str]:
    member = path.rsplit(".", 1)[-1]
    serialized = (service, member) in _JSON_AS_STRING and isinstance(value, dict | list)
    if shape.type_name == "blob" or serialized:
        # Step Functions sends a JSON value for a blob (lambda:invoke's Payload) and serializes it itself.
        return
    expected = _JSON_TYPES.get(shape.type_name, ())
    if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
        yield f"{path}: expected {shape.type_name}, got {type(value).__name__} {value!r}"
        return
    enum = shape.enum if shape.type_name == "string" else []
    if enum and value not in enum:
        yield f"{path}: {value!r} is not one of {shape.name}'s values {enum}"


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()
