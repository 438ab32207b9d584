"""What the runner reads of a schedule, as plain data (seams/scheduler.py copies it out of moto)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ScheduleTarget:
    arn: str
    input: str | None = None
    dead_letter_arn: str | None = None
    role_arn: str | None = None  # Scheduler acts as this role for the target and its dead-letter queue


@dataclass(frozen=True)
class Schedule:
    name: str
    group: str
    arn: str
    state: str  # ENABLED or DISABLED
    expression: str
    timezone: str | None
    created: datetime  # aware UTC
    target: ScheduleTarget
    start: datetime | None = None  # StartDate and EndDate bound the automatic firings
    end: datetime | None = None

    @property
    def enabled(self) -> bool:
        return self.state == "ENABLED"


class ScheduleSource(Protocol):
    def schedules(self) -> list[Schedule]:
        """Every schedule in every group."""
