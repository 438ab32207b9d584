"""The quality check's HTML report: one self-contained page (inline SVG, no scripts, no network), in the
drift report's style: the verdict, every live metric with its error bound, the slices, and the gate metric
over the recent quality checks beside the drift checks of the same days (concept drift shows as quality
falling while drift stays stable)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from headrace.ledger import DriftCheckItem, QualityCheckItem
from headrace.monitoring.report import ALERT_COLOR, CURRENT_COLOR, HEIGHT, STYLE, WIDTH

if TYPE_CHECKING:
    from headrace.quality.check import QualityResult


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _trend(points: Sequence[float | None], bound: float | None) -> str:
    values = [p for p in points if p is not None]
    if not values:
        return "<p>no live values yet</p>"
    low = min([*values, *([bound] if bound is not None else [])])
    high = max([*values, *([bound] if bound is not None else [])])
    span = (high - low) or 1.0

    def y(v: float) -> float:
        return 10 + (HEIGHT - 20) * (high - v) / span

    step = (WIDTH - 40) / max(1, len(points) - 1)
    coords = [(30 + i * step, y(p)) for i, p in enumerate(points) if p is not None]
    path = " ".join(f"{x:.1f},{v:.1f}" for x, v in coords)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{v:.1f}" r="2.5" fill="{CURRENT_COLOR}"/>' for x, v in coords)
    limit = (
        ""
        if bound is None
        else f'<line x1="30" x2="{WIDTH - 10}" y1="{y(bound):.1f}" y2="{y(bound):.1f}" stroke="{ALERT_COLOR}"'
        f' stroke-dasharray="4 3"><title>threshold {bound}</title></line>'
    )
    return (
        f'<svg width="{WIDTH}" height="{HEIGHT + 10}" role="img">{limit}'
        f'<polyline points="{path}" fill="none" stroke="{CURRENT_COLOR}"/>{dots}</svg>'
    )


def _history(quality: Sequence[QualityCheckItem], drift: Sequence[DriftCheckItem]) -> str:
    """Both kinds of check on one time line, newest first."""
    rows: list[tuple[str, str]] = [
        (
            q.until,
            f"<tr><td>{html.escape(q.until)}</td><td>quality</td><td>{html.escape(q.status)}</td>"
            f"<td>{html.escape(q.metric or '')} {_number(q.value)} ({q.labelled_rows:,} labelled rows)"
            "</td></tr>",
        )
        for q in quality
    ]
    rows += [
        (
            d.until,
            f"<tr><td>{html.escape(d.until)}</td><td>drift</td><td>{html.escape(d.status)}</td>"
            f"<td>{html.escape(', '.join(d.drifted_features) or 'no drifted feature')} ({d.rows:,} rows)</td>"
            "</tr>",
        )
        for d in drift
    ]
    body = "".join(row for _, row in sorted(rows, key=lambda r: r[0], reverse=True))
    return f"<table><tr><th>until</th><th>check</th><th>status</th><th>what</th></tr>{body}</table>"


def _slices(slices: dict[str, Any], names: list[str]) -> str:
    if not slices:
        return ""
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join(
        f"<tr><td>{html.escape(column)}</td><td>{html.escape(value)}</td><td>{part.get('rows', 0):,}</td>"
        + "".join(f"<td>{_number(part.get('metrics', {}).get(n))}</td>" for n in names)
        + "</tr>"
        for column, values in slices.items()
        for value, part in values.items()
    )
    return f"<h2>Slices</h2><table><tr><th>column</th><th>value</th><th>rows</th>{head}</tr>{body}</table>"


def render_report(
    result: QualityResult, quality: Sequence[QualityCheckItem], drift: Sequence[DriftCheckItem]
) -> str:
    """`quality`: this check and the earlier ones, newest first; `drift`: the drift checks, newest first."""
    metrics: dict[str, float | None] = result.metrics.get("metrics", {})
    bounds: dict[str, float] = result.metrics.get("error_bounds", {})
    verdict = {
        "ok": f"live {result.metric} within the gate",
        "breach": "BREACH: " + "; ".join(result.reasons),
        "too_few_labels": "; ".join(result.reasons) or "too few labels to judge",
        "not_serving": "no endpoint serving",
    }[result.status]
    table = "".join(
        f'<tr class="{"drift" if name == result.metric and result.status == "breach" else ""}">'
        f"<td>{html.escape(name)}</td><td>{_number(value)}</td>"
        f"<td>{'±' + _number(bounds[name], 2) if name in bounds else 'exact'}</td>"
        f"<td>{_number(result.threshold) if name == result.metric else ''}</td>"
        f"<td>{_number(result.baseline) if name == result.metric else ''}</td></tr>"
        for name, value in metrics.items()
    )
    past = [q.value for q in reversed(quality)]
    title = f"Quality: {html.escape(result.model)} {html.escape(result.check_id)}"
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>Quality check - {html.escape(result.model)}</h1>\n"
        f"<p><b>{html.escape(verdict)}</b>. Inferences captured {html.escape(result.since)} to "
        f"{html.escape(result.until)} (served config {html.escape(result.endpoint_config or '-')}): "
        f"{result.labelled_rows:,} labelled rows of {result.captured_rows:,} captured; "
        f"{result.unknown_labels:,} labels whose inference is not in the window.</p>\n"
        "<table><tr><th>metric</th><th>live</th><th>error bound</th><th>threshold</th><th>own test</th></tr>"
        f"{table}</table>\n{_slices(result.metrics.get('slices', {}), list(metrics))}\n"
        f"<h2>{html.escape(result.metric)} over the last {len(past)} quality checks</h2>"
        f"{_trend(past, result.threshold)}\n<h2>Quality beside drift</h2>{_history(quality, drift)}\n"
        "</body></html>\n"
    )
