"""The deploy steps' ports with boto3, and `connect`, which bundles them with the shared adapters
(headrace.aws). Nothing runs at import; handlers connect on their first invocation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Metrics
from botocore.exceptions import ClientError

from headrace.aws.clients import lazy_client
from headrace.aws.clock import now
from headrace.aws.errors import is_missing_resource
from headrace.aws.events import publisher_for
from headrace.aws.metrics import PowertoolsMetrics
from headrace.lambda_env import FunctionSettings
from headrace.ledger import DynamoLedger
from headrace.serving import autoscaling
from headrace.serving.ports import DeployPorts, Endpoint, Package


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
            if is_missing_resource(exc):
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
            if is_missing_resource(exc):
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
            if not is_missing_resource(exc):
                raise
        self._sagemaker.create_model(**request)

    def ensure_endpoint_config(self, request: Mapping[str, Any]) -> None:
        try:
            self._sagemaker.describe_endpoint_config(EndpointConfigName=request["EndpointConfigName"])
            return
        except ClientError as exc:
            if not is_missing_resource(exc):
                raise
        self._sagemaker.create_endpoint_config(**request)

    def alarms_in_alarm(self, names: list[str]) -> list[str]:
        alarms = self._cloudwatch.describe_alarms(AlarmNames=names, StateValue="ALARM")["MetricAlarms"]
        return [f"{a['AlarmName']}: {a.get('StateReason', '')}" for a in alarms]


class ApplicationAutoScaling:
    """EndpointScaling with boto3's application-autoscaling client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def register(self, target: Mapping[str, Any], policy: Mapping[str, Any]) -> None:
        self._client.register_scalable_target(**target)
        self._client.put_scaling_policy(**policy)

    def deregister(self, resource_id: str) -> bool:
        key = {"ServiceNamespace": autoscaling.NAMESPACE, "ScalableDimension": autoscaling.DIMENSION}
        targets = self._client.describe_scalable_targets(ResourceIds=[resource_id], **key)
        if not targets.get("ScalableTargets"):
            return False
        policies = self._client.describe_scaling_policies(ResourceId=resource_id, **key)
        for policy in policies.get("ScalingPolicies", []):
            self._client.delete_scaling_policy(PolicyName=policy["PolicyName"], ResourceId=resource_id, **key)
        self._client.deregister_scalable_target(ResourceId=resource_id, **key)
        return True


def connect(
    settings: FunctionSettings, metrics: Metrics, session: boto3.Session | None = None
) -> DeployPorts:
    """The deploy steps' ports; each client is made when a step first uses it."""
    return DeployPorts(
        hosting=SageMakerHosting(lazy_client("sagemaker", session), lazy_client("cloudwatch", session)),
        ledger=DynamoLedger(lazy_client("dynamodb", session), settings.ledger_table),
        events=publisher_for(settings, session),
        metrics=PowertoolsMetrics(metrics, settings.stage),
        clock=now,
        scaling=ApplicationAutoScaling(lazy_client("application-autoscaling", session)),
    )
