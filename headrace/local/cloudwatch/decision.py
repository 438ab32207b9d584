"""An alarm's state for its evaluation range, with CloudWatch's reason and reason data.

M of N: ALARM when at least DatapointsToAlarm of the N datapoints breach, else OK. TreatMissingData
`breaching` and `notBreaching` fill the missing periods; `missing` (the default) and `ignore` evaluate the
datapoints there are and, with none at all, go to INSUFFICIENT_DATA (`missing`) or keep the state (`ignore`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from headrace.local.cloudwatch.alarm import ALARM, INSUFFICIENT_DATA, OK
from headrace.local.cloudwatch.metrics import Series
from headrace.local.cloudwatch.spec import COMPARISONS, AlarmSpec
from headrace.local.cloudwatch.timestamps import aws_timestamp, period_start, reason_time

FILLED_AS = {"breaching": "Breaching", "notBreaching": "NonBreaching"}


@dataclass(frozen=True)
class Outcome:
    value: str
    reason: str
    reason_data: dict[str, Any]


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _reason_data(spec: AlarmSpec, series: Series, window: range, now: datetime) -> dict[str, Any]:
    newest_first = [b for b in reversed(window) if b in series.values]
    evaluated = [
        {
            "timestamp": aws_timestamp(period_start(b, spec.period)),
            **({"sampleCount": series.sample_counts[b]} if b in series.sample_counts else {}),
            "value": series.values[b],
        }
        for b in newest_first
    ]
    return {
        "version": "1.0",
        "queryDate": aws_timestamp(now),
        "startDate": aws_timestamp(period_start(window.start, spec.period)),
        **spec.statistic_fields(),
        "period": spec.period,
        "recentDatapoints": [series.values[b] for b in reversed(newest_first)],
        "threshold": spec.threshold,
        "evaluatedDatapoints": evaluated,
    }


def _threshold_reason(
    spec: AlarmSpec, state: str, previous: str, present: list[tuple[int, float]], missing: int
) -> str:
    """CloudWatch's wording: the datapoints that decided, the threshold, and the M needed."""
    filled_as = FILLED_AS.get(spec.treat_missing_data)
    n = spec.evaluation_periods
    if not present:
        return (
            f"Threshold Crossed: no datapoints were received for {plural(n, 'period')} and "
            f"{plural(n, 'missing datapoint')} {'was' if n == 1 else 'were'} treated as [{filled_as}]."
        )
    breaching = [(b, v) for b, v in present if spec.breaches(v)]
    not_breaching = [(b, v) for b, v in present if not spec.breaches(v)]
    shown, negation = (breaching, "") if state == ALARM or not not_breaching else (not_breaching, "not ")
    listed = ", ".join(f"{v!r} ({reason_time(period_start(b, spec.period))})" for b, v in shown)
    text = (
        f"Threshold Crossed: {len(shown)} out of the last {n} datapoints [{listed}] "
        f"{'was' if len(shown) == 1 else 'were'} {negation}{COMPARISONS[spec.comparison][0]} the threshold "
        f"({spec.threshold!r}) (minimum {plural(spec.datapoints_to_alarm, 'datapoint')} for "
        f"{previous} -> {state} transition)."
    )
    if missing and filled_as:
        text += f" {plural(missing, 'missing datapoint')} treated as [{filled_as}]."
    return text


def decide(spec: AlarmSpec, series: Series, current: int, previous: str, now: datetime) -> Outcome | None:
    """The alarm's state for the N periods ending with `current` (the open one) if it has a datapoint, else
    ending just before it; None when the state is to be kept (TreatMissingData ignore, no data)."""
    n = spec.evaluation_periods
    last = current if current in series.values else current - 1
    window = range(last - n + 1, last + 1)
    present = [(b, series.values[b]) for b in reversed(window) if b in series.values]  # newest first
    data = _reason_data(spec, series, window, now)
    if not present and spec.treat_missing_data == "ignore":
        return None
    if not present and spec.treat_missing_data == "missing":
        reason = f"Insufficient Data: {plural(n, 'datapoint')} {'was' if n == 1 else 'were'} unknown."
        return Outcome(INSUFFICIENT_DATA, reason, data)
    missing = n - len(present)
    breaches = sum(1 for _, v in present if spec.breaches(v))
    breaches += missing if spec.treat_missing_data == "breaching" else 0
    state = ALARM if breaches >= spec.datapoints_to_alarm else OK
    return Outcome(state, _threshold_reason(spec, state, previous, present, missing), data)
