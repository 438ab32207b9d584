"""Powertools idempotency on the ledger table (headrace.aws.idempotency) against moto in-process: the
persistence layer, and so its DynamoDB client, is built by the first guarded call, never at cold start."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer, IdempotencyConfig

from functions.retrain import handler as retrain_function
from headrace.aws.clients import LazyClient, lazy_client
from headrace.aws.idempotency import IdempotentOnce, ledger_persistence
from headrace.ledger import RetrainDecision
from tests.support.moto import LEDGER_TABLE, LambdaContext, MotoAccount

DECISION = RetrainDecision(
    model="churn",
    alarm="headrace-dev-churn-drift",
    episode="2026-11-23T10:00:00Z",
    decision="skipped",
    reason="cooldown",
    decided_at=datetime(2026, 11, 23, 10, 0, 1, tzinfo=UTC),
)


class Built:
    """The persistence factory, counting its calls."""

    def __init__(self, dynamodb: LazyClient) -> None:
        self.dynamodb = dynamodb
        self.calls = 0

    def __call__(self) -> BasePersistenceLayer:
        self.calls += 1
        return ledger_persistence(LEDGER_TABLE, self.dynamodb)


def test_the_persistence_layer_and_its_client_are_built_by_the_first_call_only(
    moto_account: MotoAccount,
) -> None:
    dynamodb = lazy_client("dynamodb")
    built = Built(dynamodb)
    config = IdempotencyConfig()
    config.register_lambda_context(LambdaContext())
    once = IdempotentOnce(built, config, RetrainDecision, "headrace-test")
    assert built.calls == 0
    assert dynamodb._client is None

    works: list[int] = []

    def work() -> RetrainDecision:
        works.append(1)
        return DECISION

    first = once({"alarm": "a", "episode": "1"}, work)
    replayed = once({"alarm": "a", "episode": "1"}, work)

    assert (first, replayed) == (DECISION, DECISION)
    assert works == [1]
    assert built.calls == 1
    assert dynamodb._client is not None


def test_the_retrain_runtime_builds_no_client_at_cold_start(
    moto_account: MotoAccount, monkeypatch: pytest.MonkeyPatch, repo_root: Path, built_clients: list[str]
) -> None:
    built = built_clients
    for name, value in {
        "POWERTOOLS_SERVICE_NAME": "retrain-cold-start",
        "POWERTOOLS_METRICS_NAMESPACE": "Headrace",
        "HEADRACE_STAGE": "dev",
        "LEDGER_TABLE": LEDGER_TABLE,
        "EVENT_BUS_NAME": "headrace-dev",
        "TRAINING_STATE_MACHINES": json.dumps({"churn": "arn:aws:states:us-east-1:1:stateMachine:m"}),
        "HEADRACE_MODELS_DIR": str(repo_root / "models"),
    }.items():
        monkeypatch.setenv(name, value)

    runtime = retrain_function._runtime()

    assert built == []
    runtime.ports.ledger.retrains("churn", datetime(2026, 1, 1, tzinfo=UTC))
    assert built == ["dynamodb"]
