"""CloudFormation's intrinsic functions and pseudo parameters, resolved against a stack that exists: for the
resources the plane creates itself after the stack (deferred.py) and for asset destinations."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from headrace.local.cloudformation import ProvisionError

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def substitute_pseudo_parameters(text: str, account: str, region: str) -> str:
    """`${AWS::AccountId}`, `${AWS::Region}` and `${AWS::Partition}` in an asset manifest's text."""
    return (
        text.replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )


def pseudo_parameters(account: str, region: str, stack_name: str) -> dict[str, str]:
    return {
        "AWS::AccountId": account,
        "AWS::Region": region,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": stack_name,
    }


def _no_attribute(logical_id: str, name: str) -> Any:
    return None


@dataclass(frozen=True)
class StackReferences:
    """What a template's intrinsic functions resolve to once its stack exists: the resources' physical ids
    (Ref), their attributes (Fn::GetAtt), pseudo parameters and other stacks' exports."""

    physical_ids: Mapping[str, str]
    pseudo_parameters: Mapping[str, str]
    exports: Mapping[str, str] = field(default_factory=dict)
    attribute: Callable[[str, str], Any] = _no_attribute

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (function, argument), *_ = value.items()
            handlers: dict[str, Callable[[Any], Any]] = {
                "Ref": self._ref,
                "Fn::GetAtt": self._get_att,
                "Fn::Join": lambda a: str(a[0]).join(str(part) for part in self.resolve(a[1])),
                "Fn::Sub": self._sub,
                "Fn::Select": lambda a: self.resolve(a[1])[int(self.resolve(a[0]))],
                "Fn::ImportValue": self._import,
            }
            if function in handlers:
                return handlers[function](argument)
            if function.startswith("Fn::"):
                raise ProvisionError(f"{function} is not resolved locally")
        return {key: self.resolve(v) for key, v in value.items()}

    def _ref(self, name: str) -> str:
        value = self.pseudo_parameters.get(name) or self.physical_ids.get(name)
        if not value:
            raise ProvisionError(f"cannot resolve Ref {name}")
        return value

    def _get_att(self, argument: list[str] | str) -> Any:
        logical_id, name = argument.split(".", 1) if isinstance(argument, str) else argument
        value = self.attribute(logical_id, self.resolve(name))
        if value is None:
            raise ProvisionError(f"cannot resolve Fn::GetAtt {logical_id}.{name}")
        return value

    def _sub(self, argument: list[Any] | str) -> str:
        template, variables = (argument, {}) if isinstance(argument, str) else argument
        resolved = {key: str(self.resolve(v)) for key, v in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} stands for the text ${Literal}
            if name in resolved:
                return resolved[name]
            if "." in name and not name.startswith("AWS::"):
                return str(self._get_att(name))
            return self._ref(name)

        return _SUB_VARIABLE.sub(substitute, str(template))

    def _import(self, name: Any) -> str:
        export = str(self.resolve(name))
        if export not in self.exports:
            raise ProvisionError(f"no stack exports {export}")
        return self.exports[export]
