"""CloudWatch alarm evaluation for the local plane: moto (5.2.5) stores alarms and metrics, never evaluates.

`AlarmEvaluator` runs in the process that runs moto's server. Each pass reads every metric alarm and the
metric data straight from moto's CloudWatch backend and decides each alarm's state as CloudWatch would. On a
change it records the new state in moto (so `describe_alarms` shows it), puts a "CloudWatch Alarm State
Change" event on the default EventBridge bus (rules match it, and the plane's seam delivers it to Lambda and
Step Functions targets), and publishes to the SNS topics among the alarm's actions.

Semantics, and where they knowingly differ from CloudWatch:
- The N most recent periods are evaluated *including the current, still-open period* as soon as it holds
  data (until then, the N most recent closed ones). CloudWatch waits for a period to close; locally a canary
  lasts seconds, and a guardrail that spoke a minute later would never stop a rollout. The price: a partial
  period's Sum or SampleCount is smaller than the final one, so a less-than alarm on them can breach early.
- Periods are aligned to multiples of Period since the epoch.
- M of N: ALARM when at least DatapointsToAlarm of the N datapoints breach, else OK. TreatMissingData:
  `breaching` and `notBreaching` fill the missing periods; `missing` (the default) and `ignore` evaluate the
  datapoints there are and, with none at all, go to INSUFFICIENT_DATA (`missing`) or keep the state
  (`ignore`). CloudWatch's look-back beyond the evaluation range for sparse metrics is not modelled.
- Statistics come from moto's stored datums: SampleCount, Average, Sum, Minimum and Maximum from single
  values and StatisticValues sets alike; percentiles (pNN, pNN.N, nearest rank) from single values only.
  Dimensions match exactly (the same set); a Unit on the alarm selects datums of that unit.
- Metric math: MetricStat queries as above, on the alarm's period; expressions of + - * / and parentheses
  over query ids and numbers. A missing operand or a division by zero leaves that period missing.
- moto creates alarms in state OK ("Unchecked: Initial alarm creation"); CloudWatch starts them in
  INSUFFICIENT_DATA, and so does this evaluator: such an alarm's first transition comes from there.
- What cannot be evaluated here (anomaly-detection bands, other comparison operators, other statistics, math
  functions) goes to INSUFFICIENT_DATA with a reason that says it is not supported locally.
"""

from __future__ import annotations

import json
import logging
import math
import operator
import re
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

from moto.cloudwatch.exceptions import ResourceNotFound
from moto.cloudwatch.models import (
    Alarm,
    CloudWatchBackend,
    Dimension,
    MetricAggregatedDatum,
    MetricDataQuery,
    MetricDatum,
    MetricDatumBase,
    cloudwatch_backends,
)
from moto.cloudwatch.responses import CloudWatchResponse
from moto.events.models import events_backends
from moto.utilities.arns import parse_arn

from headrace.local.aws import LOCAL_ACCOUNT, LOCAL_REGION

log = logging.getLogger("headrace.local")

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
# The reason moto gives an alarm it has just created (in state OK, where CloudWatch says INSUFFICIENT_DATA).
MOTO_INITIAL_REASON = "Unchecked: Initial alarm creation"
DEFAULT_INTERVAL_S = 1.0
EVENT_SOURCE = "aws.cloudwatch"
EVENT_DETAIL_TYPE = "CloudWatch Alarm State Change"
# SNS subjects are limited to 100 characters (SNS Publish API reference).
SNS_SUBJECT_LIMIT = 100
REGION_NAMES = {"us-east-1": "US East (N. Virginia)"}

COMPARISONS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "GreaterThanThreshold": ("greater than", operator.gt),
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", operator.ge),
    "LessThanThreshold": ("less than", operator.lt),
    "LessThanOrEqualToThreshold": ("less than or equal to", operator.le),
}
BASIC_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?|100(?:\.0+)?)")
TREAT_MISSING_DATA = ("missing", "notBreaching", "breaching", "ignore")
FILLED_AS = {"breaching": "Breaching", "notBreaching": "NonBreaching"}


class Unsupported(Exception):
    """Something in an alarm that the local plane does not evaluate."""


# --- time ---------------------------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    # moto keeps naive UTC timestamps (moto.core.utils.utcnow).
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def aws_timestamp(moment: datetime) -> str:
    """CloudWatch's timestamp format in alarm events and reason data: 2026-11-23T10:15:32.123+0000."""
    utc = _utc(moment)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def _reason_time(moment: datetime) -> str:
    return _utc(moment).strftime("%d/%m/%y %H:%M:%S")


def _bucket_start(bucket: int, period: int) -> datetime:
    return datetime.fromtimestamp(bucket * period, UTC)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


# --- statistics ---------------------------------------------------------------------------------------------


def check_statistic(stat: str) -> None:
    if stat not in BASIC_STATISTICS and not PERCENTILE.fullmatch(stat):
        raise Unsupported(
            f"statistic {stat!r} is not supported locally (only {', '.join(BASIC_STATISTICS)}, pNN)"
        )


def _percentile(values: Sequence[float], percent: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))  # nearest rank
    return ordered[min(rank, len(ordered)) - 1]


def statistic(stat: str, datums: Sequence[MetricDatumBase]) -> float | None:
    """One period's statistic over moto's datums; None when the period has no datapoint for it."""
    single = [float(d.value) for d in datums if isinstance(d, MetricDatum)]
    sets = [d for d in datums if isinstance(d, MetricAggregatedDatum)]
    if match := PERCENTILE.fullmatch(stat):
        return _percentile(single, float(match.group(1)))  # a StatisticValues set has no distribution
    count = len(single) + sum(float(s.sample_count) for s in sets)
    if count <= 0:
        return None
    total = sum(single) + sum(float(s.sum) for s in sets)
    if stat == "SampleCount":
        return count
    if stat == "Sum":
        return total
    if stat == "Average":
        return total / count
    if stat == "Minimum":
        return min([*single, *(float(s.min) for s in sets)])
    if stat == "Maximum":
        return max([*single, *(float(s.max) for s in sets)])
    raise Unsupported(f"statistic {stat!r} is not supported locally")


def _sample_count(datums: Sequence[MetricDatumBase]) -> float:
    return sum(float(d.sample_count) if isinstance(d, MetricAggregatedDatum) else 1.0 for d in datums)


def _dimension_set(dimensions: Iterable[Dimension]) -> frozenset[tuple[str, str]]:
    return frozenset((str(d.name), str(d.value)) for d in dimensions)


@dataclass(frozen=True)
class MetricSpec:
    namespace: str
    name: str
    dimensions: frozenset[tuple[str, str]]
    stat: str
    unit: str | None = None

    def matches(self, datum: MetricDatumBase) -> bool:
        return _dimension_set(datum.dimensions) == self.dimensions and (
            self.unit is None or datum.unit == self.unit
        )

    def configuration(self, period: int) -> dict[str, Any]:
        """As the alarm event's `configuration.metrics[].metricStat` shows it."""
        return {
            "metric": {
                "namespace": self.namespace,
                "name": self.name,
                "dimensions": dict(sorted(self.dimensions)),
            },
            "period": period,
            "stat": self.stat,
        }


@dataclass(frozen=True)
class Series:
    """An alarm's datapoints by period index (epoch seconds // period); a missing period has no entry."""

    values: dict[int, float]
    sample_counts: dict[int, float] = field(default_factory=dict)


class MetricSnapshot:
    """One pass's copy of moto's metric data, indexed by (namespace, metric name)."""

    def __init__(self, data: Iterable[MetricDatumBase]) -> None:
        self._by_metric: dict[tuple[str, str], list[MetricDatumBase]] = defaultdict(list)
        for datum in data:
            self._by_metric[(datum.namespace, datum.name)].append(datum)

    def series(self, metric: MetricSpec, period: int, buckets: range) -> Series:
        grouped: dict[int, list[MetricDatumBase]] = defaultdict(list)
        for datum in self._by_metric.get((metric.namespace, metric.name), ()):
            bucket = int(_utc(datum.timestamp).timestamp() // period)
            if bucket in buckets and metric.matches(datum):
                grouped[bucket].append(datum)
        values = {b: v for b, datums in grouped.items() if (v := statistic(metric.stat, datums)) is not None}
        return Series(values, {b: _sample_count(datums) for b, datums in grouped.items()})


# --- metric math expressions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Reference:
    id: str


@dataclass(frozen=True)
class Negation:
    operand: Expression


@dataclass(frozen=True)
class Binary:
    operator: str
    left: Expression
    right: Expression


Expression: TypeAlias = Number | Reference | Negation | Binary
_OPERATORS: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}
_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-+*/()]))"
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if not match:
            raise Unsupported(f"metric math {text!r}: cannot read {text[position:].strip()!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """expression := term (+|- term)*;  term := unary (*|/ unary)*;  unary := -unary | +unary | atom;
    atom := number | id | ( expression )."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = _tokenize(text)
        self._position = 0

    def parse(self) -> Expression:
        expression = self._sum()
        if self._position != len(self._tokens):
            raise self._error(f"unexpected {self._tokens[self._position][1]!r}")
        return expression

    def _peek(self) -> str | None:
        return self._tokens[self._position][1] if self._position < len(self._tokens) else None

    def _take(self) -> tuple[str, str]:
        if self._position >= len(self._tokens):
            raise self._error("it ends too early")
        self._position += 1
        return self._tokens[self._position - 1]

    def _sum(self) -> Expression:
        left = self._product()
        while self._peek() in ("+", "-"):
            left = Binary(self._take()[1], left, self._product())
        return left

    def _product(self) -> Expression:
        left = self._unary()
        while self._peek() in ("*", "/"):
            left = Binary(self._take()[1], left, self._unary())
        return left

    def _unary(self) -> Expression:
        if self._peek() in ("-", "+"):
            sign = self._take()[1]
            operand = self._unary()
            return Negation(operand) if sign == "-" else operand
        return self._atom()

    def _atom(self) -> Expression:
        kind, text = self._take()
        if text == "(":
            inner = self._sum()
            if self._take()[1] != ")":
                raise self._error("a parenthesis is not closed")
            return inner
        if kind == "number":
            return Number(float(text))
        if kind == "name" and self._peek() == "(":
            raise Unsupported(f"metric math {self._text!r}: function {text}() is not supported locally")
        if kind == "name":
            return Reference(text)
        raise self._error(f"unexpected {text!r}")

    def _error(self, problem: str) -> Unsupported:
        return Unsupported(f"metric math {self._text!r}: {problem}")


def parse_expression(text: str) -> Expression:
    """Arithmetic over query ids and numbers: + - * / and parentheses (no eval)."""
    return _Parser(text).parse()


def references(expression: Expression) -> set[str]:
    if isinstance(expression, Reference):
        return {expression.id}
    if isinstance(expression, Negation):
        return references(expression.operand)
    if isinstance(expression, Binary):
        return references(expression.left) | references(expression.right)
    return set()


def evaluate_expression(expression: Expression, operands: Mapping[str, float | None]) -> float | None:
    """The expression's value for one period; None (missing) when an operand is missing or it divides by 0."""
    if isinstance(expression, Number):
        return expression.value
    if isinstance(expression, Reference):
        return operands.get(expression.id)
    if isinstance(expression, Negation):
        value = evaluate_expression(expression.operand, operands)
        return None if value is None else -value
    left = evaluate_expression(expression.left, operands)
    right = evaluate_expression(expression.right, operands)
    if left is None or right is None or (expression.operator == "/" and right == 0):
        return None
    return _OPERATORS[expression.operator](left, right)


# --- what of a moto alarm the evaluation reads --------------------------------------------------------------


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    return value.lower() == "true" if isinstance(value, str) else bool(value)


def _period(value: Any) -> int | None:
    return int(value) if value else None


@dataclass(frozen=True)
class Query:
    """One of a metric math alarm's MetricDataQueries: a MetricStat or an expression."""

    id: str
    metric: MetricSpec | None = None
    expression: Expression | None = None
    period: int | None = None
    return_data: bool | None = None

    @classmethod
    def of(cls, query: MetricDataQuery) -> Query:
        flag = _flag(query.return_data)
        if query.metric_stat is not None:
            stat = query.metric_stat
            check_statistic(stat.stat)
            metric = MetricSpec(
                namespace=stat.metric.namespace,
                name=stat.metric.metric_name,
                dimensions=_dimension_set(stat.metric.dimensions),
                stat=stat.stat,
                unit=stat.unit,
            )
            period = _period(stat.period) or _period(query.period)
            return cls(query.id, metric=metric, period=period, return_data=flag)
        if query.expression:
            expression = parse_expression(query.expression)
            return cls(query.id, expression=expression, period=_period(query.period), return_data=flag)
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
        if alarm.comparison_operator not in COMPARISONS:
            raise Unsupported(f"ComparisonOperator {alarm.comparison_operator} is not supported locally")
        treat = alarm.treat_missing_data or "missing"
        if treat not in TREAT_MISSING_DATA:
            raise Unsupported(f"TreatMissingData {treat!r} is not supported locally")
        queries = tuple(Query.of(q) for q in alarm.metric_data_queries)
        returned = _returned_query(queries) if queries else None
        period = _alarm_period(alarm, queries, returned)
        evaluation_periods = int(alarm.evaluation_periods)
        return cls(
            name=alarm.name,
            period=int(period),
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
        namespace=alarm.namespace,
        name=alarm.metric_name,
        dimensions=_dimension_set(alarm.dimensions),
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


# --- the decision -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    value: str
    reason: str
    reason_data: dict[str, Any]


def _reason_data(spec: AlarmSpec, series: Series, window: range, now: datetime) -> dict[str, Any]:
    newest_first = [b for b in reversed(window) if b in series.values]
    evaluated = [
        {
            "timestamp": aws_timestamp(_bucket_start(b, spec.period)),
            **({"sampleCount": series.sample_counts[b]} if b in series.sample_counts else {}),
            "value": series.values[b],
        }
        for b in newest_first
    ]
    return {
        "version": "1.0",
        "queryDate": aws_timestamp(now),
        "startDate": aws_timestamp(_bucket_start(window.start, spec.period)),
        **spec.statistic_fields(),
        "period": spec.period,
        "recentDatapoints": [series.values[b] for b in reversed(newest_first)],
        "threshold": spec.threshold,
        "evaluatedDatapoints": evaluated,
    }


def _threshold_reason(
    spec: AlarmSpec, state: str, previous: str, present: list[tuple[int, float]], missing: int
) -> str:
    """CloudWatch's wording: the datapoints that decided, the threshold, and the M needed."""
    filled_as = FILLED_AS.get(spec.treat_missing_data)
    n = spec.evaluation_periods
    if not present:
        return (
            f"Threshold Crossed: no datapoints were received for {_plural(n, 'period')} and "
            f"{_plural(n, 'missing datapoint')} {'was' if n == 1 else 'were'} treated as [{filled_as}]."
        )
    breaching = [(b, v) for b, v in present if spec.breaches(v)]
    not_breaching = [(b, v) for b, v in present if not spec.breaches(v)]
    shown, negation = (breaching, "") if state == ALARM or not not_breaching else (not_breaching, "not ")
    listed = ", ".join(f"{v!r} ({_reason_time(_bucket_start(b, spec.period))})" for b, v in shown)
    text = (
        f"Threshold Crossed: {len(shown)} out of the last {n} datapoints [{listed}] "
        f"{'was' if len(shown) == 1 else 'were'} {negation}{COMPARISONS[spec.comparison][0]} the threshold "
        f"({spec.threshold!r}) (minimum {_plural(spec.datapoints_to_alarm, 'datapoint')} for "
        f"{previous} -> {state} transition)."
    )
    if missing and filled_as:
        text += f" {_plural(missing, 'missing datapoint')} treated as [{filled_as}]."
    return text


def decide(spec: AlarmSpec, series: Series, current: int, previous: str, now: datetime) -> Outcome | None:
    """The alarm's state for the N periods ending with `current` (the open one) if it has a datapoint, else
    ending just before it; None when the state is to be kept (TreatMissingData ignore, no data)."""
    n = spec.evaluation_periods
    last = current if current in series.values else current - 1
    window = range(last - n + 1, last + 1)
    present = [(b, series.values[b]) for b in reversed(window) if b in series.values]  # newest first
    data = _reason_data(spec, series, window, now)
    if not present and spec.treat_missing_data == "ignore":
        return None
    if not present and spec.treat_missing_data == "missing":
        reason = f"Insufficient Data: {_plural(n, 'datapoint')} {'was' if n == 1 else 'were'} unknown."
        return Outcome(INSUFFICIENT_DATA, reason, data)
    missing = n - len(present)
    breaches = sum(1 for _, v in present if spec.breaches(v))
    breaches += missing if spec.treat_missing_data == "breaching" else 0
    state = ALARM if breaches >= spec.datapoints_to_alarm else OK
    return Outcome(state, _threshold_reason(spec, state, previous, present, missing), data)


# --- what a state change looks like from outside ------------------------------------------------------------


@dataclass(frozen=True)
class AlarmState:
    value: str
    reason: str
    reason_data: str
    timestamp: datetime

    def detail(self) -> dict[str, str]:
        return {
            "value": self.value,
            "reason": self.reason,
            "reasonData": self.reason_data,
            "timestamp": aws_timestamp(self.timestamp),
        }


@dataclass(frozen=True)
class StateChange:
    alarm_name: str
    alarm_arn: str
    previous: AlarmState
    current: AlarmState
    detail: dict[str, Any]  # the event's detail, as put on the default bus


def _unchecked(alarm: Alarm) -> bool:
    return alarm.state_value == OK and alarm.state_reason == MOTO_INITIAL_REASON and not alarm.history


def current_state(alarm: Alarm) -> AlarmState:
    return AlarmState(
        value=INSUFFICIENT_DATA if _unchecked(alarm) else alarm.state_value,
        reason=alarm.state_reason,
        reason_data=alarm.state_reason_data or "{}",
        timestamp=alarm.state_updated_timestamp,
    )


def _metric_stat_configuration(alarm: Alarm, query: MetricDataQuery) -> dict[str, Any]:
    stat = query.metric_stat
    if stat is None:
        return {}
    metric = MetricSpec(
        stat.metric.namespace, stat.metric.metric_name, _dimension_set(stat.metric.dimensions), stat.stat
    )
    return {"metricStat": metric.configuration(int(stat.period or query.period or alarm.period or 0))}


def configuration_metrics(alarm: Alarm) -> list[dict[str, Any]]:
    """The event's `configuration.metrics`, for single-metric and metric math alarms alike."""
    if not alarm.metric_data_queries:
        metric = MetricSpec(
            alarm.namespace,
            alarm.metric_name,
            _dimension_set(alarm.dimensions),
            alarm.extended_statistic or alarm.statistic or "",
        )
        # CloudWatch names the single metric of an alarm with a generated id.
        metric_id = str(uuid.uuid5(uuid.NAMESPACE_URL, alarm.alarm_arn))
        return [
            {"id": metric_id, "metricStat": metric.configuration(int(alarm.period or 0)), "returnData": True}
        ]
    metrics = []
    for query in alarm.metric_data_queries:
        flag = _flag(query.return_data)
        metrics.append(
            {
                "id": query.id,
                **({"expression": query.expression} if query.expression else {}),
                **({"label": query.label} if query.label else {}),
                **_metric_stat_configuration(alarm, query),
                "returnData": bool(query.expression) if flag is None else flag,
            }
        )
    return metrics


def state_change_detail(alarm: Alarm, previous: AlarmState, current: AlarmState) -> dict[str, Any]:
    configuration: dict[str, Any] = {"metrics": configuration_metrics(alarm)}
    if alarm.description:
        configuration = {"description": alarm.description, **configuration}
    return {
        "alarmName": alarm.name,
        "state": current.detail(),
        "previousState": previous.detail(),
        "configuration": configuration,
    }


def _trigger(alarm: Alarm) -> dict[str, Any]:
    """The `Trigger` of CloudWatch's SNS alarm message."""
    common = {
        "Period": alarm.period,
        "EvaluationPeriods": alarm.evaluation_periods,
        "DatapointsToAlarm": alarm.datapoints_to_alarm or alarm.evaluation_periods,
        "ComparisonOperator": alarm.comparison_operator,
        "Threshold": alarm.threshold,
        "TreatMissingData": alarm.treat_missing_data or "missing",
        "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
    }
    if alarm.metric_data_queries:
        return {
            "Metrics": [{"Id": q.id, "Expression": q.expression} for q in alarm.metric_data_queries],
            **common,
        }
    statistic_fields = (
        {"StatisticType": "ExtendedStatistic", "ExtendedStatistic": alarm.extended_statistic}
        if alarm.extended_statistic
        else {"StatisticType": "Statistic", "Statistic": (alarm.statistic or "").upper()}
    )
    return {
        "MetricName": alarm.metric_name,
        "Namespace": alarm.namespace,
        **statistic_fields,
        "Unit": alarm.unit,
        "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
        **common,
    }


def alarm_message(alarm: Alarm, change: StateChange, account: str, region: str) -> dict[str, Any]:
    """What CloudWatch publishes to an alarm's SNS actions."""
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": aws_timestamp(alarm.configuration_updated_timestamp),
        "NewStateValue": change.current.value,
        "NewStateReason": change.current.reason,
        "StateChangeTime": aws_timestamp(change.current.timestamp),
        "Region": REGION_NAMES.get(region, region),
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": change.previous.value,
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "Trigger": _trigger(alarm),
    }


# --- the evaluator ------------------------------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AlarmEvaluator:
    """Evaluates moto's metric alarms in this process: `evaluate()` once, or `start()` a thread that does."""

    def __init__(
        self,
        account: str = LOCAL_ACCOUNT,
        region: str = LOCAL_REGION,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.account = account
        self.region = region
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._original_set_alarm_state: Callable[..., Any] | None = None
        self._reported: set[tuple[str, str]] = set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._install_set_alarm_state()
        self._thread = threading.Thread(target=self._run, name="headrace-alarm-evaluator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._original_set_alarm_state is not None:
            CloudWatchResponse.set_alarm_state = self._original_set_alarm_state  # type: ignore[method-assign]
            self._original_set_alarm_state = None

    def _install_set_alarm_state(self) -> None:
        """SetAlarmState over the API (how people test alarms) announces the change as CloudWatch does;
        moto stores the state and says nothing."""
        if self._original_set_alarm_state is not None:
            return
        original = CloudWatchResponse.set_alarm_state
        evaluator = self

        def set_alarm_state(response: CloudWatchResponse) -> Any:
            backend = cloudwatch_backends[evaluator.account][evaluator.region]
            alarm = backend.alarms.get(response._get_param("AlarmName"))
            previous = current_state(alarm) if alarm is not None else None
            result = original(response)
            if alarm is not None and previous is not None and alarm.state_value != previous.value:
                current = current_state(alarm)
                change = StateChange(
                    alarm.name,
                    alarm.alarm_arn,
                    previous,
                    current,
                    state_change_detail(alarm, previous, current),
                )
                evaluator._put_event(change)
                evaluator._perform_actions(alarm, change)
            return result

        self._original_set_alarm_state = original
        CloudWatchResponse.set_alarm_state = set_alarm_state  # type: ignore[method-assign,assignment]

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                self.evaluate()
            except Exception:
                log.exception("alarm evaluation failed")

    def evaluate(self, now: datetime | None = None) -> list[StateChange]:
        """One pass over every metric alarm; returns the state changes it made (and announced)."""
        moment = _utc(now or self._clock())
        with self._lock:
            backend = cloudwatch_backends[self.account][self.region]
            # Copies: moto's request threads add alarms and datums while a pass runs.
            alarms = list(dict(backend.alarms).values())
            snapshot = MetricSnapshot(list(backend.metric_data))
            changes = []
            for alarm in alarms:
                if alarm.rule is not None:
                    continue  # a composite alarm
                try:
                    change = self._evaluate_alarm(backend, alarm, snapshot, moment)
                except Exception:
                    log.exception("evaluating alarm %s failed", alarm.name)
                    continue
                if change is not None:
                    changes.append(change)
            return changes

    def _outcome(
        self, alarm: Alarm, snapshot: MetricSnapshot, now: datetime, previous: str
    ) -> Outcome | None:
        try:
            spec = AlarmSpec.of(alarm)
            current = int(now.timestamp() // spec.period)
            buckets = range(current - spec.evaluation_periods, current + 1)
            return decide(spec, alarm_series(spec, snapshot, buckets), current, previous, now)
        except Unsupported as unsupported:
            if (alarm.name, str(unsupported)) not in self._reported:
                self._reported.add((alarm.name, str(unsupported)))
                log.warning("alarm %s is not evaluated locally: %s", alarm.name, unsupported)
            data = {"version": "1.0", "queryDate": aws_timestamp(now)}
            return Outcome(INSUFFICIENT_DATA, f"Unsupported locally: {unsupported}", data)

    def _evaluate_alarm(
        self, backend: CloudWatchBackend, alarm: Alarm, snapshot: MetricSnapshot, now: datetime
    ) -> StateChange | None:
        previous = current_state(alarm)
        outcome = self._outcome(alarm, snapshot, now, previous.value)
        if outcome is None or outcome.value == previous.value:
            if _unchecked(alarm):
                _settle_unchecked(alarm, outcome, now)
            return None
        reason_data = json.dumps(outcome.reason_data, separators=(",", ":"))
        try:
            backend.set_alarm_state(alarm.name, outcome.reason, reason_data, outcome.value)
        except ResourceNotFound:
            return None  # deleted while this pass ran
        current = AlarmState(outcome.value, outcome.reason, reason_data, now)
        change = StateChange(
            alarm.name, alarm.alarm_arn, previous, current, state_change_detail(alarm, previous, current)
        )
        self._put_event(change)
        self._perform_actions(alarm, change)
        return change

    def _put_event(self, change: StateChange) -> None:
        entry = {
            "Source": EVENT_SOURCE,
            "DetailType": EVENT_DETAIL_TYPE,
            "Resources": [change.alarm_arn],
            "Detail": json.dumps(change.detail),
            # Epoch seconds, as moto's own PutEvents sets it: moto's rule targets splice `time` into JSON
            # unquoted (moto/events/utils.py), so an ISO string breaks delivery to SQS and Logs targets.
            "Time": _utc(change.current.timestamp).timestamp(),
        }
        try:
            results = events_backends[self.account][self.region].put_events([entry])
        except Exception:
            log.exception("the state change event of alarm %s was not delivered", change.alarm_name)
            return
        for result in results:
            if "ErrorCode" in result:
                log.error("EventBridge refused the event of alarm %s: %s", change.alarm_name, result)

    def _perform_actions(self, alarm: Alarm, change: StateChange) -> None:
        if not alarm.actions_enabled:
            return
        actions = {
            ALARM: alarm.alarm_actions,
            OK: alarm.ok_actions,
            INSUFFICIENT_DATA: alarm.insufficient_data_actions,
        }[change.current.value]
        for action in actions or []:
            try:
                self._perform(alarm, change, action)
            except Exception:
                log.exception("alarm %s: action %s failed", alarm.name, action)

    def _perform(self, alarm: Alarm, change: StateChange, action: str) -> None:
        from moto.sns.models import sns_backends

        arn = parse_arn(action) if action.startswith("arn:") else None
        if arn is None or arn.service != "sns":
            if (alarm.name, action) not in self._reported:
                self._reported.add((alarm.name, action))
                log.warning(
                    "alarm %s: action %s is not performed locally (only SNS topics are)", alarm.name, action
                )
            return
        region_name = REGION_NAMES.get(self.region, self.region)
        subject = f'{change.current.value}: "{alarm.name}" in {region_name}'[:SNS_SUBJECT_LIMIT]
        message = json.dumps(alarm_message(alarm, change, self.account, self.region))
        sns_backends[arn.account][arn.region].publish(message, arn=action, subject=subject)


def _settle_unchecked(alarm: Alarm, outcome: Outcome | None, now: datetime) -> None:
    """Give a never-evaluated alarm CloudWatch's initial state, INSUFFICIENT_DATA, without a transition:
    moto's initial OK was never a real state, so there is no event and no history entry for leaving it."""
    alarm.state_value = INSUFFICIENT_DATA
    if outcome is not None:
        alarm.state_reason = outcome.reason
        alarm.state_reason_data = json.dumps(outcome.reason_data, separators=(",", ":"))
    alarm.state_updated_timestamp = _utc(now).replace(tzinfo=None)
