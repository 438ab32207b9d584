"""One period's statistic over stored datapoints, as CloudWatch computes it.

SampleCount, Average, Sum, Minimum and Maximum come from single values and StatisticValues sets alike;
percentiles (pNN, pNN.N, nearest rank) from single values only, as a set has no distribution.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from headrace.local.cloudwatch.alarm import Unsupported

BASIC_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?|100(?:\.0+)?)")


@dataclass(frozen=True)
class StatisticSet:
    """A StatisticValues datum of PutMetricData."""

    sample_count: float
    sum: float
    minimum: float
    maximum: float


@dataclass(frozen=True)
class Datum:
    """One stored datapoint: a single value or a statistic set, at an aware UTC time."""

    namespace: str
    name: str
    dimensions: frozenset[tuple[str, str]]
    timestamp: datetime
    value: float | StatisticSet
    unit: str | None = None


def check_statistic(stat: str) -> None:
    if stat not in BASIC_STATISTICS and not PERCENTILE.fullmatch(stat):
        raise Unsupported(
            f"statistic {stat!r} is not supported locally (only {', '.join(BASIC_STATISTICS)}, pNN)"
        )


def percentile(values: Sequence[float], percent: float) -> float | None:
    """The nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def statistic(stat: str, datums: Sequence[Datum]) -> float | None:
    """One period's statistic; None when the period has no datapoint for it."""
    single = [d.value for d in datums if not isinstance(d.value, StatisticSet)]
    sets = [d.value for d in datums if isinstance(d.value, StatisticSet)]
    if match := PERCENTILE.fullmatch(stat):
        return percentile(single, float(match.group(1)))
    count = len(single) + sum(s.sample_count for s in sets)
    if count <= 0:
        return None
    total = sum(single) + sum(s.sum for s in sets)
    if stat == "SampleCount":
        return count
    if stat == "Sum":
        return total
    if stat == "Average":
        return total / count
    if stat == "Minimum":
        return min([*single, *(s.minimum for s in sets)])
    if stat == "Maximum":
        return max([*single, *(s.maximum for s in sets)])
    raise Unsupported(f"statistic {stat!r} is not supported locally")


def sample_count(datums: Sequence[Datum]) -> float:
    return sum(d.value.sample_count if isinstance(d.value, StatisticSet) else 1.0 for d in datums)
