"""A model package group's resource policy, which moto (5.2.5) does not model: Put-, Get- and
DeleteModelPackageGroupPolicy (https://docs.aws.amazon.com/sagemaker/latest/APIReference/
API_PutModelPackageGroupPolicy.html) keep it on moto's group, where the plane's IAM reads it
(seams/iam_policies.py) to let other accounts read the group's versions, as a source stage's stacks grant
the stages that promote from it (stacks/promotion.py)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from moto.core.responses import ActionResult
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.responses import SageMakerResponse

from headrace.local.seams.iam_policies import GROUP_POLICY_ATTRIBUTE

# ResourcePolicy: at most 20,480 characters (API_PutModelPackageGroupPolicy, Request Parameters).
POLICY_MAX_CHARS = 20_480


def _group(response: SageMakerResponse) -> Any:
    """The group the request names, by name or ARN (the API takes either)."""
    name = str(response._get_param("ModelPackageGroupName"))
    return response.sagemaker_backend.describe_model_package_group(name.rsplit("/", 1)[-1])


def put_model_package_group_policy(response: SageMakerResponse) -> ActionResult:
    group = _group(response)
    policy = str(response._get_param("ResourcePolicy") or "")
    if not 1 <= len(policy) <= POLICY_MAX_CHARS:
        raise ValidationError(f"ResourcePolicy must be 1 to {POLICY_MAX_CHARS} characters")
    try:
        parsed = json.loads(policy)
    except ValueError:
        raise ValidationError("ResourcePolicy is not a valid JSON policy document") from None
    if not isinstance(parsed, dict) or "Statement" not in parsed:
        raise ValidationError("ResourcePolicy is not a valid JSON policy document")
    setattr(group, GROUP_POLICY_ATTRIBUTE, policy)
    return ActionResult({"ModelPackageGroupArn": group.arn})


def get_model_package_group_policy(response: SageMakerResponse) -> ActionResult:
    # A group without a policy: the common ValidationError (400), as SageMaker answers it ("Cannot find
    # resource policy ..."); the action names no error of its own (API_GetModelPackageGroupPolicy.html,
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html).
    group = _group(response)
    policy = getattr(group, GROUP_POLICY_ATTRIBUTE, None)
    if not policy:
        raise ValidationError(f"Cannot find resource policy for {group.arn}")
    return ActionResult({"ResourcePolicy": policy})


def delete_model_package_group_policy(response: SageMakerResponse) -> ActionResult:
    group = _group(response)
    if not getattr(group, GROUP_POLICY_ATTRIBUTE, None):
        raise ValidationError(f"Cannot find resource policy for {group.arn}")
    setattr(group, GROUP_POLICY_ATTRIBUTE, None)
    return ActionResult({})


_OPERATIONS = {
    "put_model_package_group_policy": put_model_package_group_policy,
    "get_model_package_group_policy": get_model_package_group_policy,
    "delete_model_package_group_policy": delete_model_package_group_policy,
}


@contextlib.contextmanager
def group_policies_installed() -> Iterator[None]:
    for name, operation in _OPERATIONS.items():
        setattr(SageMakerResponse, name, operation)
    try:
        yield
    finally:
        for name in _OPERATIONS:
            delattr(SageMakerResponse, name)
