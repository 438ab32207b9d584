"""The retrain function's side of AWS: its settings, its ports with boto3 and Powertools (idempotency keyed
on the alarm episode), and the runtime its handler builds once per environment. Apart from aws.py and
runtime.py, so that the drift and quality checks' functions import neither idempotency nor retraining."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import boto3
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from botocore.exceptions import ClientError
from pydantic import Field, Json

from headrace.aws.clients import lazy_client
from headrace.aws.clock import now
from headrace.aws.errors import error_code
from headrace.aws.events import publisher_for
from headrace.aws.idempotency import IdempotentOnce, ledger_persistence
from headrace.config import ModelConfig
from headrace.lambda_env import BusSettings, FunctionSettings, Runtime, models_for
from headrace.ledger import DynamoLedger, RetrainDecision
from headrace.monitoring.retrain import RetrainPorts


class RetrainSettings(BusSettings):
    training_state_machines: Json[dict[str, Annotated[str, Field(min_length=1)]]] = Field(
        alias="TRAINING_STATE_MACHINES"
    )


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


@dataclass(frozen=True)
class RetrainRuntime(Runtime[RetrainSettings, RetrainPorts]):
    idempotency: IdempotencyConfig

    def register(self, context: Any) -> None:
        """Give idempotency the invocation's deadline, so a timed-out attempt does not block its retry."""
        if hasattr(context, "get_remaining_time_in_millis"):
            self.idempotency.register_lambda_context(context)


def retrain_runtime(settings: RetrainSettings, models_document: Path) -> RetrainRuntime:
    models: dict[str, ModelConfig] = models_for(settings, models_document)
    ports, idempotency = connect_retrain(settings, settings.training_state_machines)
    return RetrainRuntime(settings=settings, models=models, ports=ports, idempotency=idempotency)
