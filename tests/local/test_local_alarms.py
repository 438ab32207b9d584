"""The local plane's alarm evaluation (headrace/local/cloudwatch/) against moto's CloudWatch, in-process, on a
fixed clock; and the provisioning of a template's alarms, which moto's CloudFormation skips."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudwatch.models import MetricAggregatedDatum, MetricDatum, cloudwatch_backends
from moto.core.models import MockAWS

from headrace.local.cloudformation import ProvisionError
from headrace.local.cloudformation.api_requests import alarm_requests, generated_alarm_name
from headrace.local.cloudformation.intrinsics import StackReferences, pseudo_parameters
from headrace.local.cloudwatch.alarm import ALARM, INSUFFICIENT_DATA, OK, Unsupported
from headrace.local.cloudwatch.evaluator import AlarmEvaluator
from headrace.local.cloudwatch.metric_math import Number, evaluate_expression, parse_expression
from headrace.local.cloudwatch.statistics import statistic
from headrace.local.seams.cloudwatch import MotoCloudWatch, datum_of
from headrace.waiting import wait_for

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
# 30 s into a minute: the current, still-open 60 s period began at 10:15:00.
NOW = datetime(2026, 11, 23, 10, 15, 30, tzinfo=UTC)
NAMESPACE = "AWS/SageMaker"
VARIANT = [
    {"Name": "EndpointName", "Value": "headrace-dev-churn"},
    {"Name": "VariantName", "Value": "AllTraffic"},
]
ALARM_EVENTS = {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}


@dataclass(frozen=True)
class Aws:
    cloudwatch: Any
    events: Any
    sqs: Any
    sns: Any

    def queue(self, name: str) -> tuple[str, str]:
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return str(url), str(attributes["QueueArn"])

    def received(self, queue: str) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


@dataclass
class Watch:
    aws: Aws
    evaluator: AlarmEvaluator
    queue: str  # receives every alarm state change event on the default bus

    @property
    def cloudwatch(self) -> Any:
        return self.aws.cloudwatch

    def put(
        self,
        value: float | list[float],
        at: datetime = NOW,
        metric: str = "Invocation5XXErrors",
        dimensions: list[dict[str, str]] = VARIANT,
    ) -> None:
        datum: dict[str, Any] = {"MetricName": metric, "Dimensions": dimensions, "Timestamp": at}
        datum.update({"Values": value} if isinstance(value, list) else {"Value": value})
        self.cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=[datum])

    def alarm(self, name: str = "errors", **overrides: Any) -> str:
        request = {
            "AlarmName": name,
            "Namespace": NAMESPACE,
            "MetricName": "Invocation5XXErrors",
            "Dimensions": VARIANT,
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 5.0,
            "ComparisonOperator": "GreaterThanThreshold",
            **overrides,
        }
        self.cloudwatch.put_metric_alarm(**{k: v for k, v in request.items() if v is not None})
        return name

    def rate_alarm(self, name: str = "error-rate") -> str:
        """As CDK synthesizes a MathExpression alarm (stacks/deploy.py's 5xx share)."""

        def stat(query_id: str, metric: str) -> dict[str, Any]:
            stat = {"Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": VARIANT}}
            return {"Id": query_id, "MetricStat": {**stat, "Period": 60, "Stat": "Sum"}, "ReturnData": False}

        self.cloudwatch.put_metric_alarm(
            AlarmName=name,
            Metrics=[
                {"Id": "expr_1", "Expression": "errors / invocations", "ReturnData": True},
                stat("errors", "Invocation5XXErrors"),
                stat("invocations", "Invocations"),
            ],
            EvaluationPeriods=1,
            Threshold=0.1,
            ComparisonOperator="GreaterThanThreshold",
        )
        return name

    def state(self, name: str) -> dict[str, Any]:
        return dict(self.cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0])

    def events(self) -> list[dict[str, Any]]:
        return self.aws.received(self.queue)


@pytest.fixture(scope="module")
def mocked_aws() -> Iterator[tuple[MockAWS, Aws]]:
    # One mock and one set of clients for the module (boto3 clients take ~25 ms each); each test resets moto.
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws() as mocked:
            yield (
                mocked,
                Aws(*(boto3.client(s, region_name=REGION) for s in ("cloudwatch", "events", "sqs", "sns"))),
            )


@pytest.fixture
def watch(mocked_aws: tuple[MockAWS, Aws]) -> Watch:
    mocked, aws = mocked_aws
    mocked.reset()
    queue, queue_arn = aws.queue("alarm-events")
    aws.events.put_rule(Name="alarm-events", EventPattern=json.dumps(ALARM_EVENTS))
    aws.events.put_targets(Rule="alarm-events", Targets=[{"Id": "queue", "Arn": queue_arn}])
    return Watch(aws, AlarmEvaluator(MotoCloudWatch(ACCOUNT, REGION), clock=lambda: NOW), queue)


def test_a_sum_crossing_the_threshold_moves_the_alarm_from_ok_to_alarm_with_one_event(watch: Watch) -> None:
    name = watch.alarm()
    watch.put(2)
    watch.evaluator.evaluate()
    assert watch.state(name)["StateValue"] == OK
    watch.events()  # the first evaluation's INSUFFICIENT_DATA -> OK

    watch.put(4)
    changes = watch.evaluator.evaluate() + watch.evaluator.evaluate()

    assert [(c.previous.value, c.current.value) for c in changes] == [(OK, ALARM)]
    events = watch.events()
    assert len(events) == 1
    assert (events[0]["detail"]["previousState"]["value"], events[0]["detail"]["state"]["value"]) == (
        OK,
        ALARM,
    )
    state = watch.state(name)
    assert state["StateValue"] == ALARM
    assert state["StateReason"] == (
        "Threshold Crossed: 1 out of the last 1 datapoints [6.0 (23/11/26 10:15:00)] was greater than the "
        "threshold (5.0) (minimum 1 datapoint for OK -> ALARM transition)."
    )


def test_m_of_n_alarms_only_once_m_of_the_last_n_periods_breach(watch: Watch) -> None:
    name = watch.alarm(Statistic="Maximum", Threshold=10.0, EvaluationPeriods=3, DatapointsToAlarm=2)
    watch.put(20, at=NOW - timedelta(minutes=3))  # outside the three periods ending with the open one
    watch.put(20, at=NOW - timedelta(minutes=2))
    watch.put(5, at=NOW - timedelta(minutes=1))
    watch.put(5)
    watch.evaluator.evaluate()
    assert watch.state(name)["StateValue"] == OK

    watch.put(30)
    watch.evaluator.evaluate()
    assert watch.state(name)["StateValue"] == ALARM


def test_a_metric_that_stops_reporting_goes_to_insufficient_data(watch: Watch) -> None:
    name = watch.alarm()
    watch.put(1)
    watch.evaluator.evaluate()

    [change] = watch.evaluator.evaluate(NOW + timedelta(minutes=5))

    assert (change.previous.value, change.current.value) == (OK, INSUFFICIENT_DATA)
    assert watch.state(name)["StateReason"] == "Insufficient Data: 1 datapoint was unknown."


def test_missing_data_treated_as_breaching_alarms(watch: Watch) -> None:
    name = watch.alarm(EvaluationPeriods=2, TreatMissingData="breaching")
    watch.evaluator.evaluate()
    state = watch.state(name)
    assert state["StateValue"] == ALARM
    assert "2 missing datapoints were treated as [Breaching]" in state["StateReason"]


def test_missing_data_treated_as_not_breaching_returns_to_ok(watch: Watch) -> None:
    name = watch.alarm(TreatMissingData="notBreaching")
    watch.put(10)
    watch.evaluator.evaluate()
    assert watch.state(name)["StateValue"] == ALARM

    watch.evaluator.evaluate(NOW + timedelta(minutes=5))
    assert watch.state(name)["StateValue"] == OK


def test_ignored_missing_data_keeps_the_current_state(watch: Watch) -> None:
    name = watch.alarm(TreatMissingData="ignore")
    watch.put(10)
    watch.evaluator.evaluate()

    assert watch.evaluator.evaluate(NOW + timedelta(minutes=5)) == []
    assert watch.state(name)["StateValue"] == ALARM


def test_the_open_period_counts_only_once_it_has_data(watch: Watch) -> None:
    name = watch.alarm()
    watch.put(10, at=NOW - timedelta(minutes=1))
    watch.evaluator.evaluate()
    assert watch.state(name)["StateValue"] == ALARM  # the last closed period decides

    watch.put(1)
    watch.evaluator.evaluate()
    assert watch.state(name)["StateValue"] == OK  # the open one, once it holds a datapoint


def test_datapoints_with_other_dimensions_do_not_count(watch: Watch) -> None:
    name = watch.alarm()
    watch.put(10, dimensions=[*VARIANT, {"Name": "Region", "Value": "eu"}])
    watch.put(10, dimensions=VARIANT[:1])
    watch.put(1)
    watch.evaluator.evaluate()
    assert watch.state(name)["StateValue"] == OK


def test_p99_is_the_nearest_rank_of_the_single_values(watch: Watch) -> None:
    over = watch.alarm("latency-over", Statistic=None, ExtendedStatistic="p99", Threshold=98.5)
    at = watch.alarm("latency-at", Statistic=None, ExtendedStatistic="p99", Threshold=99.0)
    watch.put([float(v) for v in range(1, 101)])
    # A StatisticValues set has no distribution: it cannot move a percentile.
    watch.cloudwatch.put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": "Invocation5XXErrors",
                "Dimensions": VARIANT,
                "Timestamp": NOW,
                "StatisticValues": {"SampleCount": 10, "Sum": 10_000, "Minimum": 1000, "Maximum": 1000},
            }
        ],
    )
    watch.evaluator.evaluate()
    assert (watch.state(over)["StateValue"], watch.state(at)["StateValue"]) == (ALARM, OK)


def test_statistic_sets_count_towards_sum_sample_count_average_and_extremes() -> None:
    dims = [{"Name": "Model", "Value": "churn"}]
    datums = [
        datum_of(MetricDatum("Headrace", "m", 4.0, dims, NOW)),
        datum_of(MetricAggregatedDatum("Headrace", "m", 1.0, 9.0, 3.0, 12.0, dims, NOW)),
    ]
    assert [statistic(s, datums) for s in ("Sum", "SampleCount", "Average", "Minimum", "Maximum")] == [
        16.0,
        4.0,
        4.0,
        1.0,
        9.0,
    ]
    assert statistic("p50", datums) == 4.0


def test_a_metric_math_error_rate_alarms_when_the_ratio_crosses_the_threshold(watch: Watch) -> None:
    name = watch.rate_alarm()
    watch.put(1)
    watch.put(100, metric="Invocations")
    watch.evaluator.evaluate()
    assert watch.state(name)["StateValue"] == OK

    watch.put(20)
    watch.evaluator.evaluate()
    assert watch.state(name)["StateValue"] == ALARM


def test_a_metric_math_division_by_zero_leaves_the_period_missing(watch: Watch) -> None:
    name = watch.rate_alarm()
    watch.put(0)
    watch.put(0, metric="Invocations")
    watch.evaluator.evaluate()
    state = watch.state(name)
    assert (state["StateValue"], state["StateReason"]) == (
        INSUFFICIENT_DATA,
        "Insufficient Data: 1 datapoint was unknown.",
    )


def test_metric_math_follows_precedence_and_parentheses() -> None:
    operands = {"m1": 6.0, "m2": 2.0, "m3": None}
    assert evaluate_expression(parse_expression("m1 - m2 * 2"), operands) == 2.0
    assert evaluate_expression(parse_expression("(m1 - m2) * -2 / 4"), operands) == -2.0
    assert evaluate_expression(parse_expression("m1 - m2 - 1"), operands) == 3.0
    assert evaluate_expression(parse_expression("m1 + m3"), operands) is None
    assert parse_expression("1e3") == Number(1000.0)


@pytest.mark.parametrize("expression", ["RATE(m1)", "m1 ^ 2", "m1 +", "(m1"])
def test_metric_math_outside_arithmetic_is_unsupported(expression: str) -> None:
    with pytest.raises(Unsupported):
        parse_expression(expression)


def test_an_alarm_goes_back_to_ok_when_the_metric_recovers(watch: Watch) -> None:
    name = watch.alarm()
    watch.put(10)
    watch.evaluator.evaluate()
    watch.events()

    watch.put(1, at=NOW + timedelta(minutes=1))
    watch.evaluator.evaluate(NOW + timedelta(minutes=1))

    [event] = watch.events()
    assert (event["detail"]["previousState"]["value"], event["detail"]["state"]["value"]) == (ALARM, OK)
    assert (
        "[1.0 (23/11/26 10:16:00)] was not greater than the threshold (5.0)"
        in watch.state(name)["StateReason"]
    )


def test_an_unsupported_comparison_operator_is_reported_as_insufficient_data(watch: Watch) -> None:
    name = watch.alarm(ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold")
    watch.put(10)
    watch.evaluator.evaluate()
    state = watch.state(name)
    assert state["StateValue"] == INSUFFICIENT_DATA
    assert "LessThanLowerOrGreaterThanUpperThreshold is not supported locally" in state["StateReason"]


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def test_the_state_change_event_has_the_shape_of_the_sample_event(
    watch: Watch, load_event: Callable[[str], dict[str, Any]]
) -> None:
    sample = load_event("cloudwatch_alarm_state_change")
    name = watch.alarm(
        Statistic=None,
        ExtendedStatistic="p99",
        AlarmDescription="p99 model latency of headrace-dev-churn above 200.0 ms",
        MetricName="ModelLatency",
        Threshold=200_000.0,
    )
    watch.put(8000.0, metric="ModelLatency")
    watch.evaluator.evaluate()
    watch.put(900_000.0, metric="ModelLatency")
    watch.evaluator.evaluate()

    event = watch.events()[-1]
    assert _shape(event["detail"]) == _shape(sample["detail"])
    # The envelope is moto's (its SQS targets leave out `account`).
    assert set(event) <= set(sample)
    assert (event["source"], event["detail-type"]) == (sample["source"], sample["detail-type"])
    assert event["time"] == "2026-11-23T10:15:30Z"
    assert event["resources"] == [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"]
    assert event["detail"]["state"]["timestamp"] == "2026-11-23T10:15:30.000+0000"
    reason_data = json.loads(event["detail"]["state"]["reasonData"])
    assert reason_data["extendedStatistic"] == "p99"
    assert reason_data["recentDatapoints"] == [900_000.0]


def test_alarm_actions_publish_cloudwatchs_message_to_an_sns_topic(watch: Watch) -> None:
    topic = watch.aws.sns.create_topic(Name="guardrails")["TopicArn"]
    queue, queue_arn = watch.aws.queue("guardrail-mail")
    watch.aws.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    name = watch.alarm(AlarmActions=[topic])
    watch.put(10)
    watch.evaluator.evaluate()

    [notification] = watch.aws.received(queue)
    assert notification["Subject"] == f'ALARM: "{name}" in US East (N. Virginia)'
    message = json.loads(notification["Message"])
    assert (message["AlarmName"], message["OldStateValue"], message["NewStateValue"]) == (
        name,
        INSUFFICIENT_DATA,
        ALARM,
    )
    assert message["Trigger"]["MetricName"] == "Invocation5XXErrors"


def test_the_background_thread_moves_alarms_without_being_asked(watch: Watch) -> None:
    evaluator = AlarmEvaluator(MotoCloudWatch(ACCOUNT, REGION), interval_s=0.02)
    name = watch.alarm()
    watch.put(10, at=datetime.now(UTC))
    evaluator.start()
    try:
        wait_for(lambda: watch.state(name)["StateValue"] == ALARM, "the alarm to fire", timeout_s=5)
    finally:
        evaluator.stop()


# --- provisioning a template's alarms -----------------------------------------------------------------------

STACK = "headrace-dev-pipeline"
TEMPLATE: dict[str, Any] = {
    "Resources": {
        "GuardrailTopic1A2B3C4D": {"Type": "AWS::SNS::Topic"},
        "Endpoint5E6F7A8B": {"Type": "AWS::SageMaker::Endpoint", "Properties": {}},
        "DeployChurnErrors5xxAlarmC592D64A": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": {"Fn::Join": ["", ["Share of ", {"Ref": "AWS::StackName"}, "'s 5xx"]]},
                "AlarmName": {"Fn::Sub": "${AWS::StackName}-5xx"},
                "AlarmActions": [{"Ref": "GuardrailTopic1A2B3C4D"}],
                "ComparisonOperator": "GreaterThanThreshold",
                "EvaluationPeriods": 1,
                "Metrics": [
                    {"Expression": "errors / invocations", "Id": "expr_1", "ReturnData": True},
                    {
                        "Id": "errors",
                        "MetricStat": {
                            "Metric": {
                                "Dimensions": [
                                    {
                                        "Name": "EndpointName",
                                        "Value": {"Fn::GetAtt": ["Endpoint5E6F7A8B", "EndpointName"]},
                                    },
                                    {"Name": "VariantName", "Value": "AllTraffic"},
                                ],
                                "MetricName": "Invocation5XXErrors",
                                "Namespace": "AWS/SageMaker",
                            },
                            "Period": 60,
                            "Stat": "Sum",
                        },
                        "ReturnData": False,
                    },
                ],
                "Tags": [{"Key": "headrace:model", "Value": "churn"}],
                "Threshold": 0.01,
                "TreatMissingData": "notBreaching",
            },
        },
        "DeployChurnLatencyAlarmCB7EB7DE": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "ComparisonOperator": "GreaterThanThreshold",
                "Dimensions": [{"Name": "EndpointName", "Value": "headrace-dev-churn"}],
                "EvaluationPeriods": 1,
                "ExtendedStatistic": "p99",
                "MetricName": "ModelLatency",
                "Namespace": "AWS/SageMaker",
                "Period": 60,
                "Threshold": 200000,
            },
        },
    }
}
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:guardrails"


def _references() -> StackReferences:
    attributes = {("Endpoint5E6F7A8B", "EndpointName"): "headrace-dev-churn"}
    return StackReferences(
        physical_ids={"GuardrailTopic1A2B3C4D": TOPIC_ARN, "Endpoint5E6F7A8B": "arn:aws:sagemaker:endpoint"},
        pseudo_parameters=pseudo_parameters(ACCOUNT, REGION, STACK),
        attribute=lambda logical_id, name: attributes.get((logical_id, name)),
    )


def test_a_templates_alarms_are_created_with_their_intrinsics_resolved(watch: Watch) -> None:
    for request in alarm_requests(TEMPLATE, STACK, _references()):
        watch.cloudwatch.put_metric_alarm(**request)

    alarms = {a["AlarmName"]: a for a in watch.cloudwatch.describe_alarms()["MetricAlarms"]}
    errors = alarms[f"{STACK}-5xx"]
    assert errors["AlarmDescription"] == f"Share of {STACK}'s 5xx"
    assert errors["AlarmActions"] == [TOPIC_ARN]
    latency = alarms[generated_alarm_name(STACK, "DeployChurnLatencyAlarmCB7EB7DE")]
    assert (latency["ExtendedStatistic"], latency["Threshold"]) == ("p99", 200000.0)
    # moto's DescribeAlarms leaves out an alarm's Metrics: read them from its model.
    [_, stat] = cloudwatch_backends[ACCOUNT][REGION].alarms[f"{STACK}-5xx"].metric_data_queries
    assert stat.metric_stat is not None
    assert {d.name: d.value for d in stat.metric_stat.metric.dimensions}[
        "EndpointName"
    ] == "headrace-dev-churn"


def test_a_template_alarm_with_an_unresolvable_reference_fails_provisioning_by_name() -> None:
    template = {
        "Resources": {
            "BrokenAlarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {"AlarmActions": [{"Ref": "NoSuchTopic"}]},
            }
        }
    }
    with pytest.raises(ProvisionError, match="BrokenAlarm: cannot resolve Ref NoSuchTopic"):
        alarm_requests(template, STACK, _references())
