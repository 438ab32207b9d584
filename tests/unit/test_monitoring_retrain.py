"""Retraining on an alarm: at most one run per episode, held back by the cooldown and the daily cap, every
decision kept and announced."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from headrace.config import ModelConfig
from headrace.ledger import (
    DatasetItem,
    DatasetVersion,
    FileFormat,
    MemoryLedger,
    NumericStatistics,
    QualityCheckItem,
    RetrainDecision,
)
from headrace.monitoring.retrain import (
    RETRAIN_DECIDED,
    AlarmStateChange,
    RetrainPorts,
    UnknownAlarm,
    decide,
    episode_of,
    model_for_alarm,
)
from headrace.naming import Names
from tests.fakes import FakeEvents, MemoryOnce, fixed_clock

NAMES = Names("dev")
DRIFT_ALARM = NAMES.model_alarm("churn", "drift")
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:headrace-dev-churn-training"
# The example model's policy: cooldown_minutes 360, max_retrains_per_day 2.
MORNING = datetime(2026, 11, 23, 10, 21, 40, tzinfo=UTC)


def _version(sha: str, received_at: datetime) -> DatasetVersion:
    return DatasetVersion(
        model="churn",
        sha256=sha,
        bucket="data",
        key="churn/incoming/customers.csv",
        version_id="v1",
        size_bytes=1234,
        format=FileFormat.CSV,
        rows=600,
        columns=["tenure_months", "churned"],
        schema_fingerprint="f" * 16,
        statistics={
            "tenure_months": NumericStatistics(count=600, nulls=0, mean=31.5, std=12.0, min=0.0, max=118.0)
        },
        received_at=received_at,
        dataset_key=f"churn/datasets/{sha}/data.csv",
    )


OLDER = _version("a" * 64, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
NEWER = _version("b" * 64, datetime(2026, 11, 22, 9, 0, tzinfo=UTC))


def ledger_of(*datasets: DatasetVersion) -> MemoryLedger:
    """The ledger holding ingest's items for `datasets`."""
    ledger = MemoryLedger()
    for version in datasets:
        ledger.record_dataset(DatasetItem.started(version, f"{MACHINE}:ingest", version.received_at))
    return ledger


def started_before(ledger: MemoryLedger, at: datetime, alarm: str = DRIFT_ALARM) -> None:
    """A retraining started earlier, as `decide` records one."""
    ledger.record(
        RetrainDecision(
            model="churn", alarm=alarm, episode=f"{alarm}@{at}", decision="started", reason="", decided_at=at
        )
    )


def decisions(ledger: MemoryLedger) -> list[RetrainDecision]:
    return ledger.of_kind(RetrainDecision, "churn")


class FakeRuns:
    def __init__(self) -> None:
        self.started: list[tuple[str, str, dict[str, Any]]] = []

    def start(self, model: str, name: str, payload: str) -> str:
        self.started.append((model, name, json.loads(payload)))
        return MACHINE.replace(":stateMachine:", ":execution:") + f":{name}"


AlarmFactory = Callable[..., AlarmStateChange]


@pytest.fixture
def alarm(load_event: Callable[..., dict[str, Any]]) -> AlarmFactory:
    """The sample alarm event, renamed to `name`, entering `state` at `at`."""

    def make(at: datetime = MORNING, name: str = DRIFT_ALARM, state: str = "ALARM") -> AlarmStateChange:
        event = load_event("cloudwatch_alarm_state_change")
        event["detail"]["alarmName"] = name
        event["detail"]["state"]["value"] = state
        event["detail"]["state"]["timestamp"] = at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        return AlarmStateChange.model_validate(event)

    return make


def _decide(
    event: AlarmStateChange,
    model: ModelConfig,
    ledger: MemoryLedger,
    *,
    at: datetime | None = None,
    runs: FakeRuns | None = None,
    events: FakeEvents | None = None,
) -> RetrainDecision:
    now = at or datetime.fromisoformat(event.detail.state.timestamp) + timedelta(seconds=1)
    ports = RetrainPorts(
        ledger=ledger,
        runs=runs or FakeRuns(),
        events=events or FakeEvents(),
        once=MemoryOnce[RetrainDecision](),
        clock=fixed_clock(now),
    )
    return decide(event, model, ports)


def test_an_alarm_starts_one_run_of_the_newest_dataset(
    example_model: ModelConfig, alarm: AlarmFactory
) -> None:
    runs = FakeRuns()
    decision = _decide(alarm(), example_model, ledger_of(OLDER, NEWER), runs=runs)

    assert (decision.decision, decision.dataset_sha256) == ("started", NEWER.sha256)
    assert [(model, payload["dataset"]["sha256"]) for model, _, payload in runs.started] == [
        ("churn", NEWER.sha256)
    ]
    assert (
        decision.execution_arn == f"{MACHINE.replace(':stateMachine:', ':execution:')}:{runs.started[0][1]}"
    )


def test_the_run_input_is_the_dataset_version_with_its_statistics_parsed(
    example_model: ModelConfig, alarm: AlarmFactory
) -> None:
    runs = FakeRuns()
    _decide(alarm(), example_model, ledger_of(NEWER), runs=runs)

    ((_, _, payload),) = runs.started
    assert payload["model"] == "churn"
    assert payload["dataset"]["statistics"]["tenure_months"]["mean"] == 31.5
    assert DatasetVersion.model_validate(payload["dataset"]) == NEWER


def test_the_execution_name_derives_from_the_dataset_sha_and_the_episode(
    example_model: ModelConfig, alarm: AlarmFactory
) -> None:
    runs = FakeRuns()
    event = alarm()
    _decide(event, example_model, ledger_of(NEWER), runs=runs)

    episode_hash = hashlib.sha256(episode_of(event).encode()).hexdigest()[:8]
    assert [name for _, name, _ in runs.started] == [f"churn-{'b' * 40}-retrain-{episode_hash}"]


def test_a_redelivered_episode_names_the_same_execution_and_a_new_episode_another(
    example_model: ModelConfig, alarm: AlarmFactory
) -> None:
    runs = FakeRuns()
    for at in (MORNING, MORNING, MORNING + timedelta(hours=1)):
        # Fresh ledgers: only the name decides whether Step Functions sees the same execution.
        _decide(alarm(at), example_model, ledger_of(NEWER), runs=runs)

    first, again, other = (name for _, name, _ in runs.started)
    assert first == again
    assert first != other


def test_a_second_episode_inside_the_cooldown_is_skipped_until_it_ends(
    example_model: ModelConfig, alarm: AlarmFactory
) -> None:
    ledger, runs = ledger_of(NEWER), FakeRuns()
    _decide(alarm(MORNING), example_model, ledger, at=MORNING, runs=runs)

    second = _decide(alarm(MORNING + timedelta(hours=2)), example_model, ledger, runs=runs)

    assert second.decision == "skipped"
    assert second.reason.startswith("cooldown: the last retraining started at 10:21:40 UTC")
    assert "the next may start after 16:21:40 UTC (monitoring.cooldown_minutes = 360)" in second.reason
    assert len(runs.started) == 1


def test_an_episode_after_the_cooldown_starts_another_run(
    example_model: ModelConfig, alarm: AlarmFactory
) -> None:
    ledger, runs = ledger_of(NEWER), FakeRuns()
    _decide(alarm(MORNING), example_model, ledger, at=MORNING, runs=runs)

    later = _decide(alarm(MORNING + timedelta(minutes=361)), example_model, ledger, runs=runs)

    assert later.decision == "started"
    assert len(runs.started) == 2


def test_a_cooldown_longer_than_a_day_still_holds_the_next_day(
    example_model: ModelConfig, alarm: AlarmFactory
) -> None:
    model = example_model.model_copy(
        update={"monitoring": example_model.monitoring.model_copy(update={"cooldown_minutes": 3 * 24 * 60})}
    )
    ledger = ledger_of(NEWER)
    started_before(ledger, MORNING - timedelta(days=2))

    decision = _decide(alarm(MORNING), model, ledger)

    assert decision.decision == "skipped"
    assert "monitoring.cooldown_minutes = 4320" in decision.reason


def test_the_daily_cap_skips_with_a_reason_naming_the_setting(
    example_model: ModelConfig, alarm: AlarmFactory
) -> None:
    ledger, runs = ledger_of(NEWER), FakeRuns()
    # Both outside the six-hour cooldown by the evening, both on the same UTC day.
    started_before(ledger, datetime(2026, 11, 23, 1, 0, tzinfo=UTC))
    started_before(ledger, datetime(2026, 11, 23, 8, 0, tzinfo=UTC))

    decision = _decide(alarm(datetime(2026, 11, 23, 20, 0, tzinfo=UTC)), example_model, ledger, runs=runs)

    assert decision.decision == "skipped"
    assert decision.reason == (
        "cap: 2 retraining(s) already started today (monitoring.max_retrains_per_day = 2)"
    )
    assert runs.started == []


def test_retrainings_of_the_previous_utc_day_do_not_count_against_the_cap(
    example_model: ModelConfig, alarm: AlarmFactory
) -> None:
    ledger = ledger_of(NEWER)
    started_before(ledger, datetime(2026, 11, 22, 14, 0, tzinfo=UTC))
    started_before(ledger, datetime(2026, 11, 22, 20, 0, tzinfo=UTC))

    decision = _decide(alarm(datetime(2026, 11, 23, 3, 0, tzinfo=UTC)), example_model, ledger)

    assert decision.decision == "started"


def test_an_alarm_with_no_dataset_to_train_on_is_skipped(
    example_model: ModelConfig, alarm: AlarmFactory
) -> None:
    runs = FakeRuns()
    decision = _decide(alarm(), example_model, ledger_of(), runs=runs)

    assert (decision.decision, decision.reason) == ("skipped", "no accepted dataset version to train on")
    assert runs.started == []


def test_an_alarm_returning_to_ok_is_skipped(example_model: ModelConfig, alarm: AlarmFactory) -> None:
    runs = FakeRuns()
    decision = _decide(alarm(state="OK"), example_model, ledger_of(NEWER), runs=runs)

    assert (decision.decision, decision.reason) == ("skipped", "the alarm is OK, not ALARM")
    assert runs.started == []


def test_every_decision_is_recorded_in_the_ledger(example_model: ModelConfig, alarm: AlarmFactory) -> None:
    ledger = ledger_of(NEWER)
    started_at, skipped_at = MORNING, MORNING + timedelta(hours=1)
    _decide(alarm(started_at), example_model, ledger, at=started_at)
    _decide(alarm(skipped_at), example_model, ledger, at=skipped_at)

    assert [(d.decided_at, d.decision, d.alarm) for d in decisions(ledger)] == [
        (started_at, "started", DRIFT_ALARM),
        (skipped_at, "skipped", DRIFT_ALARM),
    ]
    assert decisions(ledger)[0].dataset_sha256 == NEWER.sha256
    stored = sorted(sk for (_, sk), item in ledger.items.items() if item["kind"] == "retrain")
    assert stored == ["retrain#2026-11-23T10:21:40.000000Z", "retrain#2026-11-23T11:21:40.000000Z"]


def test_every_decision_is_published_as_retraining_decided(
    example_model: ModelConfig, alarm: AlarmFactory
) -> None:
    events = FakeEvents()
    started = _decide(alarm(), example_model, ledger_of(NEWER), events=events)
    skipped = _decide(alarm(), example_model, ledger_of(), events=events)

    assert [t for t, _ in events.published] == [RETRAIN_DECIDED, RETRAIN_DECIDED]
    assert [RetrainDecision.model_validate(d) for _, d in events.published] == [started, skipped]


@pytest.mark.parametrize("alarm_name", [DRIFT_ALARM, NAMES.endpoint_alarm("fraud", "quality")])
def test_model_for_alarm_finds_the_model_of_its_drift_and_quality_alarms(
    example_model: ModelConfig, alarm_name: str
) -> None:
    fraud = example_model.model_copy(update={"name": "fraud"})
    expected = "churn" if alarm_name == DRIFT_ALARM else "fraud"

    assert model_for_alarm(alarm_name, [example_model, fraud], NAMES).name == expected


def test_model_for_alarm_refuses_an_alarm_that_retrains_nothing(example_model: ModelConfig) -> None:
    # The latency guard rolls a deployment back; it does not retrain.
    with pytest.raises(UnknownAlarm, match="headrace-dev-churn-latency"):
        model_for_alarm(NAMES.endpoint_alarm("churn", "latency"), [example_model], NAMES)


def test_two_entries_into_alarm_are_two_episodes(alarm: AlarmFactory) -> None:
    first, second = alarm(MORNING), alarm(MORNING + timedelta(minutes=5))

    assert episode_of(first) != episode_of(second)
    assert episode_of(first) == episode_of(alarm(MORNING))


LIVE_QUALITY_ALARM = NAMES.model_alarm("churn", "live-quality")
PRODUCTION = NEWER.model_copy(
    update={
        "sha256": "c" * 64,
        "key": "churn/incoming/production/q1.csv",
        "dataset_key": f"churn/datasets/{'c' * 64}/data.csv",
        "received_at": MORNING - timedelta(seconds=30),
        "source": "production",
    }
)


class IngestingLedger(MemoryLedger):
    """Ingest records the breached check's production dataset a moment after the alarm fired: at the
    decision's second look."""

    def __init__(self) -> None:
        super().__init__()
        self.looks = 0

    def dataset(self, model: str, sha256: str) -> DatasetItem | None:
        self.looks += 1
        if self.looks == 2:
            self.record_dataset(DatasetItem.accepted(PRODUCTION, PRODUCTION.received_at))
        return super().dataset(model, sha256)


def _breached(ledger: MemoryLedger) -> None:
    ledger.record(
        QualityCheckItem(
            model="churn",
            check_id="2026-11-23T10:21:00Z#q1",
            since="2026-11-16T10:21:00Z",
            until="2026-11-23T10:21:00Z",
            status="breach",
            production_dataset_key=PRODUCTION.key,
            production_sha256=PRODUCTION.sha256,
        )
    )


def test_a_live_quality_alarm_waits_for_its_checks_production_rows_and_trains_on_them(
    example_model: ModelConfig, alarm: AlarmFactory
) -> None:
    """The check publishes its breach as it writes the rows: the alarm can fire before ingest records them."""
    ledger = IngestingLedger()
    ledger.record_dataset(DatasetItem.started(NEWER, f"{MACHINE}:ingest", NEWER.received_at))
    _breached(ledger)
    runs = FakeRuns()
    decision = _decide(alarm(name=LIVE_QUALITY_ALARM), example_model, ledger, runs=runs)
    assert decision.decision == "started" and decision.extra_sha256 == [PRODUCTION.sha256]
    assert [v["sha256"] for v in runs.started[0][2]["extra"]] == [PRODUCTION.sha256]


def test_production_rows_never_accepted_leave_the_run_without_them_and_say_so(
    example_model: ModelConfig, alarm: AlarmFactory
) -> None:
    ledger = ledger_of(NEWER)
    _breached(ledger)
    event = alarm(name=LIVE_QUALITY_ALARM)
    ports = RetrainPorts(
        ledger=ledger,
        runs=FakeRuns(),
        events=FakeEvents(),
        once=MemoryOnce[RetrainDecision](),
        clock=fixed_clock(MORNING + timedelta(seconds=1)),
        production_wait_s=0,
    )
    decision = decide(event, example_model, ports)
    assert decision.decision == "started" and decision.extra_sha256 is None
    assert "were not accepted within 0 s: trained without them" in decision.reason
    assert PRODUCTION.key in decision.reason
