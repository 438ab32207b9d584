"""The idle sweep's ports with boto3, its settings and the runtime its handler builds once per environment.
Nothing runs at import."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from pydantic import Field

from headrace.config import ModelConfig
from headrace.event_bus import EventBridgePublisher
from headrace.lambda_env import FunctionSettings, NonEmpty, models_for
from headrace.monitoring.aws import DynamoLedger
from headrace.serving.aws import _not_found
from headrace.serving.idle import HostedEndpoint
from headrace.training import aws

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
            if _not_found(exc):
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
            if not _not_found(exc):  # already gone: the decision stands
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


class IdleSettings(FunctionSettings):
    event_bus_name: NonEmpty = Field(alias="EVENT_BUS_NAME")


@dataclass(frozen=True)
class IdleStep:
    settings: IdleSettings
    models: dict[str, ModelConfig]
    endpoints: SageMakerIdleEndpoints
    metrics: CloudWatchInvocations
    ledger: DynamoLedger
    events: EventBridgePublisher

    @classmethod
    def connect(cls, settings: IdleSettings, models_document: Path) -> IdleStep:
        return cls(
            settings=settings,
            models=models_for(settings, models_document),
            endpoints=SageMakerIdleEndpoints(aws.client("sagemaker")),
            metrics=CloudWatchInvocations(aws.client("cloudwatch")),
            ledger=DynamoLedger(aws.client("dynamodb"), settings.ledger_table),
            events=EventBridgePublisher(
                aws.client("events"), settings.event_bus_name, settings.names.event_source
            ),
        )
