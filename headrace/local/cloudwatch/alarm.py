"""What the evaluator reads of a metric alarm, as plain data (seams/cloudwatch.py copies it out of moto)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"

# A metric's dimensions as (name, value) pairs, in the order the alarm gives them.
Dimensions = tuple[tuple[str, str], ...]


class Unsupported(Exception):
    """Something in an alarm that the local plane does not evaluate."""


@dataclass(frozen=True)
class MetricStat:
    namespace: str
    metric_name: str
    dimensions: Dimensions
    stat: str
    period: int | None = None
    unit: str | None = None


@dataclass(frozen=True)
class MetricQuery:
    """One of a metric math alarm's MetricDataQueries: a MetricStat or an expression."""

    id: str
    metric_stat: MetricStat | None = None
    expression: str | None = None
    label: str | None = None
    period: int | None = None
    return_data: bool | None = None  # None: not given


@dataclass(frozen=True)
class Alarm:
    """A metric alarm's definition and its current state."""

    name: str
    arn: str
    comparison_operator: str
    evaluation_periods: int
    threshold: float | None  # None with an anomaly detection band (ThresholdMetricId)
    configuration_updated_timestamp: datetime
    state_value: str
    state_reason: str
    state_reason_data: str
    state_updated_timestamp: datetime
    # Created and never evaluated: moto says OK where CloudWatch says INSUFFICIENT_DATA.
    unchecked: bool = False
    description: str | None = None
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: Dimensions = ()
    statistic: str | None = None
    extended_statistic: str | None = None
    unit: str | None = None
    period: int | None = None
    datapoints_to_alarm: int | None = None
    treat_missing_data: str | None = None
    evaluate_low_sample_count_percentile: str | None = None
    threshold_metric_id: str | None = None
    metric_data_queries: tuple[MetricQuery, ...] = ()
    actions_enabled: bool = True
    alarm_actions: tuple[str, ...] = ()
    ok_actions: tuple[str, ...] = ()
    insufficient_data_actions: tuple[str, ...] = ()

    def metrics_read(self) -> set[tuple[str, str]]:
        """The (namespace, metric name) pairs whose data the alarm reads."""
        stats = [q.metric_stat for q in self.metric_data_queries if q.metric_stat is not None]
        read = {(s.namespace, s.metric_name) for s in stats}
        if self.namespace and self.metric_name:
            read.add((self.namespace, self.metric_name))
        return read

    def actions_for(self, state: str) -> tuple[str, ...]:
        return {
            ALARM: self.alarm_actions,
            OK: self.ok_actions,
            INSUFFICIENT_DATA: self.insufficient_data_actions,
        }[state]
