"""Operational counters (CloudWatch metrics in EMF, not a model's evaluation metrics) for every function
(headrace.ports.MetricSink)."""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from headrace.naming import STAGE_DIMENSION


class PowertoolsMetrics:
    """Counts into the handler's Metrics object; `@metrics.log_metrics` flushes them as EMF. Each count
    carries the stage (headrace.naming.STAGE_DIMENSION), so stages sharing an account keep apart."""

    def __init__(self, metrics: Metrics, stage: str) -> None:
        self._metrics = metrics
        self._stage = stage

    def count(self, name: str, model: str) -> None:
        self._metrics.add_dimension(name=STAGE_DIMENSION, value=self._stage)
        self._metrics.add_dimension(name="model", value=model)
        self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
