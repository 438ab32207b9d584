"""The deploy steps' ports with boto3. Nothing runs at import; handlers build these on first invocation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from headrace.ledger_keys import model_pk
from headrace.serving.deploy import deployment_sk
from headrace.serving.ports import Endpoint, Package


def _not_found(exc: ClientError) -> bool:
    error = exc.response["Error"]
    message = str(error.get("Message", ""))
    return error["Code"] in ("ValidationException", "ResourceNotFound") and (
        "Could not find" in message or "does not exist" in message or "not found" in message
    )


class SageMakerHosting:
    def __init__(self, sagemaker: Any, cloudwatch: Any) -> None:
        self._sagemaker = sagemaker
        self._cloudwatch = cloudwatch

    def package(self, arn: str) -> Package:
        described = self._sagemaker.describe_model_package(ModelPackageName=arn)
        container = described["InferenceSpecification"]["Containers"][0]
        return Package(
            arn=described["ModelPackageArn"],
            group=described["ModelPackageGroupName"],
            version=int(described["ModelPackageVersion"]),
            approval_status=str(described["ModelApprovalStatus"]),
            image=container["Image"],
            model_data_url=container["ModelDataUrl"],
        )

    def _summaries(self, group: str, **filters: Any) -> list[dict[str, Any]]:
        try:
            pages = self._sagemaker.get_paginator("list_model_packages").paginate(
                ModelPackageGroupName=group, **filters
            )
            return [summary for page in pages for summary in page["ModelPackageSummaryList"]]
        except ClientError as exc:
            if _not_found(exc):
                return []
            raise

    def package_version(self, group: str, version: int) -> Package | None:
        match = next((s for s in self._summaries(group) if s.get("ModelPackageVersion") == version), None)
        return self.package(match["ModelPackageArn"]) if match else None

    def newest_approved(self, group: str) -> int | None:
        versions = [
            int(s["ModelPackageVersion"]) for s in self._summaries(group, ModelApprovalStatus="Approved")
        ]
        return max(versions, default=None)

    def endpoint(self, name: str) -> Endpoint | None:
        try:
            described = self._sagemaker.describe_endpoint(EndpointName=name)
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise
        return Endpoint(
            name=name,
            status=described["EndpointStatus"],
            config_name=described["EndpointConfigName"],
            failure_reason=described.get("FailureReason"),
        )

    def ensure_model(self, request: Mapping[str, Any]) -> None:
        try:
            self._sagemaker.describe_model(ModelName=request["ModelName"])
            return
        except ClientError as exc:
            if not _not_found(exc):
                raise
        self._sagemaker.create_model(**request)

    def ensure_endpoint_config(self, request: Mapping[str, Any]) -> None:
        try:
            self._sagemaker.describe_endpoint_config(EndpointConfigName=request["EndpointConfigName"])
            return
        except ClientError as exc:
            if not _not_found(exc):
                raise
        self._sagemaker.create_endpoint_config(**request)

    def alarms_in_alarm(self, names: list[str]) -> list[str]:
        alarms = self._cloudwatch.describe_alarms(AlarmNames=names, StateValue="ALARM")["MetricAlarms"]
        return [f"{a['AlarmName']}: {a.get('StateReason', '')}" for a in alarms]


class DynamoDeploymentLedger:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._to_dynamo = TypeSerializer()

    def put(self, model: str, deployment_id: str, fields: Mapping[str, Any]) -> None:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        assignments = []
        for index, (name, value) in enumerate(fields.items()):
            names[f"#f{index}"], values[f":f{index}"] = name, self._to_dynamo.serialize(value)
            assignments.append(f"#f{index} = :f{index}")
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"pk": {"S": model_pk(model)}, "sk": {"S": deployment_sk(deployment_id)}},
            UpdateExpression="SET " + ", ".join(assignments),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
