"""The monitoring steps' ports with boto3 and Powertools, and the `connect_*` functions that bundle them with
the shared adapters (headrace.aws). Nothing runs at import."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from botocore.exceptions import ClientError

from headrace.aws.clients import lazy_client
from headrace.aws.clock import now
from headrace.aws.errors import error_code
from headrace.aws.events import publisher_for
from headrace.aws.idempotency import IdempotentOnce, ledger_persistence
from headrace.aws.s3 import S3Store
from headrace.lambda_env import FunctionSettings
from headrace.ledger import DynamoLedger, RetrainDecision
from headrace.monitoring.ports import DriftPorts
from headrace.monitoring.retrain import RetrainPorts
from headrace.naming import STAGE_DIMENSION

if TYPE_CHECKING:  # the retrain function imports this module and runs without numpy/pandas
    from headrace.drift import DriftResult


class EndpointArtifacts:
    def __init__(self, sagemaker: Any) -> None:
        self._sagemaker = sagemaker

    def artifact(self, endpoint: str) -> tuple[str, str] | None:
        try:
            config = self._sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        except ClientError as exc:
            if error_code(exc) == "ValidationException":
                return None
            raise
        variant = self._sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
        model = self._sagemaker.describe_model(ModelName=variant["ModelName"])
        container = model.get("PrimaryContainer") or model["Containers"][0]
        return str(config), str(container["ModelDataUrl"])


class EmfMetrics:
    """One EMF document per metric, every metric with the stage (headrace.naming.STAGE_DIMENSION) among its
    dimensions: the drift and quality checks' writer."""

    def __init__(self, namespace: str, stage: str) -> None:
        self._namespace = namespace
        self._stage = stage

    def _put(self, name: str, value: float, unit: MetricUnit, **dimensions: str) -> None:
        with single_metric(name=name, unit=unit, value=value, namespace=self._namespace) as metric:
            for key, dimension in {**dimensions, STAGE_DIMENSION: self._stage}.items():
                metric.add_dimension(name=key, value=dimension)


class PowertoolsDriftMetrics(EmfMetrics):
    """Per feature scores carry the dimensions Model and Feature."""

    def publish(self, model: str, result: DriftResult) -> None:
        self._put("DriftedFeatures", float(len(result.drifted_features)), MetricUnit.Count, Model=model)
        for feature in result.features:
            if feature.psi is not None:
                self._put("FeaturePSI", feature.psi, MetricUnit.NoUnit, Model=model, Feature=feature.name)
            if feature.ks_statistic is not None:
                self._put(
                    "FeatureKS", feature.ks_statistic, MetricUnit.NoUnit, Model=model, Feature=feature.name
                )

    def rows(self, model: str, rows: int) -> None:
        self._put("DriftCheckRows", float(rows), MetricUnit.Count, Model=model)


class StepFunctionsTraining:
    def __init__(self, sfn: Any, machines: Mapping[str, str]) -> None:
        self._sfn = sfn
        self._machines = machines

    def start(self, model: str, name: str, payload: str) -> str:
        machine = self._machines[model]
        try:
            return str(
                self._sfn.start_execution(stateMachineArn=machine, name=name, input=payload)["executionArn"]
            )
        except ClientError as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                raise
            return machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"


# A redelivered alarm event (EventBridge retries for up to 24 hours) replays the decision already made.
IDEMPOTENCY_TTL_S = 48 * 3600


def connect_drift(settings: FunctionSettings, session: boto3.Session | None = None) -> DriftPorts:
    """The drift check's ports; each client is made when a step first uses it."""
    return DriftPorts(
        store=S3Store(lazy_client("s3", session)),
        serving=EndpointArtifacts(lazy_client("sagemaker", session)),
        ledger=DynamoLedger(lazy_client("dynamodb", session), settings.ledger_table),
        metrics=PowertoolsDriftMetrics(settings.metrics_namespace, settings.stage),
        clock=now,
    )


def connect_retrain(
    settings: FunctionSettings,
    training_state_machines: Mapping[str, str],
    session: boto3.Session | None = None,
) -> tuple[RetrainPorts, IdempotencyConfig]:
    """Retraining's ports, and the idempotency config the handler hands each invocation's deadline."""
    dynamodb = lazy_client("dynamodb", session)
    idempotency = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_TTL_S)
    ports = RetrainPorts(
        ledger=DynamoLedger(dynamodb, settings.ledger_table),
        runs=StepFunctionsTraining(lazy_client("stepfunctions", session), training_state_machines),
        events=publisher_for(settings, session),
        once=IdempotentOnce(
            partial(ledger_persistence, settings.ledger_table, dynamodb),
            idempotency,
            RetrainDecision,
            "headrace-retrain",
        ),
        clock=now,
    )
    return ports, idempotency
