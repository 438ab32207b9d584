"""Retraining on an alarm: one decision per alarm episode (the alarm entering ALARM once), started or
skipped with the reason, every decision kept in the ledger (headrace.ledger.RetrainDecision) and shown by
`headrace status`.

Guards, all from the model's `monitoring` config: a cooldown after the last retraining started, a cap on
retrainings per UTC day, and dedupe of the episode (a redelivered event gets the decision already made:
the handler wraps `decide` in Powertools idempotency keyed on the episode). A retraining is a training run
of the newest uploaded dataset version plus the recent datasets `monitoring.retrain_data` names (labelled
production rows among them), so it goes through the same gate as any other run.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from headrace.aws.eventbridge import EventBridgeEvent
from headrace.config import ModelConfig
from headrace.ledger import RetrainDecision, RetrainLedger, TrainingInput
from headrace.ledger.keys import sort_time
from headrace.naming import Names, execution_name
from headrace.ports import Clock, EventPublisher, Once
from headrace.waiting import WaitTimeout, wait_for

log = logging.getLogger("headrace.monitoring")

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
RETRAIN_DECIDED = "Retraining Decided"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A breached quality check publishes its breach as it writes its labelled production rows, which ingest then
# validates and records within seconds: the alarm can fire first. Inside the function's one-minute timeout.
PRODUCTION_WAIT_S = 40.0


class AlarmState(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    value: str
    reason: str = ""
    timestamp: str


class AlarmDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    alarmName: str
    state: AlarmState
    previousState: AlarmState | None = None


class AlarmStateChange(EventBridgeEvent):
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    source: Literal["aws.cloudwatch"]
    detail: AlarmDetail


class UnknownAlarm(LookupError):
    """The alarm is not one of this deployment's retraining triggers."""


class TrainingRuns(Protocol):
    def start(self, model: str, name: str, payload: str) -> str:
        """StartExecution of the model's training state machine; returns the execution ARN."""
        ...


@dataclass(frozen=True)
class RetrainPorts:
    """What a retrain decision touches; beside the decision, so that the retrain function (no numpy) never
    imports the drift check's ports."""

    ledger: RetrainLedger
    runs: TrainingRuns
    events: EventPublisher
    once: Once[RetrainDecision]
    clock: Clock
    # How long a live-quality decision waits for its check's labelled production rows to be ingested.
    production_wait_s: float = PRODUCTION_WAIT_S


def triggers(model: ModelConfig, names: Names) -> dict[str, str]:
    """The alarms that retrain `model`, by name: its drift alarm, its endpoint's quality alarm (predictions'
    health) and its live-quality alarm (predictions against ground truth, stacks/quality.py)."""
    return {
        names.model_alarm(model.name, "drift"): "drift",
        names.endpoint_alarm(model.name, "quality"): "quality",
        names.model_alarm(model.name, "live-quality"): "live-quality",
    }


def model_for_alarm(alarm: str, models: Sequence[ModelConfig], names: Names) -> ModelConfig:
    for model in models:
        if alarm in triggers(model, names):
            return model
    raise UnknownAlarm(f"alarm {alarm} does not retrain any model of this deployment")


def episode_of(event: AlarmStateChange) -> str:
    """One alarm episode: the alarm, and when it entered the state."""
    return f"{event.detail.alarmName}@{event.detail.state.timestamp}"


def decide(
    event: AlarmStateChange,
    model: ModelConfig,
    ports: RetrainPorts,
) -> RetrainDecision:
    """The decision for this alarm episode, made once: a redelivered event replays it."""
    return ports.once({"episode": episode_of(event)}, lambda: _decide(event, model, ports))


def training_data(model: ModelConfig, ledger: RetrainLedger, now: datetime) -> TrainingInput | None:
    """What a retraining run trains on (`monitoring.retrain_data`): the newest uploaded dataset version, and
    beside it every other version accepted within `history_days` (production ones when `production`),
    newest first. None when no upload was ever accepted: production rows alone are not a training set."""
    wanted = model.monitoring.retrain_data
    accepted = ledger.datasets_since(model.name, EPOCH)
    newest = next((d for d in accepted if d.source == "upload"), None)
    if newest is None:
        return None
    since = sort_time(now - timedelta(days=wanted.history_days))
    kinds = {"upload", "production"} if wanted.production else {"upload"}
    extra = [
        d.version()
        for d in accepted
        if d.sha256 != newest.sha256 and d.received_at >= since and d.source in kinds
    ]
    return TrainingInput.of(newest.version(), extra)


def _await_production(model: ModelConfig, alarm: str, ports: RetrainPorts) -> str | None:
    """On the live-quality alarm, wait (at most `production_wait_s`) until the labelled production rows of the
    newest breached check are a dataset version, so that the run trains on them; what is still missing then
    is said, and the run goes on without them."""
    # The live-quality alarm is Names.model_alarm(model, "live-quality"): `<prefix>-<model>-live-quality`.
    if not alarm.endswith(f"-{model.name}-live-quality") or not model.monitoring.retrain_data.production:
        return None
    checks = ports.ledger.quality_checks(model.name, 1)
    sha = checks[0].production_sha256 if checks and checks[0].status == "breach" else None
    if sha is None:
        return None
    try:
        wait_for(
            lambda: ports.ledger.dataset(model.name, sha),
            f"dataset {sha[:12]}",
            timeout_s=ports.production_wait_s,
            interval_s=1.0,
        )
    except WaitTimeout:
        log.warning("retraining %s without the production rows of %s", model.name, checks[0].check_id)
        return (
            f"the labelled production rows of quality check {checks[0].check_id} "
            f"({checks[0].production_dataset_key}) were not accepted within {ports.production_wait_s:.0f} s: "
            "trained without them"
        )
    return None


def _decide(event: AlarmStateChange, model: ModelConfig, ports: RetrainPorts) -> RetrainDecision:
    now = ports.clock()
    policy = model.monitoring
    alarm, episode = event.detail.alarmName, episode_of(event)
    decided: dict[str, Any] = {"model": model.name, "alarm": alarm, "episode": episode, "decided_at": now}
    # Far enough back for both guards: the UTC day's cap, and a cooldown that may be longer than a day.
    recent = ports.ledger.retrains(
        model.name, now - max(timedelta(days=1), timedelta(minutes=policy.cooldown_minutes))
    )
    started = [d for d in recent if d.decision == "started"]
    today = [d for d in started if d.decided_at.date() == now.date()]
    skip: str | None = None
    if event.detail.state.value != "ALARM":
        skip = f"the alarm is {event.detail.state.value}, not ALARM"
    elif started and now - started[0].decided_at < timedelta(minutes=policy.cooldown_minutes):
        last = started[0].decided_at
        allowed = last + timedelta(minutes=policy.cooldown_minutes)
        skip = (
            f"cooldown: the last retraining started at {last:%H:%M:%S} UTC "
            f"(alarm {started[0].alarm}); "
            f"the next may start after {allowed:%H:%M:%S} UTC (monitoring.cooldown_minutes = "
            f"{policy.cooldown_minutes})"
        )
    elif len(today) >= policy.max_retrains_per_day:
        skip = (
            f"cap: {len(today)} retraining(s) already started today "
            f"(monitoring.max_retrains_per_day = {policy.max_retrains_per_day})"
        )
    pending = None if skip else _await_production(model, alarm, ports)
    chosen = None if skip else training_data(model, ports.ledger, now)
    if skip is None and chosen is None:
        skip = "no accepted dataset version to train on"
    if skip is not None or chosen is None:
        decision = RetrainDecision(**decided, decision="skipped", reason=skip or "")
    else:
        sha = chosen.dataset.sha256
        attempt = "retrain-" + hashlib.sha256(episode.encode()).hexdigest()[:8]
        name = execution_name(model.name, sha, attempt)
        arn = ports.runs.start(model.name, name, chosen.to_json())
        decision = RetrainDecision(
            **decided,
            decision="started",
            reason=(f"{alarm} in ALARM: {event.detail.state.reason}" + (f"; {pending}" if pending else ""))[
                :500
            ],
            execution_arn=arn,
            dataset_sha256=sha,
            extra_sha256=[version.sha256 for version in chosen.extra] or None,
        )
    ports.ledger.record(decision)
    ports.events.publish(RETRAIN_DECIDED, decision.model_dump(mode="json"))
    log.info("retraining of %s %s: %s", model.name, decision.decision, decision.reason)
    return decision
