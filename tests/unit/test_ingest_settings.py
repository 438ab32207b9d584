"""The ingest function's environment: every variable required, each problem named."""

from __future__ import annotations

import json

import pytest

from headrace.config import ModelConfig
from headrace.ingest.settings import IngestSettings, SettingsError

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:headrace-dev-churn-training"


@pytest.fixture
def environ() -> dict[str, str]:
    return {
        "POWERTOOLS_SERVICE_NAME": "ingest",
        "POWERTOOLS_METRICS_NAMESPACE": "Headrace",
        "HEADRACE_STAGE": "dev",
        "DATA_BUCKET": "data",
        "LEDGER_TABLE": "ledger",
        "TRAINING_STATE_MACHINES": json.dumps({"churn": MACHINE}),
        "EVENT_BUS_NAME": "default",
    }


def test_a_complete_environment_parses(environ: dict[str, str]) -> None:
    settings = IngestSettings.from_environ(environ)

    assert settings.training_state_machines == {"churn": MACHINE}
    assert settings.models_dir is None


def test_every_missing_variable_is_named(environ: dict[str, str]) -> None:
    del environ["LEDGER_TABLE"], environ["EVENT_BUS_NAME"]

    with pytest.raises(SettingsError, match=r"LEDGER_TABLE: Field required; EVENT_BUS_NAME: Field required"):
        IngestSettings.from_environ(environ)


def test_state_machines_that_are_not_json_are_refused(environ: dict[str, str]) -> None:
    environ["TRAINING_STATE_MACHINES"] = "churn=arn"

    with pytest.raises(SettingsError, match="TRAINING_STATE_MACHINES: Invalid JSON"):
        IngestSettings.from_environ(environ)


def test_a_state_machine_that_is_not_an_arn_is_refused(environ: dict[str, str]) -> None:
    environ["TRAINING_STATE_MACHINES"] = json.dumps({"churn": "headrace-dev-churn-training"})

    with pytest.raises(SettingsError, match=r"TRAINING_STATE_MACHINES\.churn"):
        IngestSettings.from_environ(environ)


def test_a_malformed_stage_is_refused(environ: dict[str, str]) -> None:
    environ["HEADRACE_STAGE"] = "Prod-1"

    with pytest.raises(SettingsError, match="HEADRACE_STAGE: stage 'Prod-1' must match"):
        IngestSettings.from_environ(environ)


def test_a_model_without_a_state_machine_is_named(
    environ: dict[str, str], example_model: ModelConfig
) -> None:
    environ["TRAINING_STATE_MACHINES"] = json.dumps({"other": MACHINE})
    settings = IngestSettings.from_environ(environ)

    with pytest.raises(SettingsError, match="no state machine for churn"):
        settings.check_models({"churn": example_model})
