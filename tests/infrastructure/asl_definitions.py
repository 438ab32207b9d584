"""The state machines of a synthesized stage as Step Functions would receive them: each definition's
`Fn::Join` of strings and intrinsics resolved to plausible values (pseudo parameters of one example account,
a Ref or GetAtt as the name or ARN of its resource, a data-stack import as the data stack's value).

The values are made up; what matters is that the result is the JSON the service parses, with ARNs where
ARNs go, so that a validator sees what Step Functions would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
PSEUDO_PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
}

# Resource types whose Ref is an ARN or a URL (CloudFormation's per-type "Return values"); any other Ref is
# a name, made here from the logical ID.
_REF_IS_ARN = {"AWS::SNS::Topic", "AWS::StepFunctions::StateMachine", "AWS::KMS::Key"}
_REF_IS_URL = {"AWS::SQS::Queue"}
# ARN layouts by resource type (service, resource prefix); the rest get "<service>:<region>:<account>:<id>".
_ARN_LAYOUT = {
    "AWS::Lambda::Function": ("lambda", "function:"),
    "AWS::IAM::Role": ("iam", "role/"),
    "AWS::KMS::Key": ("kms", "key/"),
    "AWS::SQS::Queue": ("sqs", ""),
    "AWS::SNS::Topic": ("sns", ""),
    "AWS::S3::Bucket": ("s3", ""),
    "AWS::DynamoDB::Table": ("dynamodb", "table/"),
    "AWS::Events::EventBus": ("events", "event-bus/"),
    "AWS::StepFunctions::StateMachine": ("states", "stateMachine:"),
}
_GLOBAL_SERVICES = {"iam", "s3"}


@dataclass(frozen=True)
class StackTemplates:
    """One stage's two templates (as `Template.to_json()` gives them)."""

    data: Mapping[str, Any]
    pipeline: Mapping[str, Any]


def state_machines(stage: StackTemplates) -> dict[str, dict[str, Any]]:
    """Every state machine of the pipeline stack: logical ID -> its definition, resolved."""
    machines = {}
    for logical_id, resource in stage.pipeline["Resources"].items():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        text = _resolve(resource["Properties"]["DefinitionString"], stage.pipeline, stage)
        machines[logical_id] = json.loads(text)
    return machines


def states(definition: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state of a definition with its path (`Outer/Map/Inner`), inside Map and Parallel states too."""
    for name, state in definition["States"].items():
        here = f"{path}/{name}" if path else name
        yield here, state
        for nested in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if nested:
                yield from states(nested, here)


def _resolve(value: Any, template: Mapping[str, Any], stage: StackTemplates) -> str:
    if isinstance(value, str):
        return value
    [(function, argument)] = value.items()
    if function == "Fn::Join":
        separator, parts = argument
        return str(separator).join(_resolve(part, template, stage) for part in parts)
    if function == "Ref":
        return _ref(str(argument), template)
    if function == "Fn::GetAtt":
        logical_id, attribute = argument
        return _get_att(logical_id, attribute, template)
    if function == "Fn::Sub" and isinstance(argument, str):
        return re.sub(r"\$\{([^}]+)\}", lambda m: _sub(m.group(1), template), argument)
    if function == "Fn::ImportValue":
        return _import(str(argument), stage)
    raise AssertionError(f"no resolution for {function} in a state machine definition: {value}")


def _sub(name: str, template: Mapping[str, Any]) -> str:
    if "." in name:
        logical_id, attribute = name.split(".", 1)
        return _get_att(logical_id, attribute, template)
    return _ref(name, template)


def _ref(name: str, template: Mapping[str, Any]) -> str:
    if name in PSEUDO_PARAMETERS:
        return PSEUDO_PARAMETERS[name]
    resource_type = template["Resources"][name]["Type"]
    if resource_type in _REF_IS_ARN:
        return _arn(name, resource_type)
    if resource_type in _REF_IS_URL:
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name.lower()}"
    return name.lower()


def _get_att(logical_id: str, attribute: str, template: Mapping[str, Any]) -> str:
    resource_type = template["Resources"][logical_id]["Type"]
    if attribute == "Arn":
        return _arn(logical_id, resource_type)
    return f"{logical_id.lower()}-{attribute.lower()}"


def _arn(logical_id: str, resource_type: str) -> str:
    service, prefix = _ARN_LAYOUT.get(resource_type, (resource_type.split("::")[1].lower(), ""))
    region = "" if service in _GLOBAL_SERVICES else REGION
    account = "" if service == "s3" else ACCOUNT
    return f"arn:aws:{service}:{region}:{account}:{prefix}{logical_id.lower()}"


def _import(export_name: str, stage: StackTemplates) -> str:
    """An import as the data stack exports it: the export's value, resolved in the data stack."""
    [value] = [
        output["Value"]
        for output in stage.data.get("Outputs", {}).values()
        if output.get("Export", {}).get("Name") == export_name
    ]
    return _resolve(value, stage.data, stage)
