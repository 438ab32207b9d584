"""What an alarm asks for, checked once: its period, comparison and missing-data rule, and its series (one
metric, or the metric math query whose values the alarm compares)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from headrace.local.cloudwatch.alarm import Alarm, Dimensions, MetricQuery, Unsupported
from headrace.local.cloudwatch.metric_math import (
    Expression,
    evaluate_expression,
    parse_expression,
    references,
)
from headrace.local.cloudwatch.metrics import MetricSnapshot, MetricSpec, Series
from headrace.local.cloudwatch.statistics import BASIC_STATISTICS, check_statistic

COMPARISONS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "GreaterThanThreshold": ("greater than", operator.gt),
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", operator.ge),
    "LessThanThreshold": ("less than", operator.lt),
    "LessThanOrEqualToThreshold": ("less than or equal to", operator.le),
}
TREAT_MISSING_DATA = ("missing", "notBreaching", "breaching", "ignore")


def dimension_set(dimensions: Dimensions) -> frozenset[tuple[str, str]]:
    return frozenset(dimensions)


@dataclass(frozen=True)
class Query:
    """A metric math query, checked: its metric (statistic supported) or its parsed expression."""

    id: str
    metric: MetricSpec | None = None
    expression: Expression | None = None
    period: int | None = None
    return_data: bool | None = None

    @classmethod
    def of(cls, query: MetricQuery) -> Query:
        if query.metric_stat is not None:
            stat = query.metric_stat
            check_statistic(stat.stat)
            metric = MetricSpec(
                namespace=stat.namespace,
                name=stat.metric_name,
                dimensions=dimension_set(stat.dimensions),
                stat=stat.stat,
                unit=stat.unit,
            )
            return cls(
                query.id, metric=metric, period=stat.period or query.period, return_data=query.return_data
            )
        if query.expression:
            expression = parse_expression(query.expression)
            return cls(query.id, expression=expression, period=query.period, return_data=query.return_data)
        raise Unsupported(f"metric math query {query.id!r} has neither MetricStat nor Expression")


def _returned_query(queries: Sequence[Query]) -> Query:
    """The query whose values are the alarm's series: ReturnData true, else the only expression."""
    for candidates in (
        [q for q in queries if q.return_data],
        [q for q in queries if q.expression is not None and q.return_data is None],
        list(queries),
    ):
        if len(candidates) == 1:
            return candidates[0]
    raise Unsupported("cannot tell which metric math query is the alarm's series (set ReturnData on one)")


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing_data: str
    metric: MetricSpec | None  # a single-metric alarm
    queries: tuple[Query, ...] = ()  # a metric math alarm
    returned: str | None = None

    @classmethod
    def of(cls, alarm: Alarm) -> AlarmSpec:
        if alarm.threshold_metric_id:
            raise Unsupported("anomaly detection thresholds (ThresholdMetricId) are not supported locally")
        if alarm.threshold is None:
            raise Unsupported("the alarm has no Threshold")
        if alarm.comparison_operator not in COMPARISONS:
            raise Unsupported(f"ComparisonOperator {alarm.comparison_operator} is not supported locally")
        treat = alarm.treat_missing_data or "missing"
        if treat not in TREAT_MISSING_DATA:
            raise Unsupported(f"TreatMissingData {treat!r} is not supported locally")
        queries = tuple(Query.of(q) for q in alarm.metric_data_queries)
        returned = _returned_query(queries) if queries else None
        evaluation_periods = int(alarm.evaluation_periods)
        return cls(
            name=alarm.name,
            period=_alarm_period(alarm, queries, returned),
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=int(alarm.datapoints_to_alarm or evaluation_periods),
            threshold=float(alarm.threshold),
            comparison=alarm.comparison_operator,
            treat_missing_data=treat,
            metric=None if queries else _alarm_metric(alarm),
            queries=queries,
            returned=returned.id if returned else None,
        )

    def breaches(self, value: float) -> bool:
        return COMPARISONS[self.comparison][1](value, self.threshold)

    def statistic_fields(self) -> dict[str, str]:
        """How reason data names the statistic: statistic, extendedStatistic, or nothing for metric math."""
        if self.metric is None:
            return {}
        key = "statistic" if self.metric.stat in BASIC_STATISTICS else "extendedStatistic"
        return {key: self.metric.stat}


def _alarm_period(alarm: Alarm, queries: Sequence[Query], returned: Query | None) -> int:
    """The alarm's Period; a metric math alarm's is its series' query's, else its first MetricStat's."""
    candidates = [alarm.period, returned.period if returned else None, *(q.period for q in queries)]
    period = next((p for p in candidates if p), None)
    if not period:
        raise Unsupported("the alarm has no Period")
    return int(period)


def _alarm_metric(alarm: Alarm) -> MetricSpec:
    stat = alarm.extended_statistic or alarm.statistic
    if not stat:
        raise Unsupported("the alarm has neither Statistic nor ExtendedStatistic")
    check_statistic(stat)
    return MetricSpec(
        namespace=alarm.namespace or "",
        name=alarm.metric_name or "",
        dimensions=dimension_set(alarm.dimensions),
        stat=stat,
        unit=alarm.unit,
    )


class _MathSeries:
    """The values of a metric math alarm's queries, each computed once per pass."""

    def __init__(self, spec: AlarmSpec, snapshot: MetricSnapshot, buckets: range) -> None:
        self._spec = spec
        self._queries = {q.id: q for q in spec.queries}
        self._snapshot = snapshot
        self._buckets = buckets
        self._done: dict[str, dict[int, float]] = {}

    def values(self, query_id: str, visiting: frozenset[str] = frozenset()) -> dict[int, float]:
        if query_id in self._done:
            return self._done[query_id]
        if query_id in visiting:
            raise Unsupported(f"metric math query {query_id!r} refers to itself")
        query = self._queries.get(query_id)
        if query is None:
            raise Unsupported(f"metric math refers to an unknown id {query_id!r}")
        if query.expression is not None:
            values = self._evaluate(query.expression, visiting | {query_id})
        elif query.metric is not None:
            values = self._snapshot.series(query.metric, self._spec.period, self._buckets).values
        else:
            raise Unsupported(f"metric math query {query_id!r} has neither MetricStat nor Expression")
        self._done[query_id] = values
        return values

    def _evaluate(self, expression: Expression, visiting: frozenset[str]) -> dict[int, float]:
        operands = {ref: self.values(ref, visiting) for ref in references(expression)}
        values: dict[int, float] = {}
        for bucket in self._buckets:
            value = evaluate_expression(expression, {ref: v.get(bucket) for ref, v in operands.items()})
            if value is not None:
                values[bucket] = value
        return values


def alarm_series(spec: AlarmSpec, snapshot: MetricSnapshot, buckets: range) -> Series:
    if spec.metric is not None:
        return snapshot.series(spec.metric, spec.period, buckets)
    return Series(_MathSeries(spec, snapshot, buckets).values(spec.returned or ""))
