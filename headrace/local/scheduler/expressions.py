"""EventBridge Scheduler's schedule expressions, as far as the local plane follows them on its own.

`rate(N minute|minutes|hour|hours|day|days)`, `cron(min hour day-of-month month day-of-week year)` with `*`,
`?`, lists, ranges, steps, month and weekday names, in the schedule's timezone, and
`at(yyyy-mm-ddThh:mm:ss)`. Cron's `L`, `W` and `#` are not supported: such a schedule fires only when asked.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Cron's calendar search gives up after this many days: an expression matching nothing never fires.
CRON_HORIZON_DAYS = 366 * 5


class ScheduleExpressionError(ValueError):
    """An expression the local plane cannot fire on its own (invalid, or using cron's L, W or #)."""


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
