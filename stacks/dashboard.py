"""A CloudWatch dashboard per model: its data arriving, its training runs and gate outcomes, its endpoint's
traffic, latency and errors, and its drift scores, beside the state of its alarms.

Headrace's own counters are EMF metrics in the stage's namespace. `PowertoolsMetrics.count`
(headrace/metrics.py) gives them the dimension `model`, and Powertools adds `service`, the publishing
function's POWERTOOLS_SERVICE_NAME, to every metric; the drift check's and the serving container's metrics
use `Model` (headrace/monitoring/aws.py, containers/serve/inference/quality.py). A metric is found only by
its exact dimension set, so each one is written here with the dimensions its publisher gives it
(tests/infrastructure/test_stages.py checks them against the publishers).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from headrace.config import ModelConfig
from headrace.naming import Names
from headrace.serving.rollout import QUALITY_METRIC, VARIANT
from stacks.ingest import INGEST_SERVICE

ENDPOINT_NAMESPACE = "AWS/SageMaker"
# headrace/ingest/service.py (ingest function)
INGEST_METRICS = ("DatasetsAccepted", "DatasetsRejected", "DatasetsDuplicate")
# headrace/training/prepare.py, run_failed.py, register.py (one function each) and evaluate.py
RUN_METRICS = ("TrainingRunsStarted", "TrainingRunsFailed", "ModelVersionsRegistered")
GATE_METRICS = ("CandidatesPassed", "CandidatesRejected")
# headrace/serving/deploy.py (deploy-failed function)
DEPLOY_METRICS = ("DeploymentsRolledBack", "DeploymentsFailed")
# headrace/monitoring/aws.py (drift-finish function)
DRIFTED_FEATURES = "DriftedFeatures"
FEATURE_PSI = "FeaturePSI"
# Counters add up per hour; endpoint and drift series are read at their own resolution.
COUNT_PERIOD = Duration.hours(1)
ENDPOINT_PERIOD = Duration.minutes(5)
DRIFT_PERIOD = Duration.hours(1)
WIDTH = 8
HEIGHT = 6


class ModelDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        model: ModelConfig,
        alarm_names: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self._names = names
        self._model = model
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=names.dashboard(model.name),
            default_interval=Duration.days(7),
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    f"## {model.name} ({names.stage})\n{model.description or ''} "
                    f"Endpoint `{names.endpoint(model.name)}`; alarms notify `{names.alerts_topic}`."
                ),
                width=3 * WIDTH,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            self._counts("Data arrival", INGEST_METRICS, INGEST_SERVICE),
            self._training(),
            self._counts("Gate outcomes", GATE_METRICS, names.evaluate_function),
        )
        self.dashboard.add_widgets(*self._endpoint())
        self.dashboard.add_widgets(
            *self._drift(),
            cloudwatch.AlarmStatusWidget(
                alarms=self._alarms(alarm_names), title="Alarms", width=WIDTH, height=HEIGHT
            ),
        )

    def _alarms(self, alarm_names: Sequence[str]) -> list[cloudwatch.IAlarm]:
        """By ARNs built from the names, not the alarms' attributes: the dashboard's body then refers to no
        resource some tools (moto's CloudFormation, which skips alarms) do not model."""
        stack = Stack.of(self)
        return [
            cloudwatch.Alarm.from_alarm_arn(
                self,
                f"Alarm{index}",
                stack.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name=name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                ),
            )
            for index, name in enumerate(alarm_names)
        ]

    def _counter(self, name: str, service: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self._names.metric_namespace,
            metric_name=name,
            dimensions_map={"model": self._model.name, "service": service, **self._names.metric_dimensions},
            statistic="Sum",
            period=COUNT_PERIOD,
        )

    def _counts(self, title: str, metrics: Sequence[str], service: str) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(
            title=title,
            left=[self._counter(name, service) for name in metrics],
            stacked=True,
            width=WIDTH,
            height=HEIGHT,
        )

    def _training(self) -> cloudwatch.GraphWidget:
        names = self._names
        started, failed, registered = RUN_METRICS
        return cloudwatch.GraphWidget(
            title="Training runs",
            left=[
                self._counter(started, names.prepare_function),
                self._counter(failed, names.run_failed_function),
                self._counter(registered, names.register_function),
            ],
            width=WIDTH,
            height=HEIGHT,
        )

    def _endpoint_metric(self, name: str, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=ENDPOINT_NAMESPACE,
            metric_name=name,
            dimensions_map={"EndpointName": self._names.endpoint(self._model.name), "VariantName": VARIANT},
            statistic=statistic,
            period=ENDPOINT_PERIOD,
        )

    def _endpoint(self) -> list[cloudwatch.IWidget]:
        rollout = self._model.rollout
        invocations = cloudwatch.GraphWidget(
            title="Endpoint invocations and errors",
            left=[self._endpoint_metric("Invocations", "Sum")],
            right=[
                self._endpoint_metric("Invocation4XXErrors", "Sum"),
                self._endpoint_metric("Invocation5XXErrors", "Sum"),
            ],
            width=WIDTH,
            height=HEIGHT,
        )
        latency = cloudwatch.GraphWidget(
            title="Model latency (microseconds)",
            left=[self._endpoint_metric("ModelLatency", "p50"), self._endpoint_metric("ModelLatency", "p99")],
            left_annotations=[
                cloudwatch.HorizontalAnnotation(
                    value=rollout.max_p99_latency_ms * 1000, label="p99 guard", color=cloudwatch.Color.RED
                )
            ],
            width=WIDTH,
            height=HEIGHT,
        )
        deployments = cloudwatch.GraphWidget(
            title="Invalid predictions and failed rollouts",
            left=[
                cloudwatch.Metric(
                    namespace=self._names.metric_namespace,
                    metric_name=QUALITY_METRIC,
                    dimensions_map={"Model": self._model.name, **self._names.metric_dimensions},
                    statistic="Sum",
                    period=ENDPOINT_PERIOD,
                )
            ],
            right=[self._counter(name, self._names.deploy_failed_function) for name in DEPLOY_METRICS],
            width=WIDTH,
            height=HEIGHT,
        )
        return [invocations, latency, deployments]

    def _drift_metric(self, name: str, statistic: str, **dimensions: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self._names.metric_namespace,
            metric_name=name,
            dimensions_map={
                "Model": self._model.name,
                **dimensions,
                "service": self._names.drift_finish_function,
                **self._names.metric_dimensions,
            },
            statistic=statistic,
            period=DRIFT_PERIOD,
        )

    def _drift(self) -> list[cloudwatch.IWidget]:
        monitoring = self._model.monitoring
        drifted = cloudwatch.GraphWidget(
            title="Drifted features per check",
            left=[self._drift_metric(DRIFTED_FEATURES, "Maximum")],
            left_annotations=[
                cloudwatch.HorizontalAnnotation(value=1, label="drift alarm", color=cloudwatch.Color.RED)
            ],
            width=WIDTH,
            height=HEIGHT,
        )
        psi = cloudwatch.GraphWidget(
            title="PSI per feature",
            left=[
                self._drift_metric(FEATURE_PSI, "Maximum", Feature=column.name).with_(label=column.name)
                for column in self._model.data.features
            ],
            left_annotations=[
                cloudwatch.HorizontalAnnotation(
                    value=monitoring.psi_threshold, label="PSI threshold", color=cloudwatch.Color.ORANGE
                )
            ],
            width=WIDTH,
            height=HEIGHT,
        )
        return [drifted, psi]
