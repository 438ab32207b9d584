"""What IAM checks for one API call: the action(s), the resource ARN each is checked on, and the condition
keys the request carries (Service Authorization Reference, "Actions, resources, and condition keys").

Most operations are `<service>:<Operation>` on the resource the parameters name. The exceptions are listed
below (S3's object and bucket actions, Lambda's Invoke, DynamoDB's transactions, ...). An operation whose
resource is not modelled here is checked against `*`, which only a `"Resource": "*"` statement matches: a
gap in this table shows up as a denial, never as a silent allow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    action: str
    resource: str
    context: Mapping[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """One API call as botocore makes it: the signing name (IAM prefix), operation and parameters."""

    prefix: str
    operation: str
    params: Mapping[str, Any]
    region: str
    account: str

    def arn(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:aws:{service}:{self.region if region else ''}:{self.account if account else ''}:{resource}"
        )


# S3 operations whose IAM action is not their own name (Service Authorization Reference, Amazon S3).
_S3_OBJECT_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectTagging": "s3:PutObjectTagging",
    "GetObjectAcl": "s3:GetObjectAcl",
    "PutObjectAcl": "s3:PutObjectAcl",
    "ListParts": "s3:ListMultipartUploadParts",
}
# A request naming a VersionId is checked as the version action (Amazon S3 API reference, GetObject:
# "To access a specific version ... you need s3:GetObjectVersion"; likewise for the others).
_S3_VERSION_ACTIONS = {
    "s3:GetObject": "s3:GetObjectVersion",
    "s3:DeleteObject": "s3:DeleteObjectVersion",
    "s3:GetObjectTagging": "s3:GetObjectVersionTagging",
    "s3:PutObjectTagging": "s3:PutObjectVersionTagging",
    "s3:GetObjectAcl": "s3:GetObjectVersionAcl",
    "s3:PutObjectAcl": "s3:PutObjectVersionAcl",
}
_S3_BUCKET_ACTIONS = {
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
}


def _s3(call: Call) -> list[Check]:
    bucket = call.params.get("Bucket", "")
    key = call.params.get("Key")
    op = call.operation
    if op in _S3_OBJECT_ACTIONS:
        action = _S3_OBJECT_ACTIONS[op]
        if call.params.get("VersionId"):
            action = _S3_VERSION_ACTIONS.get(action, action)
        return [Check(action, f"arn:aws:s3:::{bucket}/{key}")]
    if op == "CopyObject":
        source = call.params.get("CopySource")
        if isinstance(source, Mapping):
            versioned = bool(source.get("VersionId"))
            source = f"{source.get('Bucket')}/{source.get('Key')}"
        else:
            versioned = "versionId=" in str(source)
        return [
            Check(
                "s3:GetObjectVersion" if versioned else "s3:GetObject",
                f"arn:aws:s3:::{str(source).lstrip('/').split('?')[0]}",
            ),
            Check("s3:PutObject", f"arn:aws:s3:::{bucket}/{key}"),
        ]
    if op == "DeleteObjects":
        objects = call.params.get("Delete", {}).get("Objects", [])
        return [Check("s3:DeleteObject", f"arn:aws:s3:::{bucket}/{o['Key']}") for o in objects]
    if op in _S3_BUCKET_ACTIONS:
        prefix = call.params.get("Prefix")
        context = {"s3:prefix": [prefix]} if prefix is not None else {}
        return [Check(_S3_BUCKET_ACTIONS[op], f"arn:aws:s3:::{bucket}", context)]
    if op == "ListBuckets":
        return [Check("s3:ListAllMyBuckets", "*")]
    if key:  # an object operation not listed above: checked on the object, never on its bucket
        return [Check(f"s3:{op}", f"arn:aws:s3:::{bucket}/{key}")]
    return [Check(f"s3:{op}", f"arn:aws:s3:::{bucket}" if bucket else "*")]


def _dynamodb(call: Call) -> list[Check]:
    def table(name: str) -> str:
        return name if name.startswith("arn:") else call.arn("dynamodb", f"table/{name}")

    op = call.operation
    if op == "TransactWriteItems":
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        return [
            Check(f"dynamodb:{kinds[kind]}", table(body["TableName"]))
            for item in call.params.get("TransactItems", [])
            for kind, body in item.items()
        ]
    if op == "TransactGetItems":
        return [
            Check("dynamodb:GetItem", table(i["Get"]["TableName"]))
            for i in call.params.get("TransactItems", [])
        ]
    if op in ("BatchWriteItem", "BatchGetItem"):
        return [Check(f"dynamodb:{op}", table(name)) for name in call.params.get("RequestItems", {})]
    name = call.params.get("TableName")
    if not name:
        return [Check(f"dynamodb:{op}", "*")]
    index = call.params.get("IndexName")
    return [Check(f"dynamodb:{op}", table(name) + (f"/index/{index}" if index else ""))]


def _lambda(call: Call) -> list[Check]:
    name = str(call.params.get("FunctionName", ""))
    arn = name if name.startswith("arn:") else call.arn("lambda", f"function:{name}")
    action = {"Invoke": "InvokeFunction", "InvokeAsync": "InvokeAsync"}.get(call.operation, call.operation)
    return [Check(f"lambda:{action}", arn if name else "*")]


def _states(call: Call) -> list[Check]:
    for key in ("stateMachineArn", "executionArn", "activityArn", "mapRunArn"):
        if arn := call.params.get(key):
            return [Check(f"states:{call.operation}", str(arn))]
    return [Check(f"states:{call.operation}", "*")]


# SageMaker parameter -> ARN resource type; SageMaker ARNs carry the name in lower case.
_SAGEMAKER_NAMES = {
    # Create/Describe/Stop a tuning job, and ListTrainingJobsForHyperParameterTuningJob, are checked on the
    # tuning job (Service Authorization Reference, Amazon SageMaker: hyper-parameter-tuning-job*).
    "HyperParameterTuningJobName": "hyper-parameter-tuning-job",
    "TrainingJobName": "training-job",
    # CreateTransformJob names a ModelName too; its resource is the transform job (Service Authorization
    # Reference, Amazon SageMaker: CreateTransformJob -> transform-job*).
    "TransformJobName": "transform-job",
    "EndpointName": "endpoint",
    "EndpointConfigName": "endpoint-config",
    "ModelName": "model",
    "ModelPackageGroupName": "model-package-group",
}


def _sagemaker(call: Call) -> list[Check]:
    action = f"sagemaker:{call.operation}"
    named_group = str(call.params.get("ModelPackageGroupName") or "")
    if call.operation == "ListModelPackages" and named_group.startswith("arn:"):
        # Another account's group, named by ARN, is listed as its policy allows ListModelPackages on it
        # (SageMaker developer guide, "Cross-account model registry"; API_ListModelPackages takes the ARN).
        return [Check(action, named_group)]
    listing = call.operation.startswith("List") and "HyperParameterTuningJobName" not in call.params
    if listing or call.operation == "Search":
        return [Check(action, "*")]
    if arn := call.params.get("ResourceArn") or call.params.get("ModelPackageArn"):
        return [Check(action, str(arn))]
    if call.operation == "CreateModelPackage" and (group := call.params.get("ModelPackageGroupName")):
        return [Check(action, call.arn("sagemaker", f"model-package/{str(group).lower()}/*"))]
    name = call.params.get("ModelPackageName")
    if isinstance(name, str):
        if name.startswith("arn:"):
            return [Check(action, name)]
        return [Check(action, call.arn("sagemaker", f"model-package/{name.lower()}"))]
    for parameter, kind in _SAGEMAKER_NAMES.items():
        if value := call.params.get(parameter):
            value = str(value)
            return [
                Check(
                    action,
                    value if value.startswith("arn:") else call.arn("sagemaker", f"{kind}/{value.lower()}"),
                )
            ]
    return [Check(action, "*")]


def _logs(call: Call) -> list[Check]:
    group = call.params.get("logGroupName")
    if not group:
        return [Check(f"logs:{call.operation}", "*")]
    stream = call.params.get("logStreamName")
    resource = f"log-group:{group}" + (f":log-stream:{stream}" if stream else "")
    return [Check(f"logs:{call.operation}", call.arn("logs", resource))]


def _sqs(call: Call) -> list[Check]:
    url = str(call.params.get("QueueUrl", ""))
    name = url.rstrip("/").rsplit("/", 1)[-1] if url else call.params.get("QueueName", "*")
    action = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage"}.get(
        call.operation, call.operation
    )
    return [Check(f"sqs:{action}", call.arn("sqs", str(name)))]


def _events(call: Call) -> list[Check]:
    if call.operation == "PutEvents":
        buses = {str(e.get("EventBusName") or "default") for e in call.params.get("Entries", [])}
        return [
            Check(
                "events:PutEvents", bus if bus.startswith("arn:") else call.arn("events", f"event-bus/{bus}")
            )
            for bus in sorted(buses)
        ]
    if name := call.params.get("Name") or call.params.get("Rule"):
        return [Check(f"events:{call.operation}", call.arn("events", f"rule/{name}"))]
    return [Check(f"events:{call.operation}", "*")]


def _cloudwatch(call: Call) -> list[Check]:
    if call.operation == "PutMetricData":
        return [
            Check(
                "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": [str(call.params.get("Namespace"))]}
            )
        ]
    if name := call.params.get("AlarmName"):
        return [Check(f"cloudwatch:{call.operation}", call.arn("cloudwatch", f"alarm:{name}"))]
    if names := call.params.get("AlarmNames"):
        return [Check(f"cloudwatch:{call.operation}", call.arn("cloudwatch", f"alarm:{n}")) for n in names]
    return [Check(f"cloudwatch:{call.operation}", "*")]


def _kms(call: Call) -> list[Check]:
    key = str(call.params.get("KeyId", ""))
    if key.startswith("arn:") or not key:
        return [Check(f"kms:{call.operation}", key or "*")]
    resource = f"alias/{key.removeprefix('alias/')}" if key.startswith("alias/") else f"key/{key}"
    return [Check(f"kms:{call.operation}", call.arn("kms", resource))]


def _ssm(call: Call) -> list[Check]:
    names = call.params.get("Names") or [call.params.get("Name")]
    return [
        Check(f"ssm:{call.operation}", call.arn("ssm", f"parameter/{str(n).lstrip('/')}") if n else "*")
        for n in names
    ]


def _sns(call: Call) -> list[Check]:
    return [Check(f"sns:{call.operation}", str(call.params.get("TopicArn") or "*"))]


def _scheduler(call: Call) -> list[Check]:
    name = call.params.get("Name")
    group = call.params.get("GroupName") or "default"
    resource = call.arn("scheduler", f"schedule/{group}/{name}") if name else "*"
    return [Check(f"scheduler:{call.operation}", resource)]


_BY_PREFIX: dict[str, Callable[[Call], list[Check]]] = {
    "s3": _s3,
    "dynamodb": _dynamodb,
    "lambda": _lambda,
    "states": _states,
    "sagemaker": _sagemaker,
    "logs": _logs,
    "sqs": _sqs,
    "events": _events,
    "monitoring": _cloudwatch,
    "cloudwatch": _cloudwatch,
    "kms": _kms,
    "ssm": _ssm,
    "sns": _sns,
    "scheduler": _scheduler,
}
# botocore signing names that differ from the IAM prefix.
_IAM_PREFIX = {"monitoring": "cloudwatch"}


def checks_for(call: Call) -> list[Check]:
    """The IAM checks one call makes, in the order AWS reports the first denial."""
    if (call.prefix, call.operation) == ("sts", "GetCallerIdentity"):
        return []  # always allowed, even under an explicit deny (STS API reference)
    handler = _BY_PREFIX.get(call.prefix)
    if handler is None:
        return [Check(f"{_IAM_PREFIX.get(call.prefix, call.prefix)}:{call.operation}", "*")]
    return handler(call)
