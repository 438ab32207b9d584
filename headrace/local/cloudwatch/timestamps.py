"""How CloudWatch writes times: in alarm events and reason data, and in a reason's text."""

from __future__ import annotations

from datetime import UTC, datetime

from headrace.local.clock import utc


def aws_timestamp(moment: datetime) -> str:
    """CloudWatch's timestamp format in alarm events and reason data: 2026-11-23T10:15:32.123+0000."""
    moment = utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def reason_time(moment: datetime) -> str:
    """As a state reason lists a datapoint's period: 23/11/26 10:15:00."""
    return utc(moment).strftime("%d/%m/%y %H:%M:%S")


def period_start(bucket: int, period: int) -> datetime:
    """The start of period number `bucket` (periods are aligned to multiples of Period since the epoch)."""
    return datetime.fromtimestamp(bucket * period, UTC)
