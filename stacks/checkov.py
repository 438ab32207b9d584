"""The checkov findings Headrace accepts, each with its reason, written next to its construct.

checkov reads a skip from the resource's template metadata (`Metadata: {checkov: {skip: [{id, comment}]}}`)
and reports the check as skipped with that comment. tests/infrastructure/test_checkov.py runs checkov over
every stage's templates and fails on every finding not accepted here, and on a skip without a reason.
"""

from __future__ import annotations

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import IConstruct

# --- reasons ------------------------------------------------------------------------------------------------

RESERVED_CONCURRENCY = (
    "No reserved concurrency: a reservation is taken from the account's pool, and Lambda refuses one that "
    "leaves less than 100 unreserved (Lambda developer guide, 'Configuring reserved concurrency'); in an "
    "account with the default or a new-account quota, reserving for every function would fail the deploy. "
    "The workflows bound how often their steps run."
)
SYNCHRONOUS_STEP = (
    "Invoked synchronously by its state machine (a Task state, RequestResponse): Lambda sends only "
    "asynchronous invocations to a dead-letter queue; a failure returns to the Task, whose Retry and Catch "
    "handle it. The asynchronously invoked functions have their own dead-letter queue."
)
NO_VPC = (
    "The functions call AWS APIs only (S3, DynamoDB, SageMaker, EventBridge, CloudWatch) over TLS and reach "
    "no private resource; in a VPC they would need a NAT gateway or an interface endpoint per service. "
    "Training jobs and endpoints, which run the model code, go in the stage's VPC when it has one."
)
ENVIRONMENT_KEY = (
    "Lambda already encrypts environment variables at rest with an AWS managed key; these hold resource "
    "names and settings, never a secret (test_stages.py: test_no_template_carries_a_credential), so a "
    "customer managed key would add a key grant to every function and protect nothing more."
)
CDK_NOTIFICATIONS_HANDLER = (
    "CDK's own BucketNotificationsHandler (aws-cdk-lib), a custom resource that runs during deployments "
    "only: CloudFormation waits for its answer and fails the deployment without one. CDK exposes no "
    "concurrency, dead-letter or VPC setting for it."
)
LOG_BUCKET_LOGS = (
    "This bucket receives the data bucket's server access logs: logging its own access would need another "
    "bucket, whose access would need another."
)
SINGLE_REGION_TRAIL = (
    "A data-events trail of the data bucket only (CloudTrail data events of one bucket in one region): "
    "account-wide, multi-region management events are the account's trail's concern, not a stage's."
)

# --- applying them ------------------------------------------------------------------------------------------


def accept(construct: IConstruct, check: str, reason: str) -> None:
    """Accept `check` on `construct`'s resource (the construct itself or its default child)."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    assert isinstance(resource, CfnResource), f"{construct.node.path} has no CloudFormation resource"
    current = resource.get_metadata("checkov") or {}
    skips = [skip for skip in current.get("skip", []) if skip["id"] != check]
    resource.add_metadata("checkov", {**current, "skip": [*skips, {"id": check, "comment": reason}]})


def accept_by_path(stack: Stack, path: str, check: str, reason: str) -> None:
    """Accept `check` on a resource CDK makes itself and hands out no reference to (a singleton); fails the
    synth if `path` (relative to the stack) matches nothing."""
    construct = stack.node.try_find_child(path.split("/")[0])
    for part in path.split("/")[1:]:
        construct = construct.node.try_find_child(part) if construct is not None else None
    assert construct is not None, f"{stack.node.path}/{path} does not exist"
    accept(construct, check, reason)


def accept_function(function: lambda_.Function, *, invoked_async: bool) -> None:
    """What every Headrace function is flagged for; a workflow step (invoked synchronously) has no DLQ."""
    accept(function, "CKV_AWS_115", RESERVED_CONCURRENCY)
    accept(function, "CKV_AWS_117", NO_VPC)
    accept(function, "CKV_AWS_173", ENVIRONMENT_KEY)
    if not invoked_async:
        accept(function, "CKV_AWS_116", SYNCHRONOUS_STEP)
