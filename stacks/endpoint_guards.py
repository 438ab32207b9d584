"""The CloudWatch alarms that guard a model's endpoint rollouts (DeploymentConfig.AutoRollbackConfiguration):
SageMaker watches them during every traffic shift and the bake, and rolls back when one fires."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from headrace.config import ModelConfig
from headrace.naming import Names
from headrace.serving import rollout

# SageMaker's endpoint metrics: one datapoint a minute (ModelLatency in microseconds).
ENDPOINT_NAMESPACE = "AWS/SageMaker"
ALARM_PERIOD = Duration.minutes(1)


class EndpointGuards(Construct):
    """5xx share, p99 latency and prediction quality of one model's endpoint. No traffic is not a breach: a
    quiet endpoint must not roll back."""

    def __init__(self, scope: Construct, construct_id: str, *, names: Names, model: ModelConfig) -> None:
        super().__init__(scope, construct_id)
        limits = model.rollout
        endpoint_name = names.endpoint(model.name)
        variant = {"EndpointName": endpoint_name, "VariantName": rollout.VARIANT}

        def endpoint_metric(metric: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=ENDPOINT_NAMESPACE,
                metric_name=metric,
                dimensions_map=variant,
                statistic=statistic,
                period=ALARM_PERIOD,
            )

        def guard(
            construct_id: str, kind: str, description: str, metric: cloudwatch.IMetric, threshold: float
        ) -> cloudwatch.Alarm:
            return cloudwatch.Alarm(
                self,
                construct_id,
                alarm_name=names.endpoint_alarm(model.name, kind),
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

        self.alarms = [
            guard(
                "Errors5xxAlarm",
                "5xx",
                f"Share of {endpoint_name}'s invocations answered 5xx above {limits.max_5xx_rate}",
                cloudwatch.MathExpression(
                    expression="errors / invocations",
                    using_metrics={
                        "errors": endpoint_metric("Invocation5XXErrors", "Sum"),
                        "invocations": endpoint_metric("Invocations", "Sum"),
                    },
                    period=ALARM_PERIOD,
                ),
                limits.max_5xx_rate,
            ),
            guard(
                "LatencyAlarm",
                "latency",
                f"p99 model latency of {endpoint_name} above {limits.max_p99_latency_ms} ms",
                endpoint_metric("ModelLatency", "p99"),
                # ModelLatency is in microseconds.
                limits.max_p99_latency_ms * 1000,
            ),
            guard(
                "QualityAlarm",
                "quality",
                f"{model.name}'s serving container returned predictions outside the objective's range "
                "(not finite, or not a probability)",
                cloudwatch.Metric(
                    namespace=names.metric_namespace,
                    metric_name=rollout.QUALITY_METRIC,
                    # The stage too: dev and prod in one account must not share this metric.
                    dimensions_map={"Model": model.name, **names.metric_dimensions},
                    statistic="Sum",
                    period=ALARM_PERIOD,
                ),
                0,
            ),
        ]
        # Built from the names, not the alarms' attributes: the names are fixed, and templates stay free of
        # references to resources some tools (moto's CloudFormation) do not model.
        stack = Stack.of(self)
        self.alarm_arns = [
            stack.format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name=names.endpoint_alarm(model.name, kind),
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for kind in rollout.GUARDS
        ]
