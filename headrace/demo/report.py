"""The demo's HTML report: one self-contained page (inline SVG, no scripts, no network) with the versions
and their metrics, the drift checks' per-feature PSI, the rollouts' traffic, and every step's timing."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from headrace.monitoring.report import STYLE

from . import summary
from .charts import grouped_bars, share_over_time
from .record import DemoRecord, RolloutTrace

REPORT_FILE = "report.html"
RECORD_FILE = "record.json"
# Seconds of the rollout chart before the canary began: the moment traffic starts to move shows.
LEAD_S = 3.0


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _metrics(record: DemoRecord) -> str:
    names = summary.metric_names(record)
    trained = [v for v in record.versions if v.metrics]
    if not names or not trained:
        return "<p>no version was evaluated</p>"
    series = [(f"v{v.version}", [v.metrics.get(n) for n in names]) for v in trained]
    untrained = ", ".join(f"v{v.version}" for v in record.versions if not v.metrics)
    note = f" ({untrained}: no training run, so no metrics)" if untrained else ""
    return (
        f"<figure>{grouped_bars(names, series, labels=True)}<figcaption>held-out metrics per version"
        f"{html.escape(note)}</figcaption></figure>"
    )


def _drift(record: DemoRecord) -> str:
    if not record.checks:
        return "<p>no drift check ran</p>"
    features = list(record.checks[0].psi)
    series = [(f"{c.label} ({c.status})", [c.psi.get(f) for f in features]) for c in record.checks]
    rows = [
        [
            c.check_id.split("#")[0][:19],
            c.label,
            summary.clock(c.at),
            c.status,
            f"{c.rows:,}",
            ", ".join(c.drifted_features),
        ]
        for c in record.checks
    ]
    highest = "; ".join(
        f"{c.label} {max((v for v in c.psi.values() if v is not None), default=0.0):.2f}"
        for c in record.checks
    )
    return (
        f"<figure>{grouped_bars(features, series, threshold=record.checks[0].psi_threshold)}"
        "<figcaption>PSI per feature, per check (dashed: the threshold a feature drifts at); "
        f"highest PSI: {html.escape(highest)}</figcaption></figure>"
        + _table(["check (UTC)", "traffic", "at", "verdict", "rows", "drifted features"], rows)
    )


def _rollout(trace: RolloutTrace) -> str:
    failed = len(trace.failed_at)
    if trace.outcome == "serving":
        caption = f"v{trace.version}: canary, then all traffic; {trace.calls} calls, {failed} failed"
    else:
        caption = (
            f"v{trace.version}: canary, then rolled back by the 5xx alarm; {failed} of {trace.calls} calls "
            "failed (red ticks), all while the canary had traffic"
        )
    chart = share_over_time(
        trace.shares,
        trace.failed_at,
        start=trace.started_at - LEAD_S,
        end=trace.ended_at,
        zero=trace.started_at,
    )
    errors = "".join(f"<li><code>{html.escape(e)}</code></li>" for e in trace.errors)
    return (
        f"<figure>{chart}<figcaption>{html.escape(caption)}; seconds since the canary began"
        "</figcaption></figure>" + (f"<p>what the client saw:</p><ul>{errors}</ul>" if errors else "")
    )


def render(record: DemoRecord) -> str:
    outcome = (
        f"failed at step '{html.escape(record.failed_step)}'"
        if record.failed_step
        else f"every step happened, in {record.seconds:.0f} s"
    )
    quarantined = _table(
        ["rule", "column", "problem"], [[p.rule, p.column or "", p.message] for p in record.quarantined]
    )
    explore = "".join(
        f"<li><code>{html.escape(command)}</code>: {html.escape(what)}</li>"
        for command, what in summary.EXPLORE
    )
    rollouts = "".join(_rollout(t) for t in record.rollouts) or "<p>no rollout was watched</p>"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Headrace demo</title>'
        f"<style>{STYLE} code {{ font-size: 12px; }}</style></head><body>\n"
        f"<h1>Headrace demo — {html.escape(record.model)}</h1>\n"
        f"<p><b>{outcome}</b>. Started {record.started:%Y-%m-%d %H:%M:%S} on the local plane; "
        f"{record.rows:,} training rows; models from {html.escape(record.models_dir)} "
        f"({html.escape(record.settings)}). Times are m:ss since the demo started.</p>\n"
        "<h2>Versions</h2>\n"
        + _table(*summary.versions(record, detail=True))
        + _metrics(record)
        + "\n<h2>Time to…</h2>\n"
        + _table(summary.TIMING_COLUMNS, summary.timing_rows(record))
        + "\n<h2>Drift checks</h2>\n"
        + _drift(record)
        + "\n<h2>Rollouts: the new fleet's share of traffic</h2>\n"
        + f'<div class="plots">{rollouts}</div>'
        + "\n<h2>The quarantined file</h2>\n"
        + quarantined
        + "\n<h2>Steps</h2>\n"
        + _table(["step", "status", "seconds", "what happened"], summary.step_rows(record))
        + f"\n<h2>Keep exploring</h2>\n<ul>{explore}</ul>\n</body></html>\n"
    )


def write(record: DemoRecord, directory: Path) -> Path:
    """report.html and record.json (the same facts, for scripts) in `directory`; the report's path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / RECORD_FILE).write_text(record.model_dump_json(indent=1))
    path = directory / REPORT_FILE
    path.write_text(render(record))
    return path
