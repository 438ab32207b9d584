"""The resources the plane provisions itself once their stack exists, from the template.

- `Custom::S3BucketNotifications` would wait forever for a handler that runs in Docker: it is taken out of
  the template and its NotificationConfiguration applied with the S3 API after the stack is created.
- `AWS::CloudWatch::Alarm`, which moto's CloudFormation reports created without creating it, is created with
  PutMetricAlarm after the stack, its intrinsics resolved against the stack (the plane's alarm evaluator
  evaluates it).
- `AWS::Scheduler::Schedule` and `AWS::Scheduler::ScheduleGroup`, skipped the same way, are created with
  the Scheduler API after the stack (the plane's schedule runner fires them).
- Bucket properties moto's CloudFormation ignores (versioning, the public access block) are applied.
- `AWS::SQS::QueuePolicy`, `AWS::SNS::TopicPolicy` and `AWS::S3::BucketPolicy`, which moto's CloudFormation
  does not model, are set with SetQueueAttributes, SetTopicAttributes and PutBucketPolicy, so that the
  plane's IAM (seams/iam_policies.py) reads and enforces them.
- `AWS::SageMaker::ModelPackageGroup` (a source stage's groups, with the policy that lets the stages that
  promote from it read them: stacks/promotion.py), which moto's CloudFormation does not model, is created
  with CreateModelPackageGroup and its policy set with PutModelPackageGroupPolicy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError, ParamValidationError

from headrace.local.aws import Clients
from headrace.local.cloudformation import ProvisionError
from headrace.local.cloudformation.api_requests import (
    ALARM_TYPE,
    BUCKET_POLICY_TYPE,
    MODEL_PACKAGE_GROUP_TYPE,
    QUEUE_POLICY_TYPE,
    SCHEDULE_GROUP_TYPE,
    SCHEDULE_TYPE,
    TOPIC_POLICY_TYPE,
    alarm_requests,
    bucket_policy_requests,
    model_package_group_requests,
    queue_policy_requests,
    schedule_group_requests,
    schedule_requests,
    topic_policy_requests,
)
from headrace.local.cloudformation.intrinsics import StackReferences, pseudo_parameters
from headrace.local.seams.cloudformation import stack_attribute

# Taken out of the template, applied through their own API once the stack exists.
DEFERRED_RESOURCE_TYPES = {"Custom::S3BucketNotifications"}
# Left in the template (moto reports them created and creates nothing), then created through their own API.
CREATED_AFTER_STACK_TYPES = {
    ALARM_TYPE,
    SCHEDULE_TYPE,
    SCHEDULE_GROUP_TYPE,
    QUEUE_POLICY_TYPE,
    BUCKET_POLICY_TYPE,
    TOPIC_POLICY_TYPE,
    MODEL_PACKAGE_GROUP_TYPE,
}


def take_out_deferred(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Remove the resources moto's CloudFormation cannot create from `template`; returned by logical id."""
    deferred = {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") in DEFERRED_RESOURCE_TYPES
    }
    for logical_id in deferred:
        del template["Resources"][logical_id]
    return deferred


class DeferredResources:
    """Creates what moto's CloudFormation skipped in one stack, through the services' own APIs."""

    def __init__(self, clients: Clients, progress: Callable[[str], None]) -> None:
        self._aws = clients
        self._progress = progress

    def apply(
        self,
        stack_name: str,
        template: dict[str, Any],
        deferred: dict[str, dict[str, Any]],
        physical: dict[str, str],
        replace: bool,
    ) -> None:
        """`deferred` as take_out_deferred returned it; `physical` the stack's resources' physical ids;
        `replace`: the stack changed, so existing alarms and schedules are updated too."""
        for logical_id, resource in deferred.items():
            self._apply_deferred(logical_id, resource, physical)
        self._complete_buckets(template, physical)
        self.apply_resource_policies(stack_name, template, physical)
        self.create_model_package_groups(stack_name, template, physical)
        self.create_alarms(stack_name, template, physical, replace=replace)
        self.create_schedules(stack_name, template, physical, replace=replace)

    def _complete_buckets(self, template: dict[str, Any], physical: dict[str, str]) -> None:
        """Bucket properties moto's CloudFormation ignores (5.2.5): versioning and the public access block."""
        for logical_id, resource in template.get("Resources", {}).items():
            if resource.get("Type") != "AWS::S3::Bucket" or not physical.get(logical_id):
                continue
            properties = resource.get("Properties", {})
            bucket = physical[logical_id]
            status = properties.get("VersioningConfiguration", {}).get("Status")
            if status:
                self._aws.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
            block = properties.get("PublicAccessBlockConfiguration")
            if block:
                self._aws.s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)

    def _apply_deferred(self, logical_id: str, resource: dict[str, Any], physical: dict[str, str]) -> None:
        properties = resource.get("Properties", {})
        bucket_ref = properties.get("BucketName", {})
        bucket = physical.get(bucket_ref.get("Ref", "")) if isinstance(bucket_ref, dict) else bucket_ref
        if not bucket:
            raise ProvisionError(f"{logical_id}: cannot resolve its BucketName {bucket_ref!r}")
        configuration = properties.get("NotificationConfiguration", {})
        unsupported = set(configuration) - {"EventBridgeConfiguration"}
        if unsupported:
            raise ProvisionError(
                f"{logical_id}: notification kinds {sorted(unsupported)} are not supported locally"
            )
        self._aws.s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=configuration
        )

    def apply_resource_policies(
        self, stack_name: str, template: dict[str, Any], physical: dict[str, str]
    ) -> None:
        """Set the template's queue, topic and bucket policies (every time: setting one is idempotent)."""
        types = (QUEUE_POLICY_TYPE, TOPIC_POLICY_TYPE, BUCKET_POLICY_TYPE)
        if not any(r.get("Type") in types for r in template.get("Resources", {}).values()):
            return
        references = self._references(stack_name, physical)
        sqs = self._aws.client("sqs")
        for request in queue_policy_requests(template, stack_name, references):
            sqs.set_queue_attributes(**request)
        sns = self._aws.client("sns")
        for request in topic_policy_requests(template, stack_name, references):
            sns.set_topic_attributes(**request)
        for request in bucket_policy_requests(template, stack_name, references):
            self._aws.s3.put_bucket_policy(**request)

    def create_model_package_groups(
        self, stack_name: str, template: dict[str, Any], physical: dict[str, str]
    ) -> None:
        """Create the template's model package groups where missing, and set each one's policy (every time:
        setting it is idempotent)."""
        if not any(r.get("Type") == MODEL_PACKAGE_GROUP_TYPE for r in template.get("Resources", {}).values()):
            return
        references = self._references(stack_name, physical)
        sagemaker = self._aws.client("sagemaker")
        for create, policy in model_package_group_requests(template, stack_name, references):
            try:
                sagemaker.describe_model_package_group(ModelPackageGroupName=create["ModelPackageGroupName"])
            except ClientError:
                sagemaker.create_model_package_group(**create)
            if policy:
                sagemaker.put_model_package_group_policy(**policy)

    def create_alarms(
        self, stack_name: str, template: dict[str, Any], physical: dict[str, str], replace: bool
    ) -> None:
        """Create the template's alarms; those of an unchanged stack only where missing (a restored plane
        keeps its alarms' states)."""
        if not any(r.get("Type") == ALARM_TYPE for r in template.get("Resources", {}).values()):
            return
        references = self._references(stack_name, physical)
        cloudwatch = self._aws.client("cloudwatch")
        requests = alarm_requests(template, stack_name, references)
        if not replace:
            names = [r["AlarmName"] for r in requests]
            existing = {a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]}
            requests = [r for r in requests if r["AlarmName"] not in existing]
        for request in requests:
            cloudwatch.put_metric_alarm(**request)
        if requests:
            self._progress(
                f"{stack_name}: alarms created locally: {', '.join(r['AlarmName'] for r in requests)}"
            )

    def create_schedules(
        self, stack_name: str, template: dict[str, Any], physical: dict[str, str], replace: bool
    ) -> None:
        """Create the template's schedule groups and schedules; update a changed stack's existing schedules,
        leave an unchanged stack's alone (a restored plane keeps them as they were)."""
        resources = template.get("Resources", {}).values()
        if not any(r.get("Type") in (SCHEDULE_TYPE, SCHEDULE_GROUP_TYPE) for r in resources):
            return
        groups, references = self._schedule_references(stack_name, template, physical)
        scheduler = self._aws.client("scheduler")
        existing_groups = {g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]}
        done: dict[str, list[str]] = {"created": [], "updated": []}
        try:
            for group in groups.values():
                if group["Name"] not in existing_groups:
                    scheduler.create_schedule_group(**group)
            for request in schedule_requests(template, stack_name, references):
                name, group_name = request["Name"], request.get("GroupName", "default")
                try:
                    scheduler.get_schedule(Name=name, GroupName=group_name)
                except scheduler.exceptions.ResourceNotFoundException:
                    scheduler.create_schedule(**request)
                    done["created"].append(name)
                    continue
                if replace:
                    scheduler.update_schedule(**request)
                    done["updated"].append(name)
        except (ClientError, ParamValidationError) as error:
            raise ProvisionError(f"{stack_name}: creating its schedules locally failed: {error}") from error
        summary = "; ".join(f"{what} {', '.join(names)}" for what, names in done.items() if names)
        if summary:
            self._progress(f"{stack_name}: schedules {summary} locally")

    def _schedule_references(
        self, stack_name: str, template: dict[str, Any], physical: dict[str, str]
    ) -> tuple[dict[str, dict[str, Any]], StackReferences]:
        """The template's schedule group requests, and the references its schedules resolve against: moto's
        CloudFormation lists no skipped resource, so a group's Ref (its name) and Arn are supplied here."""
        account, region = self._aws.account, self._aws.region
        base = self._references(stack_name, physical)
        in_stack = base.attribute
        groups = schedule_group_requests(template, stack_name, base)
        names = {logical_id: str(group["Name"]) for logical_id, group in groups.items()}

        def attribute(logical_id: str, name: str) -> Any:
            if logical_id in names and name == "Arn":
                return f"arn:aws:scheduler:{region}:{account}:schedule-group/{names[logical_id]}"
            return in_stack(logical_id, name)

        references = StackReferences({**physical, **names}, base.pseudo_parameters, base.exports, attribute)
        return groups, references

    def _references(self, stack_name: str, physical: dict[str, str]) -> StackReferences:
        """How the stack's template resolves in this plane's account and region (Ref, GetAtt, imports)."""
        account, region = self._aws.account, self._aws.region
        return StackReferences(
            physical_ids=physical,
            pseudo_parameters=pseudo_parameters(account, region, stack_name),
            exports=self._exports(),
            attribute=stack_attribute(account, region, stack_name),
        )

    def _exports(self) -> dict[str, str]:
        exports: dict[str, str] = {}
        kwargs: dict[str, str] = {}
        while True:
            page = self._aws.cloudformation.list_exports(**kwargs)
            exports.update({e["Name"]: e["Value"] for e in page.get("Exports", [])})
            if not page.get("NextToken"):
                return exports
            kwargs["NextToken"] = page["NextToken"]
