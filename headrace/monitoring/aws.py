"""The drift check's ports with boto3 and Powertools, and `connect_drift`, which bundles them with the shared
adapters (headrace.aws); retraining's are in retrain_aws.py, so the checks' functions do not import
idempotency. Nothing runs at import."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import ClientError

from headrace.aws.clients import lazy_client
from headrace.aws.clock import now
from headrace.aws.errors import error_code
from headrace.aws.s3 import S3Store
from headrace.lambda_env import FunctionSettings
from headrace.ledger import DynamoLedger
from headrace.monitoring.ports import DriftPorts
from headrace.naming import STAGE_DIMENSION

if TYPE_CHECKING:  # annotations only: the quality functions import this module for its other adapters
    from headrace.drift import DriftResult


class EndpointArtifacts:
    def __init__(self, sagemaker: Any) -> None:
        self._sagemaker = sagemaker

    def artifact(self, endpoint: str) -> tuple[str, str] | None:
        try:
            config = self._sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        except ClientError as exc:
            if error_code(exc) == "ValidationException":
                return None
            raise
        variant = self._sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
        model = self._sagemaker.describe_model(ModelName=variant["ModelName"])
        container = model.get("PrimaryContainer") or model["Containers"][0]
        return str(config), str(container["ModelDataUrl"])


class EmfMetrics:
    """One EMF document per metric, every metric with the stage (headrace.naming.STAGE_DIMENSION) among its
    dimensions: the drift and quality checks' writer."""

    def __init__(self, namespace: str, stage: str) -> None:
        self._namespace = namespace
        self._stage = stage

    def _put(self, name: str, value: float, unit: MetricUnit, **dimensions: str) -> None:
        with single_metric(name=name, unit=unit, value=value, namespace=self._namespace) as metric:
            for key, dimension in {**dimensions, STAGE_DIMENSION: self._stage}.items():
                metric.add_dimension(name=key, value=dimension)


class PowertoolsDriftMetrics(EmfMetrics):
    """Per feature scores carry the dimensions Model and Feature."""

    def publish(self, model: str, result: DriftResult) -> None:
        self._put("DriftedFeatures", float(len(result.drifted_features)), MetricUnit.Count, Model=model)
        for feature in result.features:
            if feature.psi is not None:
                self._put("FeaturePSI", feature.psi, MetricUnit.NoUnit, Model=model, Feature=feature.name)
            if feature.ks_statistic is not None:
                self._put(
                    "FeatureKS", feature.ks_statistic, MetricUnit.NoUnit, Model=model, Feature=feature.name
                )

    def rows(self, model: str, rows: int) -> None:
        self._put("DriftCheckRows", float(rows), MetricUnit.Count, Model=model)


def connect_drift(settings: FunctionSettings, session: boto3.Session | None = None) -> DriftPorts:
    """The drift check's ports; each client is made when a step first uses it."""
    return DriftPorts(
        store=S3Store(lazy_client("s3", session)),
        serving=EndpointArtifacts(lazy_client("sagemaker", session)),
        ledger=DynamoLedger(lazy_client("dynamodb", session), settings.ledger_table),
        metrics=PowertoolsDriftMetrics(settings.metrics_namespace, settings.stage),
        clock=now,
    )
