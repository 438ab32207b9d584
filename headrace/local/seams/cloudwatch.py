"""moto's CloudWatch for the alarm evaluator (headrace/local/cloudwatch/): its alarms and metric data copied
out as plain data, states written back, SetAlarmState over the API watched, and the evaluator's
announcements put on moto's EventBridge and SNS."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from moto.cloudwatch.exceptions import ResourceNotFound
from moto.cloudwatch.models import Alarm as MotoAlarm
from moto.cloudwatch.models import (
    CloudWatchBackend,
    Dimension,
    MetricAggregatedDatum,
    MetricDataQuery,
    MetricDatum,
    cloudwatch_backends,
)
from moto.cloudwatch.responses import CloudWatchResponse
from moto.events.models import events_backends
from moto.sns.models import sns_backends
from moto.utilities.arns import parse_arn

from headrace.local.aws import LOCAL_ACCOUNT, LOCAL_REGION
from headrace.local.clock import utc
from headrace.local.cloudwatch.alarm import OK, Alarm, Dimensions, MetricQuery, MetricStat
from headrace.local.cloudwatch.statistics import Datum, StatisticSet

log = logging.getLogger("headrace.local")

# The reason moto gives an alarm it has just created (in state OK, where CloudWatch says INSUFFICIENT_DATA).
MOTO_INITIAL_REASON = "Unchecked: Initial alarm creation"


def _dimensions(dimensions: Iterable[Dimension]) -> Dimensions:
    return tuple((str(d.name), str(d.value)) for d in dimensions)


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    return value.lower() == "true" if isinstance(value, str) else bool(value)


def _period(value: Any) -> int | None:
    return int(value) if value else None


def _query(query: MetricDataQuery) -> MetricQuery:
    stat = query.metric_stat
    metric_stat = (
        MetricStat(
            namespace=stat.metric.namespace,
            metric_name=stat.metric.metric_name,
            dimensions=_dimensions(stat.metric.dimensions),
            stat=stat.stat,
            period=_period(stat.period),
            unit=stat.unit,
        )
        if stat is not None
        else None
    )
    return MetricQuery(
        id=query.id,
        metric_stat=metric_stat,
        expression=query.expression,
        label=query.label,
        period=_period(query.period),
        return_data=_flag(query.return_data),
    )


def alarm_of(alarm: MotoAlarm) -> Alarm:
    return Alarm(
        name=alarm.name,
        arn=alarm.alarm_arn,
        comparison_operator=alarm.comparison_operator,
        evaluation_periods=int(alarm.evaluation_periods),
        threshold=None if alarm.threshold is None else float(alarm.threshold),
        configuration_updated_timestamp=alarm.configuration_updated_timestamp,
        state_value=alarm.state_value,
        state_reason=alarm.state_reason,
        state_reason_data=alarm.state_reason_data,
        state_updated_timestamp=alarm.state_updated_timestamp,
        unchecked=alarm.state_value == OK and alarm.state_reason == MOTO_INITIAL_REASON and not alarm.history,
        description=alarm.description,
        namespace=alarm.namespace,
        metric_name=alarm.metric_name,
        dimensions=_dimensions(alarm.dimensions),
        statistic=alarm.statistic,
        extended_statistic=alarm.extended_statistic,
        unit=alarm.unit,
        period=_period(alarm.period),
        datapoints_to_alarm=_period(alarm.datapoints_to_alarm),
        treat_missing_data=alarm.treat_missing_data,
        evaluate_low_sample_count_percentile=alarm.evaluate_low_sample_count_percentile,
        threshold_metric_id=alarm.threshold_metric_id,
        metric_data_queries=tuple(_query(q) for q in alarm.metric_data_queries),
        actions_enabled=bool(alarm.actions_enabled),
        alarm_actions=tuple(alarm.alarm_actions or ()),
        ok_actions=tuple(alarm.ok_actions or ()),
        insufficient_data_actions=tuple(alarm.insufficient_data_actions or ()),
    )


def datum_of(datum: MetricDatum | MetricAggregatedDatum) -> Datum:
    value: float | StatisticSet
    if isinstance(datum, MetricAggregatedDatum):
        value = StatisticSet(float(datum.sample_count), float(datum.sum), float(datum.min), float(datum.max))
    else:
        value = float(datum.value)
    return Datum(
        namespace=datum.namespace,
        name=datum.name,
        dimensions=frozenset(_dimensions(datum.dimensions)),
        timestamp=utc(datum.timestamp),
        value=value,
        unit=datum.unit,
    )


class MotoCloudWatch:
    """`AlarmBackend` on moto's CloudWatch, EventBridge and SNS backends in this process."""

    def __init__(self, account: str = LOCAL_ACCOUNT, region: str = LOCAL_REGION) -> None:
        self.account = account
        self.region = region

    @property
    def _backend(self) -> CloudWatchBackend:
        return cloudwatch_backends[self.account][self.region]

    def alarms(self) -> list[Alarm]:
        # A copy: moto's request threads add alarms while a pass runs. Composite alarms (a rule) are left out.
        alarms = []
        for alarm in list(dict(self._backend.alarms).values()):
            if alarm.rule is not None:
                continue
            try:
                alarms.append(alarm_of(alarm))
            except (TypeError, ValueError):
                log.exception("alarm %s cannot be read from moto", alarm.name)
        return alarms

    def datums(self, metrics: set[tuple[str, str]]) -> list[Datum]:
        data = list(self._backend.metric_data)  # a copy: request threads append while a pass runs
        return [
            datum_of(d)
            for d in data
            if (d.namespace, d.name) in metrics and isinstance(d, MetricDatum | MetricAggregatedDatum)
        ]

    def set_state(self, alarm_name: str, value: str, reason: str, reason_data: str) -> bool:
        try:
            self._backend.set_alarm_state(alarm_name, reason, reason_data, value)
        except ResourceNotFound:
            return False
        return True

    def settle(
        self, alarm_name: str, value: str, reason: str | None, reason_data: str | None, at: datetime
    ) -> None:
        alarm = self._backend.alarms.get(alarm_name)
        if alarm is None:
            return
        alarm.state_value = value
        if reason is not None:
            alarm.state_reason = reason
        if reason_data is not None:
            alarm.state_reason_data = reason_data
        alarm.state_updated_timestamp = utc(at).replace(tzinfo=None)  # moto keeps naive UTC

    def put_events(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(events_backends[self.account][self.region].put_events(entries))

    def publish(self, topic_arn: str, message: str, subject: str) -> None:
        arn = parse_arn(topic_arn)
        sns_backends[arn.account][arn.region].publish(message, arn=topic_arn, subject=subject)

    def watch_set_alarm_state(self, changed: Callable[[Alarm, Alarm], None]) -> Callable[[], None]:
        """moto stores a SetAlarmState and says nothing; CloudWatch announces it."""
        original = CloudWatchResponse.set_alarm_state
        cloudwatch = self

        def set_alarm_state(response: CloudWatchResponse) -> Any:
            if response.current_account != cloudwatch.account:  # another account's evaluator's alarm
                return original(response)
            alarm = cloudwatch._backend.alarms.get(response._get_param("AlarmName"))
            before = alarm_of(alarm) if alarm is not None else None
            result = original(response)
            if alarm is not None and before is not None:
                changed(before, alarm_of(alarm))
            return result

        CloudWatchResponse.set_alarm_state = set_alarm_state  # type: ignore[method-assign,assignment]

        def unwatch() -> None:
            CloudWatchResponse.set_alarm_state = original  # type: ignore[method-assign]

        return unwatch

    def alarm_states(self, names: list[str]) -> dict[str, str]:
        """The state of each alarm named (hosting's rollout guards read them)."""
        alarms = self._backend.alarms
        return {name: str(alarms[name].state_value) for name in names if name in alarms}
