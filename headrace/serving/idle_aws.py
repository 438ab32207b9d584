"""The idle sweep's ports with boto3, its settings and the runtime its handler builds once per environment.
Nothing runs at import."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from headrace.aws.clients import lazy_client
from headrace.aws.clock import now
from headrace.aws.errors import is_missing_resource
from headrace.aws.events import publisher_for
from headrace.lambda_env import BusSettings, Runtime, models_for
from headrace.ledger import DynamoLedger
from headrace.serving.ports import HostedEndpoint, IdlePorts

# Hourly sums: CloudWatch keeps them 455 days, and 720 hours (idle_hours' maximum) is 720 datapoints, inside
# GetMetricStatistics' 1,440.
PERIOD_S = 3600


class SageMakerIdleEndpoints:
    def __init__(self, sagemaker: Any) -> None:
        self._sagemaker = sagemaker

    def describe(self, name: str) -> HostedEndpoint | None:
        try:
            described = self._sagemaker.describe_endpoint(EndpointName=name)
        except ClientError as exc:
            if is_missing_resource(exc):
                return None
            raise
        modified: datetime = described["LastModifiedTime"]
        return HostedEndpoint(
            name=name,
            status=str(described["EndpointStatus"]),
            config_name=str(described["EndpointConfigName"]),
            last_modified=modified if modified.tzinfo else modified.replace(tzinfo=UTC),
        )

    def delete(self, name: str) -> None:
        try:
            self._sagemaker.delete_endpoint(EndpointName=name)
        except ClientError as exc:
            if not is_missing_resource(exc):  # already gone: the decision stands
                raise


class CloudWatchInvocations:
    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch

    def invocations(self, endpoint: str, variant: str, start: datetime, end: datetime) -> float:
        response = self._cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName="Invocations",
            Dimensions=[
                {"Name": "EndpointName", "Value": endpoint},
                {"Name": "VariantName", "Value": variant},
            ],
            StartTime=start,
            EndTime=end,
            Period=PERIOD_S,
            Statistics=["Sum"],
        )
        # SageMaker publishes Invocations only for periods with traffic: no datapoint is no invocation.
        return float(sum(point["Sum"] for point in response.get("Datapoints", [])))


class IdleSettings(BusSettings):
    """The sweep reads every model's endpoint and announces each deletion on the bus."""


def connect(settings: IdleSettings, session: boto3.Session | None = None) -> IdlePorts:
    return IdlePorts(
        endpoints=SageMakerIdleEndpoints(lazy_client("sagemaker", session)),
        invocations=CloudWatchInvocations(lazy_client("cloudwatch", session)),
        ledger=DynamoLedger(lazy_client("dynamodb", session), settings.ledger_table),
        events=publisher_for(settings, session),
        clock=now,
    )


def idle_runtime(settings: IdleSettings, models_document: Path) -> Runtime[IdleSettings, IdlePorts]:
    return Runtime(settings=settings, models=models_for(settings, models_document), ports=connect(settings))
