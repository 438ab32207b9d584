"""Which captured objects a drift check reads: those written since the last check, in batches a Lambda
invocation can read (the Map fans the batches out; more traffic means more batches, not bigger ones)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from headrace.ports import ObjectSummary

# A batch stays well inside one Lambda's memory and 15 minutes.
BATCH_BYTES = 128 * 1024 * 1024
BATCH_OBJECTS = 500
# A first check looks back this far; later ones start where the last one ended.
FIRST_LOOKBACK = timedelta(days=1)
# Capture files are written within a minute or so of their requests: the window's end is that far back.
SETTLE = timedelta(seconds=0)


def hour_prefixes(base: str, since: datetime, until: datetime) -> Iterator[str]:
    """SageMaker's capture layout puts each hour in its own folder: `<base>/yyyy/mm/dd/hh/`."""
    hour = since.replace(minute=0, second=0, microsecond=0)
    while hour <= until:
        yield f"{base}/{hour:%Y/%m/%d/%H}/"
        hour += timedelta(hours=1)


def in_window(objects: Iterable[ObjectSummary], since: datetime, until: datetime) -> list[ObjectSummary]:
    return sorted(
        (o for o in objects if since < o.last_modified <= until), key=lambda o: (o.last_modified, o.key)
    )


def batches(objects: list[ObjectSummary]) -> list[list[str]]:
    grouped: list[list[str]] = []
    current: list[str] = []
    size = 0
    for stored in objects:
        if current and (size + stored.size > BATCH_BYTES or len(current) >= BATCH_OBJECTS):
            grouped.append(current)
            current, size = [], 0
        current.append(stored.key)
        size += stored.size
    if current:
        grouped.append(current)
    return grouped
