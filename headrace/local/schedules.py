"""EventBridge Scheduler for the local plane: moto (5.2.5) stores schedules and never fires them.

`ScheduleRunner` runs in the process that runs moto's server. It reads the schedules straight from moto's
scheduler backend (those the provisioner created from the templates, and any created through the API) and
fires each ENABLED one on its expression, as EventBridge Scheduler does:
- a state machine target gets an execution (`<schedule name[:40]>-<uuid hex>`, as names must be unique),
  a Lambda function target an asynchronous invocation of the function's own code (through the
  `LambdaFunction._invoke_lambda` seam, with Lambda's two retries for asynchronous invocations);
- the target's `Input` (default `{}`) is sent with Scheduler's context attributes substituted
  (`<aws.scheduler.schedule-arn>`, `<aws.scheduler.scheduled-time>`, `<aws.scheduler.execution-id>`,
  `<aws.scheduler.attempt-number>`);
- a target that cannot be reached (no such state machine or function) sends the input to the target's
  dead-letter queue when it has one, and is logged either way.

Expressions: `rate(N minute|minutes|hour|hours|day|days)`, `cron(min hour day-of-month month day-of-week
year)` with `*`, `?`, lists, ranges, steps, month and weekday names, in the schedule's timezone, and
`at(yyyy-mm-ddThh:mm:ss)`. Cron's `L`, `W` and `#` are not supported: such a schedule fires only when asked
(`fire()`, `headrace local tick`), which is logged once. StartDate and EndDate bound the automatic firings.

Where it knowingly differs from Scheduler: a rate schedule's first firing is one period after the runner
started or the schedule was created, whichever is later (so a plane that starts does not fire everything at
once); firings missed while the plane was down are not caught up; the flexible time window is ignored (a
schedule fires at the start of its window); `fire()` is extra, and fires named schedules even when DISABLED.
"""

from __future__ import annotations

import calendar
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from moto.awslambda.models import lambda_backends
from moto.scheduler.models import Schedule, scheduler_backends
from moto.sqs.models import sqs_backends
from moto.stepfunctions.parser.models import stepfunctions_parser_backends
from moto.utilities.arns import parse_arn

from headrace.local.aws import LOCAL_ACCOUNT, LOCAL_REGION

log = logging.getLogger("headrace.local")

DEFAULT_INTERVAL_S = 1.0
# Lambda retries a failed asynchronous invocation twice (Lambda developer guide, "Asynchronous invocation").
LAMBDA_ASYNC_ATTEMPTS = 3
# Execution names: at most 80 characters (Step Functions StartExecution API reference).
EXECUTION_NAME_LIMIT = 80
# Cron's calendar search gives up after this many days: an expression matching nothing never fires.
CRON_HORIZON_DAYS = 366 * 5


class ScheduleExpressionError(ValueError):
    """An expression the local plane cannot fire on its own (invalid, or using cron's L, W or #)."""


class ScheduleNotFound(LookupError):
    pass


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --- expressions --------------------------------------------------------------------------------------------


class Recurrence(Protocol):
    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing strictly after `moment` (aware, UTC), or None when there is none."""


_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_RATE_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


@dataclass(frozen=True)
class Rate:
    period: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.period


def parse_rate(expression: str) -> timedelta:
    """`rate(5 minutes)` → 5 minutes. The singular and the plural are both accepted whatever the value."""
    match = _RATE.fullmatch(expression.strip())
    if not match:
        raise ScheduleExpressionError(f"'{expression}' is not a rate expression, like rate(5 minutes)")
    value = int(match.group(1))
    if value < 1:
        raise ScheduleExpressionError(f"'{expression}': a rate must be at least 1")
    return value * _RATE_UNITS[match.group(2).removesuffix("s")]


@dataclass(frozen=True)
class At:
    """A one-time schedule: `at(2026-11-23T10:00:00)` in the schedule's timezone."""

    moment: datetime

    def next_after(self, moment: datetime) -> datetime | None:
        return self.moment if self.moment > moment else None


_MONTHS = {name.upper(): number for number, name in enumerate(calendar.month_abbr) if name}
# Scheduler numbers weekdays 1 (SUN) to 7 (SAT).
_WEEKDAYS = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]

    def parse(self, text: str) -> frozenset[int] | None:
        """The values a field allows; None for any (`*`, `?`)."""
        if text in ("*", "?"):
            return None
        values: set[int] = set()
        for part in text.split(","):
            base, _, step_text = part.partition("/")
            step = self._number(step_text) if step_text else 1
            if step < 1:
                raise ScheduleExpressionError(f"cron {self.name} '{text}': a step must be at least 1")
            if base == "*":
                first, last = self.low, self.high
            elif "-" in base:
                first, last = (self._value(v) for v in base.split("-", 1))
            else:
                first = self._value(base)
                last = self.high if step_text else first
            span = list(range(first, last + 1))
            if first > last:  # a range that wraps around, like FRI-MON
                span = [*range(first, self.high + 1), *range(self.low, last + 1)]
            values.update(span[::step])
        return frozenset(values)

    def _number(self, text: str) -> int:
        if not text.isdigit() and re.search(r"[LW#]", text.upper()):
            raise ScheduleExpressionError(f"cron {self.name} '{text}': L, W and # are not supported locally")
        if not text.isdigit():
            raise ScheduleExpressionError(f"cron {self.name}: '{text}' is not a number")
        return int(text)

    def _value(self, text: str) -> int:
        value = self.names[text.upper()] if text.upper() in self.names else self._number(text)
        if not self.low <= value <= self.high:
            raise ScheduleExpressionError(f"cron {self.name}: {value} is not in {self.low}-{self.high}")
        return value


_CRON_FIELDS = (
    _Field("minutes", 0, 59, {}),
    _Field("hours", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 1, 7, _WEEKDAYS),
    _Field("year", 1970, 2199, {}),
)


def _weekday(day: date) -> int:
    return (day.weekday() + 1) % 7 + 1  # Python's Monday=0 → Scheduler's MON=2


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int] | None
    hours: frozenset[int] | None
    days: frozenset[int] | None
    months: frozenset[int] | None
    weekdays: frozenset[int] | None
    years: frozenset[int] | None
    zone: ZoneInfo

    def _day_matches(self, day: date) -> bool:
        return (
            (self.years is None or day.year in self.years)
            and (self.months is None or day.month in self.months)
            and (self.days is None or day.day in self.days)
            and (self.weekdays is None or _weekday(day) in self.weekdays)
        )

    def next_after(self, moment: datetime) -> datetime | None:
        local = moment.astimezone(self.zone)
        start = local.replace(second=0, microsecond=0, tzinfo=None) + timedelta(minutes=1)
        hours = sorted(self.hours) if self.hours is not None else range(24)
        minutes = sorted(self.minutes) if self.minutes is not None else range(60)
        day = start.date()
        for _ in range(CRON_HORIZON_DAYS):
            if self._day_matches(day):
                for hour in hours:
                    for minute in minutes:
                        candidate = datetime(day.year, day.month, day.day, hour, minute)
                        if candidate >= start:
                            return candidate.replace(tzinfo=self.zone).astimezone(UTC)
            day += timedelta(days=1)
        return None


def parse_cron(expression: str, zone: ZoneInfo) -> Cron:
    match = re.fullmatch(r"cron\((.*)\)", expression.strip())
    parts = match.group(1).split() if match else []
    if len(parts) != len(_CRON_FIELDS):
        raise ScheduleExpressionError(
            f"'{expression}' is not a cron expression of six fields, like cron(0 12 * * ? *)"
        )
    minutes, hours, days, months, weekdays, years = (
        spec.parse(part) for spec, part in zip(_CRON_FIELDS, parts, strict=True)
    )
    if (parts[2] == "?") == (parts[4] == "?"):  # as Scheduler refuses it
        raise ScheduleExpressionError(f"'{expression}': one of day-of-month and day-of-week must be ?")
    return Cron(minutes, hours, days, months, weekdays, years, zone)


def parse_expression(expression: str, timezone: str | None = None) -> Recurrence:
    """A schedule's expression, in its timezone (default UTC)."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ScheduleExpressionError(f"unknown timezone {timezone!r}") from error
    text = expression.strip()
    if text.startswith("rate("):
        return Rate(parse_rate(text))
    if text.startswith("cron("):
        return parse_cron(text, zone)
    if match := re.fullmatch(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)", text):
        return At(datetime.fromisoformat(match.group(1)).replace(tzinfo=zone).astimezone(UTC))
    raise ScheduleExpressionError(f"'{expression}' is not a rate(), cron() or at() expression")


# --- firing -------------------------------------------------------------------------------------------------


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


def _bound(value: Any) -> datetime | None:
    """A StartDate/EndDate as moto keeps it: epoch seconds from the API, ISO text, or a datetime."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value)):
        return datetime.fromtimestamp(float(value), UTC)
    return _utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _scheduled_time(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def target_input(schedule: Schedule, moment: datetime, invocation_id: str, attempt: int = 1) -> str:
    """The target's Input with Scheduler's context attributes filled in."""
    text = str(schedule.target.get("Input") or "{}")
    for attribute, value in {
        "schedule-arn": schedule.arn,
        "scheduled-time": _scheduled_time(moment),
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
    """Fires moto's schedules in this process: `fire()` now, or `start()` a thread that fires them on time."""

    def __init__(
        self,
        account: str = LOCAL_ACCOUNT,
        region: str = LOCAL_REGION,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.account = account
        self.region = region
        self.interval_s = interval_s
        self._clock = clock
        self._started_at = _utc(clock())
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._due: dict[str, _Due] = {}
        self._reported: set[tuple[str, str]] = set()
        self._invocations: list[threading.Thread] = []
        self.fired: list[Fired] = []

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._started_at = _utc(self._clock())
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

    def schedules(self) -> list[Schedule]:
        backend = scheduler_backends[self.account][self.region]
        # Copies: moto's request threads add and delete schedules while a pass runs.
        return [s for group in list(backend.schedule_groups.values()) for s in list(group.schedules.values())]

    def fire(self, names: list[str] | None = None, now: datetime | None = None) -> list[Fired]:
        """Fire now: the schedules named (in any group, whatever their state), else every ENABLED one.
        Does not move their automatic firings."""
        moment = _utc(now or self._clock())
        with self._lock:
            schedules = self.schedules()
            if names is None:
                chosen = [s for s in schedules if s.state == "ENABLED"]
            else:
                missing = sorted(set(names) - {s.name for s in schedules})
                if missing:
                    raise ScheduleNotFound(f"no schedule named {', '.join(missing)}")
                chosen = [s for s in schedules if s.name in names]
            return [self._fire(schedule, moment) for schedule in chosen]

    def run_due(self, now: datetime | None = None) -> list[Fired]:
        """Fire every ENABLED schedule whose time has come (what the thread does every interval)."""
        moment = _utc(now or self._clock())
        fired = []
        with self._lock:
            schedules = self.schedules()
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
        if schedule.state != "ENABLED":
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
        timezone = schedule.schedule_expression_timezone
        due = self._due.get(schedule.arn)
        if due is not None and (due.expression, due.timezone) == (schedule.schedule_expression, timezone):
            return due
        try:
            recurrence = parse_expression(schedule.schedule_expression, timezone)
        except ScheduleExpressionError as error:
            self._report(schedule, f"{error}; it fires only with `headrace local tick`")
            due = _Due(schedule.schedule_expression, timezone, None, None)
        else:
            anchor = max(self._started_at, datetime.fromtimestamp(float(schedule.creation_date), UTC))
            if due is not None:  # the expression changed: from now on
                anchor = moment
            due = _Due(schedule.schedule_expression, timezone, recurrence, recurrence.next_after(anchor))
        self._due[schedule.arn] = due
        return due

    @staticmethod
    def _within_bounds(schedule: Schedule, moment: datetime) -> bool:
        start, end = _bound(schedule.start_date), _bound(schedule.end_date)
        return (start is None or moment >= start) and (end is None or moment <= end)

    def _report(self, schedule: Schedule, problem: str) -> None:
        if (schedule.arn, problem) not in self._reported:
            self._reported.add((schedule.arn, problem))
            log.warning("schedule %s: %s", schedule.name, problem)

    def _fire(self, schedule: Schedule, moment: datetime) -> Fired:
        target = schedule.target
        arn = str(target.get("Arn", ""))
        invocation_id = str(uuid.uuid4())
        payload = target_input(schedule, moment, invocation_id)
        try:
            service = parse_arn(arn).service
            if service == "states":
                execution = self._start_execution(schedule, arn, payload)
            elif service == "lambda":
                execution = self._invoke(schedule, arn, payload, invocation_id)
            else:
                raise ScheduleExpressionError(
                    f"target {arn} is not fired locally (only state machines and Lambda functions are)"
                )
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            log.error("schedule %s could not reach its target %s: %s", schedule.name, arn, message)
            self._dead_letter(schedule, payload, message)
            fired = Fired(schedule.name, schedule.group_name, arn, None, message, moment)
        else:
            log.info("schedule %s fired %s (%s)", schedule.name, arn, execution)
            fired = Fired(schedule.name, schedule.group_name, arn, execution, None, moment)
        self.fired.append(fired)
        return fired

    @staticmethod
    def _start_execution(schedule: Schedule, arn: str, payload: str) -> str:
        target = parse_arn(arn)
        # Scheduler names its executions itself; a generated name keeps every firing distinct.
        name = f"{schedule.name[:40]}-{uuid.uuid4().hex}"[:EXECUTION_NAME_LIMIT]
        backend = stepfunctions_parser_backends[target.account][target.region]
        backend.start_execution(arn, name=name, execution_input=payload)
        return name

    def _invoke(self, schedule: Schedule, arn: str, payload: str, invocation_id: str) -> str:
        target = parse_arn(arn)
        function = lambda_backends[target.account][target.region].get_function(arn)  # raises when missing

        def invoke() -> None:
            for attempt in range(1, LAMBDA_ASYNC_ATTEMPTS + 1):
                try:
                    result, errored, _ = function._invoke_lambda(event=payload)
                except Exception as error:
                    result, errored = f"{type(error).__name__}: {error}", True
                if not errored:
                    return
                log.warning(
                    "schedule %s: attempt %d of %s failed: %s", schedule.name, attempt, arn, str(result)[:500]
                )
            log.error("schedule %s: %s failed %d times", schedule.name, arn, LAMBDA_ASYNC_ATTEMPTS)

        thread = threading.Thread(target=invoke, name=f"headrace-schedule-{schedule.name}", daemon=True)
        self._invocations = [t for t in self._invocations if t.is_alive()] + [thread]
        thread.start()
        return invocation_id

    @staticmethod
    def _dead_letter(schedule: Schedule, payload: str, error: str) -> None:
        dlq_arn = schedule.target.get("DeadLetterConfig", {}).get("Arn")
        if not dlq_arn:
            return
        try:
            dlq = parse_arn(dlq_arn)
            sqs_backends[dlq.account][dlq.region].send_message(
                queue_name=dlq.resource_id,
                message_body=payload,
                message_attributes={
                    "ERROR_CODE": {"DataType": "String", "StringValue": error.split(":", 1)[0]},
                    "ERROR_MESSAGE": {"DataType": "String", "StringValue": error[:1000]},
                    "SCHEDULE_ARN": {"DataType": "String", "StringValue": schedule.arn},
                    "TARGET_ARN": {"DataType": "String", "StringValue": str(schedule.target.get("Arn"))},
                },
            )
        except Exception:
            log.exception("schedule %s: its dead-letter queue %s refused the message", schedule.name, dlq_arn)
