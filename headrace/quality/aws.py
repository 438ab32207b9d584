"""The quality check's ports with boto3 and Powertools. Nothing runs at import."""

from __future__ import annotations

from collections.abc import Mapping

import boto3
from aws_lambda_powertools.metrics import MetricUnit

from headrace.aws.clients import lazy_client
from headrace.aws.clock import now
from headrace.aws.s3 import S3Store
from headrace.lambda_env import FunctionSettings
from headrace.ledger import DynamoLedger
from headrace.monitoring.aws import EmfMetrics, EndpointArtifacts
from headrace.quality.ports import QualityPorts


class PowertoolsQualityMetrics(EmfMetrics):
    """Every metric has the dimension Model; each live metric adds Metric (its name)."""

    def publish(self, model: str, metrics: Mapping[str, float | None], breach: bool) -> None:
        for name, value in metrics.items():
            if value is not None:
                self._put("LiveQuality", value, MetricUnit.NoUnit, Model=model, Metric=name)
        self._put("QualityBreach", 1.0 if breach else 0.0, MetricUnit.Count, Model=model)

    def labelled(self, model: str, rows: int) -> None:
        self._put("LabelledRows", float(rows), MetricUnit.Count, Model=model)


def connect_quality(settings: FunctionSettings, session: boto3.Session | None = None) -> QualityPorts:
    """The quality check's ports; each client is made when a step first uses it."""
    return QualityPorts(
        store=S3Store(lazy_client("s3", session)),
        serving=EndpointArtifacts(lazy_client("sagemaker", session)),
        ledger=DynamoLedger(lazy_client("dynamodb", session), settings.ledger_table),
        metrics=PowertoolsQualityMetrics(settings.metrics_namespace, settings.stage),
        clock=now,
    )
