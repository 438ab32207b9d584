"""What a state change looks like from outside: the "CloudWatch Alarm State Change" event and the message
CloudWatch publishes to an alarm's SNS actions."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from headrace.local.clock import utc
from headrace.local.cloudwatch.alarm import INSUFFICIENT_DATA, Alarm, MetricQuery
from headrace.local.cloudwatch.metrics import MetricSpec
from headrace.local.cloudwatch.spec import dimension_set
from headrace.local.cloudwatch.timestamps import aws_timestamp

EVENT_SOURCE = "aws.cloudwatch"
EVENT_DETAIL_TYPE = "CloudWatch Alarm State Change"
# SNS subjects are limited to 100 characters (SNS Publish API reference).
SNS_SUBJECT_LIMIT = 100
REGION_NAMES = {"us-east-1": "US East (N. Virginia)"}


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

    @classmethod
    def of(cls, alarm: Alarm, previous: AlarmState, current: AlarmState) -> StateChange:
        return cls(alarm.name, alarm.arn, previous, current, state_change_detail(alarm, previous, current))

    def event_entry(self) -> dict[str, Any]:
        """The PutEvents entry CloudWatch puts on the default bus."""
        return {
            "Source": EVENT_SOURCE,
            "DetailType": EVENT_DETAIL_TYPE,
            "Resources": [self.alarm_arn],
            "Detail": json.dumps(self.detail),
            # Epoch seconds, as moto's own PutEvents sets it: moto's rule targets splice `time` into JSON
            # unquoted (moto/events/utils.py), so an ISO string breaks delivery to SQS and Logs targets.
            "Time": utc(self.current.timestamp).timestamp(),
        }


def current_state(alarm: Alarm) -> AlarmState:
    """The alarm's state as CloudWatch would show it: one never evaluated is INSUFFICIENT_DATA."""
    return AlarmState(
        value=INSUFFICIENT_DATA if alarm.unchecked else alarm.state_value,
        reason=alarm.state_reason,
        reason_data=alarm.state_reason_data or "{}",
        timestamp=alarm.state_updated_timestamp,
    )


def _metric_stat_configuration(alarm: Alarm, query: MetricQuery) -> dict[str, Any]:
    stat = query.metric_stat
    if stat is None:
        return {}
    metric = MetricSpec(stat.namespace, stat.metric_name, dimension_set(stat.dimensions), stat.stat)
    return {"metricStat": metric.configuration(int(stat.period or query.period or alarm.period or 0))}


def configuration_metrics(alarm: Alarm) -> list[dict[str, Any]]:
    """The event's `configuration.metrics`, for single-metric and metric math alarms alike."""
    if not alarm.metric_data_queries:
        metric = MetricSpec(
            alarm.namespace or "",
            alarm.metric_name or "",
            dimension_set(alarm.dimensions),
            alarm.extended_statistic or alarm.statistic or "",
        )
        # CloudWatch names the single metric of an alarm with a generated id.
        metric_id = str(uuid.uuid5(uuid.NAMESPACE_URL, alarm.arn))
        return [
            {"id": metric_id, "metricStat": metric.configuration(int(alarm.period or 0)), "returnData": True}
        ]
    return [
        {
            "id": query.id,
            **({"expression": query.expression} if query.expression else {}),
            **({"label": query.label} if query.label else {}),
            **_metric_stat_configuration(alarm, query),
            "returnData": bool(query.expression) if query.return_data is None else query.return_data,
        }
        for query in alarm.metric_data_queries
    ]


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
        "Dimensions": [{"value": value, "name": name} for name, value in alarm.dimensions],
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
        "AlarmArn": alarm.arn,
        "OldStateValue": change.previous.value,
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "Trigger": _trigger(alarm),
    }


def alarm_subject(alarm: Alarm, change: StateChange, region: str) -> str:
    """The subject of CloudWatch's SNS alarm message."""
    region_name = REGION_NAMES.get(region, region)
    return f'{change.current.value}: "{alarm.name}" in {region_name}'[:SNS_SUBJECT_LIMIT]
