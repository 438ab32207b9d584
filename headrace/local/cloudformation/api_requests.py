"""The API requests that a template's alarms, schedules and schedule groups become, intrinsics resolved:
CloudFormation's properties are the APIs' parameters, only with looser types (numbers and booleans as
strings, a JSON input as an object)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from headrace.local.cloudformation import ProvisionError
from headrace.local.cloudformation.intrinsics import StackReferences

ALARM_TYPE = "AWS::CloudWatch::Alarm"


def _boolean(value: Any) -> bool:
    return value.lower() == "true" if isinstance(value, str) else bool(value)


def _metric_data_query(query: dict[str, Any]) -> dict[str, Any]:
    query = dict(query)
    if "Period" in query:
        query["Period"] = int(query["Period"])
    if "ReturnData" in query:
        query["ReturnData"] = _boolean(query["ReturnData"])
    if "MetricStat" in query:
        query["MetricStat"] = {**query["MetricStat"], "Period": int(query["MetricStat"]["Period"])}
    return query


def _put_metric_alarm_request(properties: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's alarm properties are PutMetricAlarm's parameters; only their types are looser."""
    request = dict(properties)
    for key in ("EvaluationPeriods", "DatapointsToAlarm", "Period"):
        if key in request:
            request[key] = int(request[key])
    if "Threshold" in request:
        request["Threshold"] = float(request["Threshold"])
    if "ActionsEnabled" in request:
        request["ActionsEnabled"] = _boolean(request["ActionsEnabled"])
    if "Metrics" in request:
        request["Metrics"] = [_metric_data_query(q) for q in request["Metrics"]]
    return request


def generated_alarm_name(stack_name: str, logical_id: str) -> str:
    """CloudFormation names an unnamed alarm <stack>-<logical id>-<suffix>; here the suffix is stable, so that
    an update replaces the alarm instead of adding one."""
    suffix = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    return f"{stack_name}-{logical_id}-{suffix}"


def alarm_requests(
    template: dict[str, Any], stack_name: str, references: StackReferences
) -> list[dict[str, Any]]:
    """PutMetricAlarm requests for the template's AWS::CloudWatch::Alarm resources, intrinsics resolved."""
    requests = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != ALARM_TYPE:
            continue
        try:
            request = _put_metric_alarm_request(references.resolve(resource.get("Properties", {})))
        except (ProvisionError, KeyError, IndexError, TypeError, ValueError) as error:
            raise ProvisionError(f"{stack_name}: alarm {logical_id}: {error}") from error
        request.setdefault("AlarmName", generated_alarm_name(stack_name, logical_id))
        requests.append(request)
    return requests


# --- AWS::Scheduler::Schedule and ScheduleGroup, created after the stack ------------------------------------

SCHEDULE_TYPE = "AWS::Scheduler::Schedule"
SCHEDULE_GROUP_TYPE = "AWS::Scheduler::ScheduleGroup"
# Schedule and group names: 1 to 64 characters (EventBridge Scheduler API reference, CreateSchedule).
SCHEDULE_NAME_LIMIT = 64
# CreateSchedule's members that are integers, which a template may write as strings.
_SCHEDULE_INTEGERS = {
    ("FlexibleTimeWindow", "MaximumWindowInMinutes"),
    ("Target", "RetryPolicy", "MaximumEventAgeInSeconds"),
    ("Target", "RetryPolicy", "MaximumRetryAttempts"),
}


def generated_schedule_name(stack_name: str, logical_id: str) -> str:
    """CloudFormation names an unnamed schedule (or group) <stack>-<logical id>-<suffix> within 64 characters;
    here the suffix is stable, so that an update finds the schedule it created."""
    suffix = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    return f"{stack_name}-{logical_id}"[: SCHEDULE_NAME_LIMIT - len(suffix) - 1] + f"-{suffix}"


def schedule_group_requests(
    template: dict[str, Any], stack_name: str, references: StackReferences
) -> dict[str, dict[str, Any]]:
    """CreateScheduleGroup requests for the template's schedule groups, by logical id."""
    requests = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != SCHEDULE_GROUP_TYPE:
            continue
        try:
            properties = references.resolve(resource.get("Properties", {}))
        except (ProvisionError, KeyError, IndexError, TypeError, ValueError) as error:
            raise ProvisionError(f"{stack_name}: schedule group {logical_id}: {error}") from error
        request = {"Name": str(properties.get("Name") or generated_schedule_name(stack_name, logical_id))}
        if properties.get("Tags"):
            request["Tags"] = properties["Tags"]
        requests[logical_id] = request
    return requests


def _create_schedule_request(properties: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's schedule properties are CreateSchedule's parameters; only their types are looser."""
    request = {key: value for key, value in properties.items() if value is not None}
    # Scheduler's default; said out loud because moto's UpdateSchedule sets a missing State to None.
    request.setdefault("State", "ENABLED")
    for path in _SCHEDULE_INTEGERS:
        *parents, key = path
        container: Any = request
        for parent in parents:
            container = container.get(parent) if isinstance(container, dict) else None
        if isinstance(container, dict) and key in container:
            container[key] = int(container[key])
    target = request.get("Target")
    if isinstance(target, dict) and isinstance(target.get("Input"), dict | list):
        target["Input"] = json.dumps(target["Input"])  # a template may give the JSON input as an object
    return request


def schedule_requests(
    template: dict[str, Any], stack_name: str, references: StackReferences
) -> list[dict[str, Any]]:
    """CreateSchedule requests for the template's AWS::Scheduler::Schedule resources, intrinsics resolved."""
    requests = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != SCHEDULE_TYPE:
            continue
        try:
            request = _create_schedule_request(references.resolve(resource.get("Properties", {})))
            missing = {"ScheduleExpression", "FlexibleTimeWindow", "Target"} - set(request)
            if missing:
                raise ProvisionError(f"missing {', '.join(sorted(missing))}")
        except (ProvisionError, KeyError, IndexError, TypeError, ValueError) as error:
            raise ProvisionError(f"{stack_name}: schedule {logical_id}: {error}") from error
        request.setdefault("Name", generated_schedule_name(stack_name, logical_id))
        requests.append(request)
    return requests


# --- AWS::SQS::QueuePolicy and AWS::S3::BucketPolicy, applied after the stack ------------------------------

QUEUE_POLICY_TYPE = "AWS::SQS::QueuePolicy"
BUCKET_POLICY_TYPE = "AWS::S3::BucketPolicy"


def queue_policy_requests(
    template: dict[str, Any], stack_name: str, references: StackReferences
) -> list[dict[str, Any]]:
    """SetQueueAttributes requests (the Policy attribute) for every queue each QueuePolicy names."""
    requests = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != QUEUE_POLICY_TYPE:
            continue
        try:
            properties = references.resolve(resource.get("Properties", {}))
            document = json.dumps(properties["PolicyDocument"])
            requests += [
                {"QueueUrl": str(url), "Attributes": {"Policy": document}} for url in properties["Queues"]
            ]
        except (ProvisionError, KeyError, IndexError, TypeError, ValueError) as error:
            raise ProvisionError(f"{stack_name}: queue policy {logical_id}: {error}") from error
    return requests


def bucket_policy_requests(
    template: dict[str, Any], stack_name: str, references: StackReferences
) -> list[dict[str, Any]]:
    """PutBucketPolicy requests for the template's bucket policies, intrinsics resolved."""
    requests = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != BUCKET_POLICY_TYPE:
            continue
        try:
            properties = references.resolve(resource.get("Properties", {}))
            requests.append(
                {"Bucket": str(properties["Bucket"]), "Policy": json.dumps(properties["PolicyDocument"])}
            )
        except (ProvisionError, KeyError, IndexError, TypeError, ValueError) as error:
            raise ProvisionError(f"{stack_name}: bucket policy {logical_id}: {error}") from error
    return requests


TOPIC_POLICY_TYPE = "AWS::SNS::TopicPolicy"


def topic_policy_requests(
    template: dict[str, Any], stack_name: str, references: StackReferences
) -> list[dict[str, Any]]:
    """SetTopicAttributes requests (the Policy attribute) for every topic each TopicPolicy names."""
    requests = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != TOPIC_POLICY_TYPE:
            continue
        try:
            properties = references.resolve(resource.get("Properties", {}))
            document = json.dumps(properties["PolicyDocument"])
            requests += [
                {"TopicArn": str(arn), "AttributeName": "Policy", "AttributeValue": document}
                for arn in properties["Topics"]
            ]
        except (ProvisionError, KeyError, IndexError, TypeError, ValueError) as error:
            raise ProvisionError(f"{stack_name}: topic policy {logical_id}: {error}") from error
    return requests


MODEL_PACKAGE_GROUP_TYPE = "AWS::SageMaker::ModelPackageGroup"


def model_package_group_requests(
    template: dict[str, Any], stack_name: str, references: StackReferences
) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """CreateModelPackageGroup requests for the template's model package groups, each with the
    PutModelPackageGroupPolicy request of its ModelPackageGroupPolicy (None without one)."""
    requests: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != MODEL_PACKAGE_GROUP_TYPE:
            continue
        try:
            properties = references.resolve(resource.get("Properties", {}))
            name = str(properties["ModelPackageGroupName"])
            create: dict[str, Any] = {"ModelPackageGroupName": name}
            if description := properties.get("ModelPackageGroupDescription"):
                create["ModelPackageGroupDescription"] = str(description)
            if tags := properties.get("Tags"):
                create["Tags"] = [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in tags]
            policy = properties.get("ModelPackageGroupPolicy")
            put = (
                {
                    "ModelPackageGroupName": name,
                    "ResourcePolicy": policy if isinstance(policy, str) else json.dumps(policy),
                }
                if policy
                else None
            )
        except (ProvisionError, KeyError, IndexError, TypeError, ValueError) as error:
            raise ProvisionError(f"{stack_name}: model package group {logical_id}: {error}") from error
        requests.append((create, put))
    return requests
