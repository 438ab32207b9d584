"""A metric as an alarm names it, and its datapoints grouped into periods."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from headrace.local.cloudwatch.statistics import Datum, sample_count, statistic


@dataclass(frozen=True)
class MetricSpec:
    namespace: str
    name: str
    dimensions: frozenset[tuple[str, str]]
    stat: str
    unit: str | None = None

    def matches(self, datum: Datum) -> bool:
        """Dimensions match exactly (the same set); a Unit on the alarm selects datums of that unit."""
        return datum.dimensions == self.dimensions and (self.unit is None or datum.unit == self.unit)

    def configuration(self, period: int) -> dict[str, Any]:
        """As the alarm event's `configuration.metrics[].metricStat` shows it."""
        return {
            "metric": {
                "namespace": self.namespace,
                "name": self.name,
                "dimensions": dict(sorted(self.dimensions)),
            },
            "period": period,
            "stat": self.stat,
        }


@dataclass(frozen=True)
class Series:
    """An alarm's datapoints by period index (epoch seconds // period); a missing period has no entry."""

    values: dict[int, float]
    sample_counts: dict[int, float] = field(default_factory=dict)


class MetricSnapshot:
    """One pass's copy of the metric data, indexed by (namespace, metric name)."""

    def __init__(self, data: Iterable[Datum]) -> None:
        self._by_metric: dict[tuple[str, str], list[Datum]] = defaultdict(list)
        for datum in data:
            self._by_metric[(datum.namespace, datum.name)].append(datum)

    def series(self, metric: MetricSpec, period: int, buckets: range) -> Series:
        grouped: dict[int, list[Datum]] = defaultdict(list)
        for datum in self._by_metric.get((metric.namespace, metric.name), ()):
            bucket = int(datum.timestamp.timestamp() // period)
            if bucket in buckets and metric.matches(datum):
                grouped[bucket].append(datum)
        values = {b: v for b, datums in grouped.items() if (v := statistic(metric.stat, datums)) is not None}
        return Series(values, {b: sample_count(datums) for b, datums in grouped.items()})
