"""The evaluator: every interval, each metric alarm's state decided as CloudWatch would, and announced.

On a change it records the new state (so `describe_alarms` shows it), puts a "CloudWatch Alarm State Change"
event on the default EventBridge bus (rules match it, and the plane's seam delivers it to Lambda and Step
Functions targets), and publishes to the SNS topics among the alarm's actions.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from headrace.local.clock import utc, utc_now
from headrace.local.cloudwatch.alarm import INSUFFICIENT_DATA, Alarm, Unsupported
from headrace.local.cloudwatch.decision import Outcome, decide
from headrace.local.cloudwatch.metrics import MetricSnapshot
from headrace.local.cloudwatch.spec import AlarmSpec, alarm_series
from headrace.local.cloudwatch.state_change import (
    AlarmState,
    StateChange,
    alarm_message,
    alarm_subject,
    current_state,
)
from headrace.local.cloudwatch.statistics import Datum
from headrace.local.cloudwatch.timestamps import aws_timestamp
from headrace.local.targets import Arn

log = logging.getLogger("headrace.local")

DEFAULT_INTERVAL_S = 1.0


class AlarmBackend(Protocol):
    """What the evaluator needs of CloudWatch, EventBridge and SNS (seams/cloudwatch.py: moto's)."""

    @property
    def account(self) -> str: ...
    @property
    def region(self) -> str: ...

    def alarms(self) -> list[Alarm]:
        """Every metric alarm (composite alarms are not evaluated)."""

    def datums(self, metrics: set[tuple[str, str]]) -> list[Datum]:
        """The stored datapoints of these (namespace, metric name) pairs."""

    def set_state(self, alarm_name: str, value: str, reason: str, reason_data: str) -> bool:
        """Record a transition, as SetAlarmState does; False when the alarm is gone."""

    def settle(
        self, alarm_name: str, value: str, reason: str | None, reason_data: str | None, at: datetime
    ) -> None:
        """Set the state without a transition (no history entry)."""

    def put_events(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def publish(self, topic_arn: str, message: str, subject: str) -> None: ...

    def watch_set_alarm_state(self, changed: Callable[[Alarm, Alarm], None]) -> Callable[[], None]:
        """Call `changed(before, after)` on every SetAlarmState over the API; returns what stops that."""


class AlarmEvaluator:
    """Evaluates the backend's metric alarms: `evaluate()` once, or `start()` a thread that does."""

    def __init__(
        self,
        backend: AlarmBackend,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.backend = backend
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._unwatch: Callable[[], None] | None = None
        self._reported: set[tuple[str, str]] = set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        if self._unwatch is None:
            # SetAlarmState over the API (how people test alarms) announces the change as CloudWatch does.
            self._unwatch = self.backend.watch_set_alarm_state(self._set_over_api)
        self._thread = threading.Thread(target=self._run, name="headrace-alarm-evaluator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None

    def _set_over_api(self, before: Alarm, after: Alarm) -> None:
        previous = current_state(before)
        if after.state_value != previous.value:
            self._announce(after, StateChange.of(after, previous, current_state(after)))

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                self.evaluate()
            except Exception:
                log.exception("alarm evaluation failed")

    def evaluate(self, now: datetime | None = None) -> list[StateChange]:
        """One pass over every metric alarm; returns the state changes it made (and announced)."""
        moment = utc(now or self._clock())
        with self._lock:
            alarms = self.backend.alarms()
            wanted = set().union(*(alarm.metrics_read() for alarm in alarms))
            snapshot = MetricSnapshot(self.backend.datums(wanted))
            changes = []
            for alarm in alarms:
                try:
                    change = self._evaluate_alarm(alarm, snapshot, moment)
                except Exception:
                    log.exception("evaluating alarm %s failed", alarm.name)
                    continue
                if change is not None:
                    changes.append(change)
            return changes

    def _outcome(
        self, alarm: Alarm, snapshot: MetricSnapshot, now: datetime, previous: str
    ) -> Outcome | None:
        try:
            spec = AlarmSpec.of(alarm)
            current = int(now.timestamp() // spec.period)
            buckets = range(current - spec.evaluation_periods, current + 1)
            return decide(spec, alarm_series(spec, snapshot, buckets), current, previous, now)
        except Unsupported as unsupported:
            if (alarm.name, str(unsupported)) not in self._reported:
                self._reported.add((alarm.name, str(unsupported)))
                log.warning("alarm %s is not evaluated locally: %s", alarm.name, unsupported)
            data = {"version": "1.0", "queryDate": aws_timestamp(now)}
            return Outcome(INSUFFICIENT_DATA, f"Unsupported locally: {unsupported}", data)

    def _evaluate_alarm(self, alarm: Alarm, snapshot: MetricSnapshot, now: datetime) -> StateChange | None:
        previous = current_state(alarm)
        outcome = self._outcome(alarm, snapshot, now, previous.value)
        if outcome is None or outcome.value == previous.value:
            if alarm.unchecked:
                self._settle_unchecked(alarm, outcome, now)
            return None
        reason_data = json.dumps(outcome.reason_data, separators=(",", ":"))
        if not self.backend.set_state(alarm.name, outcome.value, outcome.reason, reason_data):
            return None  # deleted while this pass ran
        change = StateChange.of(alarm, previous, AlarmState(outcome.value, outcome.reason, reason_data, now))
        self._announce(alarm, change)
        return change

    def _settle_unchecked(self, alarm: Alarm, outcome: Outcome | None, now: datetime) -> None:
        """Give a never-evaluated alarm CloudWatch's initial state, INSUFFICIENT_DATA, without a transition:
        moto's initial OK was never a real state, so there is no event and no history entry for leaving it."""
        reason_data = json.dumps(outcome.reason_data, separators=(",", ":")) if outcome else None
        self.backend.settle(
            alarm.name, INSUFFICIENT_DATA, outcome.reason if outcome else None, reason_data, now
        )

    def _announce(self, alarm: Alarm, change: StateChange) -> None:
        self._put_event(change)
        if alarm.actions_enabled:
            for action in alarm.actions_for(change.current.value):
                try:
                    self._perform(alarm, change, action)
                except Exception:
                    log.exception("alarm %s: action %s failed", alarm.name, action)

    def _put_event(self, change: StateChange) -> None:
        try:
            results = self.backend.put_events([change.event_entry()])
        except Exception:
            log.exception("the state change event of alarm %s was not delivered", change.alarm_name)
            return
        for result in results:
            if "ErrorCode" in result:
                log.error("EventBridge refused the event of alarm %s: %s", change.alarm_name, result)

    def _perform(self, alarm: Alarm, change: StateChange, action: str) -> None:
        arn = Arn.parse(action) if action.startswith("arn:") else None
        if arn is None or arn.service != "sns":
            if (alarm.name, action) not in self._reported:
                self._reported.add((alarm.name, action))
                log.warning(
                    "alarm %s: action %s is not performed locally (only SNS topics are)", alarm.name, action
                )
            return
        region = self.backend.region
        message = json.dumps(alarm_message(alarm, change, self.backend.account, region))
        self.backend.publish(action, message, alarm_subject(alarm, change, region))


class AlarmEvaluators:
    """One evaluator per account (a plane whose stages live in several): an account's alarms read only its
    own metrics, as CloudWatch's do. Started, stopped and evaluated together."""

    def __init__(self, evaluators: list[AlarmEvaluator]) -> None:
        self.evaluators = evaluators

    def start(self) -> None:
        for evaluator in self.evaluators:
            evaluator.start()

    def stop(self) -> None:
        for evaluator in reversed(self.evaluators):  # each unwatches what it watched, last first
            evaluator.stop()

    def evaluate(self, now: datetime | None = None) -> list[StateChange]:
        return [change for evaluator in self.evaluators for change in evaluator.evaluate(now)]
