"""The drift check's HTML report: one self-contained page (inline SVG, no scripts, no network) a person can
open from S3 or `headrace drift --html`: the verdict, a table of scores, and per feature the reference and
current distributions side by side and the feature's PSI over the recent checks."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from headrace.drift import DriftResult
from headrace.ledger import DriftCheckItem
from headrace.monitoring.payloads import Window

if TYPE_CHECKING:  # the drift check's numpy half: the quality report shares this page's style without it
    from headrace.drift import DriftPartial, DriftReference

WIDTH, HEIGHT = 420, 150
REFERENCE_COLOR, CURRENT_COLOR, ALERT_COLOR = "#8da0cb", "#fc8d62", "#d62728"
STYLE = (
    "body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }"
    " table { border-collapse: collapse; }"
    " td, th { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }"
    f" tr.drift td {{ color: {ALERT_COLOR}; font-weight: 600; }}"
    " .plots { display: flex; gap: 2em; flex-wrap: wrap; } figure { margin: 0; }"
    " figcaption { font-size: 12px; }"
)


def _shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    return [c / total if total else 0.0 for c in counts]


def distributions(
    reference: DriftReference, partial: DriftPartial
) -> dict[str, tuple[list[str], list[float], list[float]]]:
    """Per feature: bin labels, reference shares, current shares (deciles for numeric features)."""
    shown: dict[str, tuple[list[str], list[float], list[float]]] = {}
    for feature, cells in zip(reference.numeric, partial.numeric, strict=True):
        edges = feature.profile.edges
        labels = (
            [f"≤{edges[0]:.3g}"] + [f"≤{e:.3g}" for e in edges[1:]] + [f">{edges[-1]:.3g}"]
            if edges
            else ["all"]
        )
        current = feature.decile_counts(cells).tolist() if cells.size else [0] * len(labels)
        shown[feature.name] = (labels, _shares(feature.profile.counts), _shares(current))
    for categorical, counts in zip(reference.categorical, partial.categorical, strict=True):
        shown[categorical.name] = (
            list(categorical.profile.buckets),
            _shares(categorical.reference_counts.tolist()),
            _shares(counts.tolist()),
        )
    return shown


def _bars(labels: list[str], reference: list[float], current: list[float]) -> str:
    n = max(1, len(labels))
    slot = (WIDTH - 40) / n
    top = max([*reference, *current, 1e-9])
    parts = [f'<svg width="{WIDTH}" height="{HEIGHT + 30}" role="img">']
    for i, (label, ref, cur) in enumerate(zip(labels, reference, current, strict=False)):
        x = 30 + i * slot
        for offset, share, color in ((0.1, ref, REFERENCE_COLOR), (0.5, cur, CURRENT_COLOR)):
            h = HEIGHT * share / top
            parts.append(
                f'<rect x="{x + offset * slot:.1f}" y="{HEIGHT - h:.1f}" width="{0.4 * slot:.1f}" '
                f'height="{h:.1f}" fill="{color}"><title>{html.escape(label)}: {share:.1%}</title></rect>'
            )
        parts.append(
            f'<text x="{x + slot / 2:.1f}" y="{HEIGHT + 14}" font-size="9" text-anchor="middle">'
            f"{html.escape(label[:10])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _line(points: list[float | None], threshold: float) -> str:
    values = [p for p in points if p is not None]
    if not values:
        return "<p>no scores yet</p>"
    top = max([*values, threshold * 1.2])
    step = (WIDTH - 40) / max(1, len(points) - 1)
    coords = [(30 + i * step, HEIGHT - HEIGHT * p / top) for i, p in enumerate(points) if p is not None]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    limit = HEIGHT - HEIGHT * threshold / top
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{CURRENT_COLOR}"/>' for x, y in coords)
    return (
        f'<svg width="{WIDTH}" height="{HEIGHT + 10}" role="img">'
        f'<line x1="30" x2="{WIDTH - 10}" y1="{limit:.1f}" y2="{limit:.1f}" stroke="{ALERT_COLOR}" '
        f'stroke-dasharray="4 3"><title>PSI threshold {threshold}</title></line>'
        f'<polyline points="{path}" fill="none" stroke="{CURRENT_COLOR}"/>{dots}</svg>'
    )


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def render_report(
    model: str,
    window: Window,
    result: DriftResult,
    history: list[DriftCheckItem],
    reference: DriftReference,
    partial: DriftPartial,
) -> str:
    """`history`: earlier checks, newest first (each with a JSON `psi` map per feature)."""
    shown = distributions(reference, partial)
    past = [json.loads(item.psi) for item in reversed(history) if item.psi]
    rows = "".join(
        f'<tr class="{"drift" if f.drifted else ""}"><td>{html.escape(f.name)}</td><td>{f.kind}</td>'
        f"<td>{_number(f.psi)}</td><td>{_number(f.ks_statistic)}</td><td>{_number(f.ks_pvalue)}</td>"
        f"<td>{_number(f.js_distance)}</td><td>{_number(f.chi2_pvalue)}</td>"
        f"<td>{f.missing_rate_reference:.1%} → {f.missing_rate_current:.1%}</td>"
        f"<td>{'DRIFT (' + ', '.join(f.reasons) + ')' if f.drifted else 'ok'}</td></tr>"
        for f in result.features
    )
    sections = "".join(
        f"<section><h3>{html.escape(f.name)}{' — drifted' if f.drifted else ''}</h3>"
        f'<div class="plots"><figure>{_bars(*shown[f.name])}<figcaption>distribution: '
        f'<span style="color:{REFERENCE_COLOR}">■ training</span> '
        f'<span style="color:{CURRENT_COLOR}">■ this window</span></figcaption></figure>'
        f"<figure>{_line([p.get(f.name) for p in past] + [f.psi], result.psi_threshold)}"
        f"<figcaption>PSI over the last {len(past) + 1} checks</figcaption></figure></div></section>"
        for f in result.features
        if f.name in shown
    )
    verdict = {
        "stable": "no feature drifted",
        "drifted": f"drifted: {', '.join(result.drifted_features)}",
        "too_little_traffic": (
            f"too little traffic to judge ({result.rows_current} rows, at least {result.min_rows} needed)"
        ),
    }[result.status]
    title = f"Drift: {html.escape(model)} {html.escape(window.check_id)}"
    since = html.escape(str(window.since or "start"))
    config = html.escape(window.endpoint_config or "-")
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>Drift check - {html.escape(model)}</h1>\n"
        f"<p><b>{html.escape(verdict)}</b>. Window {since} to {html.escape(str(window.until))}: "
        f"{result.rows_current:,} captured rows from {window.objects} objects, against "
        f"{result.rows_reference:,} training rows (served config {config}). "
        f"Thresholds: PSI at least {result.psi_threshold}, p-value below {result.pvalue_threshold}.</p>\n"
        "<table><tr><th>feature</th><th>kind</th><th>PSI</th><th>KS</th><th>KS p</th><th>JS</th>"
        f"<th>chi2 p</th><th>missing</th><th>verdict</th></tr>\n{rows}</table>\n{sections}\n</body></html>\n"
    )
