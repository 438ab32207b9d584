"""What the provisioner reads of moto's CloudFormation (moto 5.2.5, pinned): which resource types it models,
and a created stack's resource attributes (Fn::GetAtt); and the AWS-owned SSM parameters a template reads,
which it writes into moto's SSM. All in this process (the server runs here)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.cloudformation.models import cloudformation_backends
from moto.cloudformation.parsing import resource_class_from_type
from moto.ssm.models import Parameter, ssm_backends


def models_resource_type(resource_type: str) -> bool:
    """Whether moto's CloudFormation creates resources of this type (others it reports created and skips)."""
    return bool(resource_class_from_type(resource_type))


def stack_attribute(account: str, region: str, stack_name: str) -> Callable[[str, str], Any]:
    """Fn::GetAtt as moto's CloudFormation answers it for the stack's resources; None where it cannot."""

    def attribute(logical_id: str, name: str) -> Any:
        try:
            resource = cloudformation_backends[account][region].get_stack(stack_name).resource_map[logical_id]
            return resource.get_cfn_attribute(name) if resource is not None else None
        except Exception:  # not in the stack, or an attribute moto does not model
            return None

    return attribute


def publish_aws_parameter(account: str, region: str, name: str, value: str) -> None:
    """Create an AWS-owned public SSM parameter (`/aws/service/...`), which the SSM API refuses to write.

    CDK templates resolve managed layer ARNs and the bootstrap version through such parameters.
    """
    backend = ssm_backends[account][region]
    versions = backend._parameters[name]
    versions.append(
        Parameter(  # type: ignore[abstract]
            account_id=account,
            name=name,
            value=value,
            parameter_type="String",
            description="published by the Headrace local plane",
            allowed_pattern=None,
            keyid=None,
            last_modified_date=datetime.now(UTC),
            version=len(versions) + 1,
            data_type="text",
        )
    )
