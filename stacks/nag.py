"""The cdk-nag (AwsSolutions) findings Headrace accepts, each with its reason, applied next to its construct.

A suppression names the exact finding: the rule, and for IAM wildcards the very wildcard (`applies_to`,
written as cdk-nag writes it: `Action::s3:List*`, `Resource::<DataStoreBucket9A81F2E1.Arn>/*/incoming/*`).
A new wildcard on the same role is therefore still reported. tests/infrastructure/test_nag.py runs the
AwsSolutions pack over the whole app and fails on every finding that is not accepted here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import IConstruct

PACK = "AwsSolutions"

# --- reasons ------------------------------------------------------------------------------------------------

PINNED_RUNTIME = (
    "The Python runtime is pinned in headrace/layers.py to the one the Powertools and AWS SDK for pandas "
    "layers are published for, matching pyproject's pins; it moves with those pins, deliberately."
)
NO_TRACING = (
    "X-Ray tracing is off by design: the Lambda steps do not trace (the Powertools Tracer costs 0.4 s of "
    "cold start), so a trace would show only the state transitions the ALL-level execution log records."
)
DEAD_LETTER_QUEUE = (
    "This queue is itself a dead-letter queue (of an EventBridge target); what lands here stays 14 days "
    "for an operator, and a queue behind it would only move the question."
)
CDK_NOTIFICATIONS_HANDLER = (
    "CDK's own BucketNotificationsHandler (aws-cdk-lib), which applies the bucket's EventBridge setting at "
    "deploy time; its role and AWSLambdaBasicExecutionRole are CDK's, not configurable."
)
GRANT_ACTIONS = (
    "Action groups that CDK's grant_read / grant_put / grant_read_write_data write (s3:GetObject*, "
    "s3:List*, s3:Abort*, kms:GenerateDataKey*, ...); the resources they apply to are listed and narrow."
)
OBJECT_KEYS = (
    "Key patterns inside the data bucket (headrace/training/layout.py): one model's or every model's "
    "objects of one kind, named by run or content hash at run time."
)
LIST_MODEL_PACKAGES = (
    "sagemaker:ListModelPackages has no resource-level permissions: it is allowed on '*' or not at all "
    "(Service Authorization Reference, Amazon SageMaker)."
)
LIST_TUNING_JOBS = (
    "sagemaker:ListHyperParameterTuningJobs has no resource-level permissions: it is allowed on '*' or not "
    "at all (Service Authorization Reference, Amazon SageMaker); Prepare reads its model's tuning job names."
)
SYNC_LIST_TAGS = (
    "sagemaker:ListTags on '*' is what Step Functions' documented policy for createTrainingJob.sync grants "
    "(https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html); the service calls it itself."
)
MODEL_VERSIONS = (
    "A model's registry versions (model-package/<group>/<n>), models and endpoint configs "
    "(<endpoint>-v<n>) are created per version at run time; the pattern covers that model's only."
)
ECR_TOKEN = (
    "ecr:GetAuthorizationToken (from grant_pull) has no resource-level permissions; the image pull itself "
    "is granted on the asset repository only."
)
PUT_METRIC_DATA = (
    "cloudwatch:PutMetricData has no resource-level permissions; a cloudwatch:namespace condition limits "
    "it to SageMaker's training namespace."
)
GET_METRIC_STATISTICS = (
    "cloudwatch:GetMetricStatistics has no resource-level permissions: it is allowed on '*' or not at all "
    "(Service Authorization Reference, Amazon CloudWatch); the idle sweep reads only AWS/SageMaker "
    "Invocations of its own endpoints."
)
SAGEMAKER_LOGS = (
    "SageMaker writes to its own log group (/aws/sagemaker/TrainingJobs or /aws/sagemaker/Endpoints/<name>) "
    "in streams it names per job or instance; the pattern is that group's streams."
)
LOG_DELIVERY = (
    "Step Functions' log delivery (logs:CreateLogDelivery, logs:DescribeLogGroups, ...) has no "
    "resource-level permissions; CDK grants it with LogOptions, as the Step Functions guide requires."
)
OWN_EXECUTIONS = (
    "CDK's policy for a Distributed Map: the state machine may describe, stop and redrive its own "
    "executions and their child executions, named at run time."
)
INVOKE_VERSIONS = (
    "CDK's LambdaInvoke grants lambda:InvokeFunction on the function and its versions and aliases "
    "(<function ARN>:*): these are the workflow's own step functions."
)

SCALABLE_TARGETS = (
    "Application Auto Scaling: the Describe calls have no resource-level permissions, and a scalable "
    "target's ARN carries an id generated when it is registered, so the deploy steps cannot name it "
    "beforehand (Service Authorization Reference, Application Auto Scaling); the steps touch only their "
    "own endpoints' variants (headrace/serving/autoscaling.py)."
)
TARGET_TRACKING_ALARMS = (
    "The alarms Application Auto Scaling creates for a target-tracking policy are named "
    "TargetTracking-<resource id>-AlarmHigh|AlarmLow-<uuid>: the pattern is the model's endpoint's alarms."
)

EC2_DESCRIBE = (
    "SageMaker's VPC access (ec2:DescribeNetworkInterfaces, DescribeVpcs, DescribeDhcpOptions, "
    "DescribeSubnets, DescribeSecurityGroups): EC2's Describe calls have no resource-level permissions."
)
NETWORK_INTERFACES = (
    "The network interfaces SageMaker creates in the stage's subnets for a job or an endpoint: their ids are "
    "picked at run time; creating one is limited to the stage's subnets and security groups."
)

# AWS managed policies as cdk-nag names them in AwsSolutions-IAM4 findings.
LAMBDA_BASIC_EXECUTION = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
)

# The action groups CDK's grants write (aws-cdk-lib: aws-s3/lib/perms.ts, aws-kms/lib/key.ts).
BUCKET_READ_ACTIONS = ("s3:GetObject*", "s3:GetBucket*", "s3:List*")
BUCKET_PUT_ACTIONS = ("s3:Abort*",)
KEY_ENCRYPT_ACTIONS = ("kms:ReEncrypt*", "kms:GenerateDataKey*")


# --- applying them ------------------------------------------------------------------------------------------


def accept(construct: IConstruct, rule: str, reason: str, *, applies_to: Iterable[str] = ()) -> None:
    """Accept `rule`'s finding on `construct`'s resource; `applies_to` narrows a rule with granular findings
    (IAM4, IAM5) to these exact ones."""
    findings = list(applies_to)
    NagSuppressions.add_resource_suppressions(
        construct, [NagPackSuppression(id=f"{PACK}-{rule}", reason=reason, applies_to=findings or None)]
    )


def accept_by_path(
    stack: Stack, path: str, rule: str, reason: str, *, applies_to: Iterable[str] = ()
) -> None:
    """Accept `rule`'s finding on a resource CDK makes itself and hands out no reference to (a singleton);
    fails the synth if `path` matches nothing."""
    findings = list(applies_to)
    NagSuppressions.add_resource_suppressions_by_path(
        stack, path, [NagPackSuppression(id=f"{PACK}-{rule}", reason=reason, applies_to=findings or None)]
    )


Principal = iam.IRole | lambda_.Function


def accept_wildcards(
    principal: Principal, reason: str, *, actions: Iterable[str] = (), resources: Iterable[str] = ()
) -> None:
    """AwsSolutions-IAM5 on the default policy of `principal`'s role (where CDK's grants and
    `add_to_role_policy` write), for exactly these wildcards; `resources` as `flat` writes them."""
    applies_to = [f"Action::{action}" for action in actions]
    applies_to += [f"Resource::{resource}" for resource in resources]
    accept(_default_policy(principal), "IAM5", reason, applies_to=applies_to)


def accept_unscoped(principal: Principal, reason: str) -> None:
    """`Resource::*`, for the actions `reason` names (each without resource-level permissions)."""
    accept_wildcards(principal, reason, resources=["*"])


def accept_object_grants(
    principal: Principal, bucket: s3.IBucket, *, read: Sequence[str] = (), put: Sequence[str] = ()
) -> None:
    """The findings of `bucket.grant_read(principal, key)` for each `read` key and `bucket.grant_put` for
    each `put` key: CDK's action groups, and the key patterns themselves."""
    actions = (BUCKET_READ_ACTIONS if read else ()) + (BUCKET_PUT_ACTIONS if put else ())
    accept_wildcards(principal, GRANT_ACTIONS, actions=actions)
    keys = [flat(principal, bucket.arn_for_objects(key)) for key in dict.fromkeys([*read, *put])]
    accept_wildcards(principal, OBJECT_KEYS, resources=keys)


def accept_key_grants(principal: Principal) -> None:
    """The kms action groups of a grant that encrypts with the data key (a table's or a bucket's grant)."""
    accept_wildcards(principal, GRANT_ACTIONS, actions=KEY_ENCRYPT_ACTIONS)


def accept_pinned_runtime(function: lambda_.Function) -> None:
    accept(function, "L1", PINNED_RUNTIME)


def accept_workflow(machine: sfn.StateMachine, steps: Iterable[lambda_.IFunction]) -> None:
    """What every Headrace state machine is flagged for: no X-Ray, and on its role CDK's log delivery grant
    (on '*') and LambdaInvoke's grant on each step function's versions."""
    accept(machine, "SF2", NO_TRACING)
    accept_unscoped(machine.role, LOG_DELIVERY)
    versions = [f"{flat(machine, step.function_arn)}:*" for step in steps]
    accept_wildcards(machine.role, INVOKE_VERSIONS, resources=versions)


def accept_distributed_map(machine: sfn.StateMachine) -> None:
    """The wildcards of the policy CDK writes for a state machine with a Distributed Map, each checked to be
    one of this machine's own executions."""
    policy = machine.node.try_find_child("DistributedMapPolicy")
    assert isinstance(policy, iam.Policy), f"{machine.node.path} has no Distributed Map policy"
    stack = Stack.of(machine)
    machine_id = str(stack.resolve(machine.state_machine_arn)["Ref"])
    document = stack.resolve(policy.document)
    wildcards = [
        resource
        for statement in document["Statement"]
        for resource in map(_flatten, _as_list(statement["Resource"]))
        if "*" in resource
    ]
    assert all(":execution:" in w and machine_id in w for w in wildcards), wildcards
    accept(policy, "IAM5", OWN_EXECUTIONS, applies_to=[f"Resource::{w}" for w in wildcards])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _default_policy(principal: Principal) -> IConstruct:
    """The role's default policy; it exists once anything has been granted, so call this after the grant."""
    role = principal.role if isinstance(principal, lambda_.Function) else principal
    policy = role.node.try_find_child("DefaultPolicy") if role is not None else None
    assert policy is not None, f"{principal.node.path}: suppress a finding after the grant that causes it"
    return policy


def flat(scope: IConstruct, value: str) -> str:
    """`value` (an ARN, often with tokens) as cdk-nag flattens it in a finding: a Ref as `<Name>`, a GetAtt as
    `<LogicalId.Attribute>`, a join joined (cdk-nag: utils/flatten-cfn-reference.ts). Resolved in `scope`'s
    stack before CDK turns cross-stack references into imports, as cdk-nag sees them."""
    return _flatten(Stack.of(scope).resolve(value))


def _flatten(node: Any) -> str:
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(_flatten(item) for item in items)
        if "Fn::Sub" in node:
            return _flatten(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{_flatten(resource)}.{_flatten(attribute)}>"
        if "Fn::ImportValue" in node:
            return _flatten(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))
