"""moto's EventBridge Scheduler for the schedule runner (headrace/local/scheduler/): its schedules copied
out as plain data."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from moto.scheduler.models import Schedule as MotoSchedule
from moto.scheduler.models import scheduler_backends

from headrace.local.aws import LOCAL_ACCOUNT, LOCAL_REGION
from headrace.local.clock import utc
from headrace.local.scheduler.schedule import Schedule, ScheduleTarget

log = logging.getLogger("headrace.local")


def _bound(value: Any) -> datetime | None:
    """A StartDate/EndDate as moto keeps it: epoch seconds from the API, ISO text, or a datetime."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value)):
        return datetime.fromtimestamp(float(value), UTC)
    return utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def schedule_of(schedule: MotoSchedule) -> Schedule:
    target = schedule.target
    return Schedule(
        name=schedule.name,
        group=schedule.group_name,
        arn=schedule.arn,
        state=schedule.state,
        expression=schedule.schedule_expression,
        timezone=schedule.schedule_expression_timezone,
        created=datetime.fromtimestamp(float(schedule.creation_date), UTC),
        target=ScheduleTarget(
            arn=str(target.get("Arn", "")),
            input=str(target["Input"]) if target.get("Input") else None,
            dead_letter_arn=(target.get("DeadLetterConfig") or {}).get("Arn"),
            role_arn=target.get("RoleArn"),
        ),
        start=_bound(schedule.start_date),
        end=_bound(schedule.end_date),
    )


class MotoSchedules:
    """`ScheduleSource` on moto's scheduler backend in this process."""

    def __init__(
        self, account: str = LOCAL_ACCOUNT, region: str = LOCAL_REGION, others: Sequence[str] = ()
    ) -> None:
        self.account = account
        self.region = region
        # Every account whose schedules run here (a plane whose stages live in several).
        self.accounts = [account, *(a for a in others if a != account)]
        self._reported: set[tuple[str, str]] = set()

    def schedules(self) -> list[Schedule]:
        # Copies: moto's request threads add and delete schedules while a pass runs.
        found = [
            s
            for account in self.accounts
            for group in list(scheduler_backends[account][self.region].schedule_groups.values())
            for s in list(group.schedules.values())
        ]
        schedules = []
        for schedule in found:
            try:
                schedules.append(schedule_of(schedule))
            except (TypeError, ValueError) as error:
                if (schedule.arn, str(error)) not in self._reported:
                    self._reported.add((schedule.arn, str(error)))
                    log.warning("schedule %s cannot be read from moto: %s", schedule.name, error)
        return schedules
