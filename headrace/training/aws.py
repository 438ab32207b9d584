"""The ports implemented with boto3 and Powertools. Nothing runs at import: the handlers build these on
their first invocation. boto3 honours AWS_ENDPOINT_URL, so the same code talks to AWS, to the local plane's
moto server, or to moto in-process."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from headrace.ledger_keys import model_pk
from headrace.training.ledger import run_sk
from headrace.training.lineage import decode_metrics
from headrace.training.payloads import ApprovalStatus, ChampionInfo
from headrace.training.ports import PackageVersion, StartedRun

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


def client(service: str, session: boto3.Session | None = None) -> Any:
    return (session or boto3.Session()).client(service, config=CLIENT_CONFIG)


class S3Store:
    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def read(self, bucket: str, key: str) -> bytes:
        body: bytes = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


class DynamoRunLedger:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._to_dynamo = TypeSerializer()
        self._from_dynamo = TypeDeserializer()

    def start_run(self, item: Mapping[str, Any]) -> StartedRun:
        created = True
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={k: self._to_dynamo.serialize(v) for k, v in item.items()},
                ConditionExpression="attribute_not_exists(sk)",
            )
            started_at = str(item["started_at"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            created = False
            stored = self._dynamodb.get_item(
                TableName=self._table,
                Key={"pk": {"S": str(item["pk"])}, "sk": {"S": str(item["sk"])}},
                ConsistentRead=True,
            )["Item"]
            started_at = str(self._from_dynamo.deserialize(stored["started_at"]))
        return StartedRun(started_at=datetime.fromisoformat(started_at), created=created)

    def update_run(
        self, model: str, job: str, fields: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
    ) -> None:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        assignments = []
        for index, (name, value) in enumerate(fields.items()):
            names[f"#f{index}"], values[f":f{index}"] = name, self._to_dynamo.serialize(value)
            assignments.append(f"#f{index} = :f{index}")
        for index, (name, value) in enumerate((defaults or {}).items()):
            names[f"#d{index}"], values[f":d{index}"] = name, self._to_dynamo.serialize(value)
            assignments.append(f"#d{index} = if_not_exists(#d{index}, :d{index})")
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"pk": {"S": model_pk(model)}, "sk": {"S": run_sk(job)}},
            UpdateExpression="SET " + ", ".join(assignments),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )


def _missing_group(exc: ClientError) -> bool:
    error = exc.response["Error"]
    return error["Code"] == "ValidationException" and "does not exist" in str(error.get("Message", ""))


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class SageMakerRegistry:
    def __init__(self, sagemaker: Any) -> None:
        self._sagemaker = sagemaker

    def champion(self, group: str) -> ChampionInfo | None:
        try:
            summaries = self._sagemaker.list_model_packages(
                ModelPackageGroupName=group,
                ModelApprovalStatus="Approved",
                SortBy="CreationTime",
                SortOrder="Descending",
                MaxResults=1,
            )["ModelPackageSummaryList"]
        except ClientError as exc:
            if _missing_group(exc):
                return None
            raise
        if not summaries:
            return None
        package = self._sagemaker.describe_model_package(ModelPackageName=summaries[0]["ModelPackageArn"])
        return ChampionInfo(
            version=int(package["ModelPackageVersion"]),
            arn=package["ModelPackageArn"],
            metrics=decode_metrics(package.get("CustomerMetadataProperties", {}).get("metrics", "")),
        )

    def ensure_group(self, group: str, description: str, tags: Mapping[str, str]) -> None:
        try:
            self._sagemaker.describe_model_package_group(ModelPackageGroupName=group)
            return
        except ClientError as exc:
            if not _missing_group(exc):
                raise
        try:
            self._sagemaker.create_model_package_group(
                ModelPackageGroupName=group,
                ModelPackageGroupDescription=description[:1024],
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
        except ClientError as exc:
            # Two runs of one model registering at once: the other one created it first.
            if "already exists" not in str(exc.response["Error"].get("Message", "")):
                raise

    def _newest_first(self, group: str) -> Iterator[dict[str, Any]]:
        pages = self._sagemaker.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending"
        )
        for page in pages:
            yield from page["ModelPackageSummaryList"]

    def find_version(self, group: str, training_job: str, created_after: datetime) -> str | None:
        try:
            for summary in self._newest_first(group):
                if _utc(summary["CreationTime"]) < _utc(created_after):
                    return None
                arn = str(summary["ModelPackageArn"])
                package = self._sagemaker.describe_model_package(ModelPackageName=arn)
                if package.get("CustomerMetadataProperties", {}).get("training_job") == training_job:
                    return arn
        except ClientError as exc:
            if _missing_group(exc):
                return None
            raise
        return None

    def create_version(self, request: Mapping[str, Any]) -> str:
        return str(self._sagemaker.create_model_package(**request)["ModelPackageArn"])

    def describe_version(self, arn: str) -> PackageVersion:
        package = self._sagemaker.describe_model_package(ModelPackageName=arn)
        return PackageVersion(
            arn=package["ModelPackageArn"],
            group=package["ModelPackageGroupName"],
            version=int(package["ModelPackageVersion"]),
            approval_status=cast(ApprovalStatus, package["ModelApprovalStatus"]),
        )


def now() -> datetime:
    return datetime.now(UTC)
