"""ScheduleRunner: fires schedules on their expressions, as EventBridge Scheduler does.

- a state machine target gets an execution (`<schedule name[:40]>-<uuid hex>`, as names must be unique),
  a Lambda function target an asynchronous invocation of the function's own code, with Lambda's two retries
  for asynchronous invocations (both through headrace/local/targets.py);
- the target's `Input` (default `{}`) is sent with Scheduler's context attributes substituted
  (`<aws.scheduler.schedule-arn>`, `<aws.scheduler.scheduled-time>`, `<aws.scheduler.execution-id>`,
  `<aws.scheduler.attempt-number>`);
- a target that cannot be reached (no such state machine or function) sends the input to the target's
  dead-letter queue when it has one, and is logged either way.

An expression the runner cannot follow (cron's L, W, #) fires only when asked (`fire()`, `headrace local
tick`), which is logged once. Where it knowingly differs from Scheduler: a rate schedule's first firing is
one period after the runner started or the schedule was created, whichever is later (so a plane that starts
does not fire everything at once); firings missed while the plane was down are not caught up; the flexible
time window is ignored (a schedule fires at the start of its window); `fire()` is extra, and fires named
schedules even when DISABLED.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from headrace.local.clock import utc, utc_now
from headrace.local.scheduler.expressions import Recurrence, ScheduleExpressionError, parse_expression
from headrace.local.scheduler.schedule import Schedule, ScheduleSource
from headrace.local.targets import Arn, TargetDispatcher

log = logging.getLogger("headrace.local")

DEFAULT_INTERVAL_S = 1.0
# Lambda retries a failed asynchronous invocation twice (Lambda developer guide, "Asynchronous invocation").
LAMBDA_ASYNC_ATTEMPTS = 3


class ScheduleNotFound(LookupError):
    pass


class ScheduleAuthorizer(Protocol):
    """What Scheduler checks as the schedule's execution role; each raises when it is not allowed."""

    def authorize(self, schedule: Schedule) -> None: ...

    def authorize_dead_letter(self, schedule: Schedule) -> None: ...


@dataclass(frozen=True)
class Fired:
    """One firing of a schedule: the execution started (state machine) or the invocation's request id
    (Lambda function), or why the target could not be reached."""

    name: str
    group: str
    target: str
    execution: str | None
    error: str | None = None
    scheduled_time: datetime | None = None


def target_input(schedule: Schedule, moment: datetime, invocation_id: str, attempt: int = 1) -> str:
    """The target's Input with Scheduler's context attributes filled in."""
    text = schedule.target.input or "{}"
    for attribute, value in {
        "schedule-arn": schedule.arn,
        "scheduled-time": utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "execution-id": invocation_id,
        "attempt-number": str(attempt),
    }.items():
        text = text.replace(f"<aws.scheduler.{attribute}>", value)
    return text


@dataclass
class _Due:
    """When a schedule fires next, for the expression it had when that was computed."""

    expression: str
    timezone: str | None
    recurrence: Recurrence | None
    at: datetime | None


class ScheduleRunner:
    """Fires the source's schedules: `fire()` now, or `start()` a thread that fires them on time."""

    def __init__(
        self,
        source: ScheduleSource,
        targets: TargetDispatcher,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.source = source
        self.targets = targets
        self.interval_s = interval_s
        self._clock = clock
        self._started_at = utc(clock())
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._due: dict[str, _Due] = {}
        self._reported: set[tuple[str, str]] = set()
        self._invocations: list[threading.Thread] = []
        self.fired: list[Fired] = []
        # Set when the plane enforces IAM (seams/iam_targets.py): raises when the schedule's role may not
        # reach its target, and then the input goes to the dead-letter queue as any other failure does.
        self.authorize: ScheduleAuthorizer | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._started_at = utc(self._clock())
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="headrace-schedules", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None
        for invocation in list(self._invocations):
            invocation.join(timeout=timeout_s)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                self.run_due()
            except Exception:
                log.exception("firing schedules failed")

    def fire(self, names: list[str] | None = None, now: datetime | None = None) -> list[Fired]:
        """Fire now: the schedules named (in any group, whatever their state), else every ENABLED one.
        Does not move their automatic firings."""
        moment = utc(now or self._clock())
        with self._lock:
            schedules = self.source.schedules()
            if names is None:
                chosen = [s for s in schedules if s.enabled]
            else:
                missing = sorted(set(names) - {s.name for s in schedules})
                if missing:
                    raise ScheduleNotFound(f"no schedule named {', '.join(missing)}")
                chosen = [s for s in schedules if s.name in names]
            return [self._fire(schedule, moment) for schedule in chosen]

    def run_due(self, now: datetime | None = None) -> list[Fired]:
        """Fire every ENABLED schedule whose time has come (what the thread does every interval)."""
        moment = utc(now or self._clock())
        fired = []
        with self._lock:
            schedules = self.source.schedules()
            for schedule in schedules:
                try:
                    firing = self._fire_if_due(schedule, moment)
                except Exception as error:  # one broken schedule does not stop the others
                    self._report(schedule, f"not fired: {type(error).__name__}: {error}")
                    continue
                if firing is not None:
                    fired.append(firing)
            for arn in set(self._due) - {s.arn for s in schedules}:
                del self._due[arn]
        return fired

    def _fire_if_due(self, schedule: Schedule, moment: datetime) -> Fired | None:
        if not schedule.enabled:
            self._due.pop(schedule.arn, None)  # re-enabled later: a period from then
            return None
        due = self._due_of(schedule, moment)
        if due.at is None or due.at > moment or due.recurrence is None:
            return None
        fired = self._fire(schedule, due.at) if self._within_bounds(schedule, moment) else None
        following = due.recurrence.next_after(due.at)
        if following is not None and following <= moment:  # behind: missed firings are skipped
            following = due.recurrence.next_after(moment)
        due.at = following
        return fired

    def _due_of(self, schedule: Schedule, moment: datetime) -> _Due:
        due = self._due.get(schedule.arn)
        if due is not None and (due.expression, due.timezone) == (schedule.expression, schedule.timezone):
            return due
        try:
            recurrence = parse_expression(schedule.expression, schedule.timezone)
        except ScheduleExpressionError as error:
            self._report(schedule, f"{error}; it fires only with `headrace local tick`")
            due = _Due(schedule.expression, schedule.timezone, None, None)
        else:
            anchor = max(self._started_at, schedule.created)
            if due is not None:  # the expression changed: from now on
                anchor = moment
            due = _Due(schedule.expression, schedule.timezone, recurrence, recurrence.next_after(anchor))
        self._due[schedule.arn] = due
        return due

    @staticmethod
    def _within_bounds(schedule: Schedule, moment: datetime) -> bool:
        start, end = schedule.start, schedule.end
        return (start is None or moment >= start) and (end is None or moment <= end)

    def _report(self, schedule: Schedule, problem: str) -> None:
        if (schedule.arn, problem) not in self._reported:
            self._reported.add((schedule.arn, problem))
            log.warning("schedule %s: %s", schedule.name, problem)

    def _fire(self, schedule: Schedule, moment: datetime) -> Fired:
        arn = schedule.target.arn
        invocation_id = str(uuid.uuid4())
        payload = target_input(schedule, moment, invocation_id)
        try:
            service = Arn.parse(arn).service
            if self.authorize:
                self.authorize.authorize(schedule)
            if service == "states":
                execution = self.targets.start_execution(arn, schedule.name, payload)
            elif service == "lambda":
                execution = self._invoke(schedule, payload, invocation_id)
            else:
                raise ScheduleExpressionError(
                    f"target {arn} is not fired locally (only state machines and Lambda functions are)"
                )
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            log.error("schedule %s could not reach its target %s: %s", schedule.name, arn, message)
            self._dead_letter(schedule, payload, message)
            fired = Fired(schedule.name, schedule.group, arn, None, message, moment)
        else:
            log.info("schedule %s fired %s (%s)", schedule.name, arn, execution)
            fired = Fired(schedule.name, schedule.group, arn, execution, None, moment)
        self.fired.append(fired)
        return fired

    def _invoke(self, schedule: Schedule, payload: str, invocation_id: str) -> str:
        """Asynchronously, as Scheduler invokes a function; the function must exist now."""
        arn = schedule.target.arn
        self.targets.require_function(arn)

        def invoke() -> None:
            try:
                invocation = self.targets.invoke(
                    arn, payload, LAMBDA_ASYNC_ATTEMPTS, f"schedule {schedule.name}"
                )
            except Exception:
                log.exception("schedule %s: invoking %s failed", schedule.name, arn)
                return
            if invocation.errored:
                log.error("schedule %s: %s failed %d times", schedule.name, arn, invocation.attempts)

        thread = threading.Thread(target=invoke, name=f"headrace-schedule-{schedule.name}", daemon=True)
        self._invocations = [t for t in self._invocations if t.is_alive()] + [thread]
        thread.start()
        return invocation_id

    def _dead_letter(self, schedule: Schedule, payload: str, error: str) -> None:
        if not schedule.target.dead_letter_arn:
            return
        attributes = {
            "ERROR_CODE": error.split(":", 1)[0],
            "ERROR_MESSAGE": error[:1000],
            "SCHEDULE_ARN": schedule.arn,
            "TARGET_ARN": schedule.target.arn,
        }
        try:
            if self.authorize:
                self.authorize.authorize_dead_letter(schedule)
            self.targets.dead_letter(schedule.target.dead_letter_arn, payload, attributes)
        except Exception:
            log.exception(
                "schedule %s: its dead-letter queue %s refused the message",
                schedule.name,
                schedule.target.dead_letter_arn,
            )
