"""Small inline SVG charts for the demo's report: no scripts, no network, a <title> on every mark so a
reader can hover for the number. The drift report's palette (monitoring/report.py) is reused; its helpers
draw one series each and print shares as percentages, so these draw several series on one chart."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from headrace.monitoring.report import ALERT_COLOR, CURRENT_COLOR, REFERENCE_COLOR

SERIES_COLORS = (REFERENCE_COLOR, CURRENT_COLOR, "#66c2a5", "#e78ac3", "#a6d854")
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 24, 40
# About the width of a character of a 9 px label.
CHAR_WIDTH = 5.5


def _text(x: float, y: float, text: str, size: int = 10, anchor: str = "middle", color: str = "#222") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{color}">'
        f"{html.escape(text)}</text>"
    )


def _legend(names: Sequence[str], colors: Sequence[str], width: int) -> str:
    parts, x = [], float(LEFT)
    for name, color in zip(names, colors, strict=False):
        parts.append(f'<rect x="{x:.1f}" y="6" width="10" height="10" fill="{color}"/>')
        parts.append(_text(x + 14, 15, name, anchor="start"))
        x += 24 + 6.5 * len(name)
        if x > width - 60:
            break
    return "".join(parts)


def grouped_bars(
    groups: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    threshold: float | None = None,
    value_text: Callable[[float], str] = lambda v: f"{v:.3f}",
    labels: bool = False,
    width: int = 640,
    height: int = 220,
) -> str:
    """One group of bars per label in `groups`, one bar per series in each (None: no bar), a dashed line at
    `threshold`, and with `labels` each bar's value above it."""
    values = [v for _, vs in series for v in vs if v is not None]
    top = max([*values, threshold or 0.0, 1e-9]) * 1.1
    plot_h = height - TOP - BOTTOM
    slot = (width - LEFT - RIGHT) / max(1, len(groups))
    bar = slot * 0.8 / max(1, len(series))
    colors = [SERIES_COLORS[i % len(SERIES_COLORS)] for i in range(len(series))]
    stagger = max((len(g) for g in groups), default=0) * CHAR_WIDTH > slot
    parts = [
        f'<svg width="{width}" height="{height}" role="img">',
        _legend([n for n, _ in series], colors, width),
    ]
    parts.append(
        f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" stroke="#999"/>'
    )
    for g, group in enumerate(groups):
        x0 = LEFT + g * slot + slot * 0.1
        for s, (name, vs) in enumerate(series):
            value = vs[g] if g < len(vs) else None
            if value is None:
                continue
            h = plot_h * max(0.0, value) / top
            parts.append(
                f'<rect x="{x0 + s * bar:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar * 0.9:.1f}" '
                f'height="{h:.1f}" fill="{colors[s]}"><title>{html.escape(group)}, {html.escape(name)}: '
                f"{html.escape(value_text(value))}</title></rect>"
            )
            if labels:
                parts.append(
                    _text(x0 + s * bar + bar * 0.45, TOP + plot_h - h - 3, value_text(value), size=9)
                )
        # Labels wider than their slot: every other one a line lower, so that side by side they stay readable.
        lower = 11 * (g % 2) if stagger else 0
        parts.append(_text(LEFT + g * slot + slot / 2, TOP + plot_h + 14 + lower, group, size=9))
    if threshold is not None:
        y = TOP + plot_h - plot_h * threshold / top
        parts.append(
            f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{ALERT_COLOR}" '
            f'stroke-dasharray="4 3"><title>threshold {threshold}</title></line>'
        )
        parts.append(
            _text(width - RIGHT, y - 3, f"threshold {threshold}", size=9, anchor="end", color=ALERT_COLOR)
        )
    parts.append("</svg>")
    return "".join(parts)


def share_over_time(
    shares: Sequence[tuple[float, float]],
    failed_at: Sequence[float],
    *,
    start: float,
    end: float,
    zero: float,
    width: int = 640,
    height: int = 200,
) -> str:
    """The new fleet's share of traffic (0..1) as a step line from `start` to `end`, labelled in seconds since
    `zero` (the canary), and each failed call as a red tick along the bottom."""
    span = max(end - start, 1e-9)
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + plot_w * (min(max(t, start), end) - start) / span

    def y(share: float) -> float:
        return TOP + plot_h * (1 - share)

    points: list[str] = []
    for i, (t, share) in enumerate(shares):
        if i:
            points.append(f"{x(t):.1f},{y(shares[i - 1][1]):.1f}")
        points.append(f"{x(t):.1f},{y(share):.1f}")
    parts = [f'<svg width="{width}" height="{height}" role="img">']
    for share in (0.0, 0.5, 1.0):
        parts.append(
            f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y(share):.1f}" y2="{y(share):.1f}" stroke="#ddd"/>'
        )
        parts.append(_text(LEFT - 4, y(share) + 3, f"{share:.0%}", size=9, anchor="end"))
    if points:
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{CURRENT_COLOR}" stroke-width="2">'
            "<title>the new fleet's share of traffic</title></polyline>"
        )
    for t in failed_at:
        if start <= t <= end:
            parts.append(
                f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{y(0) + 4:.1f}" y2="{y(0) + 14:.1f}" '
                f'stroke="{ALERT_COLOR}"><title>failed call at +{t - start:.2f}s</title></line>'
            )
    ticks = max(1, int(span // 2))
    for i in range(ticks + 1):
        t = start + span * i / ticks
        parts.append(_text(x(t), height - 12, f"{t - zero:+.0f}s", size=9))
    parts.append("</svg>")
    return "".join(parts)
