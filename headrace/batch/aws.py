"""The batch steps' ports with boto3 and Powertools. Nothing runs at import; clients are made on first use."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from headrace.aws.clients import lazy_client
from headrace.aws.clock import now
from headrace.aws.errors import is_missing_resource
from headrace.aws.events import publisher_for
from headrace.aws.s3 import S3Store
from headrace.batch.ports import BatchPorts, ServedModel
from headrace.lambda_env import FunctionSettings
from headrace.ledger import DynamoLedger
from headrace.monitoring.aws import EmfMetrics, PowertoolsDriftMetrics
from headrace.serving.aws import SageMakerHosting


class SageMakerBatchHosting:
    def __init__(self, sagemaker: Any, cloudwatch: Any) -> None:
        self._sagemaker = sagemaker
        # The deploy workflow's adapter: one reading of endpoints and registry versions.
        self._hosting = SageMakerHosting(sagemaker, cloudwatch)

    def served(self, endpoint: str) -> ServedModel | None:
        found = self._hosting.endpoint(endpoint)
        if found is None:
            return None
        config = self._sagemaker.describe_endpoint_config(EndpointConfigName=found.config_name)
        return ServedModel(found.config_name, str(config["ProductionVariants"][0]["ModelName"]))

    def approval(self, group: str, version: int) -> str | None:
        package = self._hosting.package_version(group, version)
        return package.approval_status if package else None

    def newest_model(self, name_prefix: str) -> str | None:
        try:
            pages = self._sagemaker.get_paginator("list_models").paginate(
                NameContains=name_prefix, SortBy="CreationTime", SortOrder="Descending"
            )
            names = [m["ModelName"] for page in pages for m in page["Models"]]
        except ClientError as exc:
            if is_missing_resource(exc):
                return None
            raise
        # NameContains matches anywhere in the name: keep those that start with it.
        return next((n for n in names if n.startswith(name_prefix)), None)

    def model_data_url(self, model_name: str) -> str:
        described = self._sagemaker.describe_model(ModelName=model_name)
        container = described.get("PrimaryContainer") or described["Containers"][0]
        return str(container["ModelDataUrl"])


class DriftCheckMetrics(PowertoolsDriftMetrics):
    """The drift check's metrics with the drift Finish function's `service` dimension: the drift alarm
    watches that metric (stacks/monitoring.py), and a batch's drift must reach the same alarm. Powertools
    adds the publishing function's own service name only where none is set."""

    def __init__(self, namespace: str, stage: str, service: str) -> None:
        super().__init__(namespace, stage)
        self._service = service

    def _put(self, name: str, value: float, unit: MetricUnit, **dimensions: str) -> None:
        super()._put(name, value, unit, **dimensions, service=self._service)


class PowertoolsBatchMetrics(EmfMetrics):
    def finished(self, model: str, status: str, rows: int) -> None:
        self._put("BatchJobs", 1.0, MetricUnit.Count, Model=model, Status=status)
        if rows:
            self._put("BatchRowsScored", float(rows), MetricUnit.Count, Model=model)


def connect_batch(settings: FunctionSettings, session: boto3.Session | None = None) -> BatchPorts:
    return BatchPorts(
        hosting=SageMakerBatchHosting(lazy_client("sagemaker", session), lazy_client("cloudwatch", session)),
        ledger=DynamoLedger(lazy_client("dynamodb", session), settings.ledger_table),
        events=publisher_for(settings, session),
        metrics=PowertoolsBatchMetrics(settings.metrics_namespace, settings.stage),
        clock=now,
        store=S3Store(lazy_client("s3", session)),
        drift=DriftCheckMetrics(
            settings.metrics_namespace, settings.stage, settings.names.drift_finish_function
        ),
    )
