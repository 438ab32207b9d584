"""The demo's HTML report: one self-contained page (inline SVG, no scripts, no network) with the versions
and their metrics, live quality beside drift (the concept drift the drift check cannot see), what the
retrained version learned from, the drift checks' per-feature PSI, the rollouts' traffic, and every step's
timing."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from headrace.monitoring.report import STYLE

from . import summary
from .charts import grouped_bars, share_over_time
from .record import DemoRecord, QualityCheckRecord, RolloutTrace

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


def _quality(record: DemoRecord) -> str:
    """The gate metric as the story saw it: v1 on its own test split, live on labelled traffic after the
    concept drift, and v1 and v2 on the retraining's recent holdout; then every check in time order."""
    if not record.quality:
        return "<p>no quality check ran</p>"
    check = record.quality[-1]
    figures: list[tuple[str, float | None]] = [
        ("v1 own test split", check.baseline),
        ("v1 live (labelled traffic)", check.value),
    ]
    figures += [(f"v{v.version} recent holdout", v.recent) for v in record.versions if v.recent is not None]
    chart = grouped_bars(
        [name for name, _ in figures],
        [(check.metric, [value for _, value in figures])],
        threshold=check.threshold,
        labels=True,
    )
    timeline = sorted(
        [(c.at, "drift", c.label, c.status, _drift_what(c.drifted_features, c.rows)) for c in record.checks]
        + [(q.at, "quality", q.label, q.status, _quality_what(q)) for q in record.quality]
    )
    rows = [[summary.clock(at), kind, label, status, what] for at, kind, label, status, what in timeline]
    reasons = "".join(f"<li>{html.escape(r)}</li>" for q in record.quality for r in q.reasons)
    where = (
        f"<p>the check's own report: <code>{html.escape(check.report_uri)}</code></p>"
        if check.report_uri
        else ""
    )
    return (
        f"<figure>{chart}<figcaption>{html.escape(check.metric)}: the served v1 on its own test split, live "
        "on the labelled traffic after the concept drift, and v1 and v2 on the retraining's recent holdout "
        "(dashed: gate.thresholds)</figcaption></figure>"
        + _table(["at", "check", "traffic", "verdict", "what it saw"], rows)
        + (f"<p>why the quality check breached:</p><ul>{reasons}</ul>" if reasons else "")
        + where
    )


def _drift_what(drifted: Sequence[str], rows: int) -> str:
    return f"{rows:,} rows; " + (f"drifted: {', '.join(drifted)}" if drifted else "no feature drifted")


def _quality_what(check: QualityCheckRecord) -> str:
    bound = f" ±{check.error_bound:.1g}" if check.error_bound else ""
    live = f"{check.value:.3f}{bound}" if check.value is not None else "-"
    own = f"{check.baseline:.3f}" if check.baseline is not None else "-"
    return (
        f"{check.labelled_rows:,} labelled rows ({check.unknown_labels:,} labels with no captured "
        f"inference); live {check.metric} {live}, own test {own}"
    )


def _learned(record: DemoRecord) -> str:
    """The ground truth that arrived, and what each retrained version read (lineage)."""
    truth = _table(
        ["dropped", "accepted as", "labels", "inferences"],
        [[g.source_key, g.accepted_key, f"{g.labels:,}", f"{g.inferences:,}"] for g in record.ground_truth],
    )
    used = [
        [f"v{v.version}", d.source, d.sha256[:12], f"{d.rows:,}", d.lineage_uri or ""]
        for v in record.versions
        for d in v.datasets
    ]
    return truth + (_table(["version", "source", "dataset", "rows read", "lineage"], used) if used else "")


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


def _batches(record: DemoRecord) -> str:
    """The batch jobs: rows, time from the drop to the output, where it is, and the endpoint's agreement."""
    if not record.batches:
        return "<p>no batch was scored</p>"
    rows = [
        [
            b.job_name,
            b.input_key,
            f"{b.rows:,}",
            f"v{b.version}" if b.version else "-",
            f"{b.seconds:.1f}",
            f"{b.rows / b.seconds:,.0f}" if b.seconds > 0 else "-",
            f"{b.output_uri} ({b.output_objects} object{'s' if b.output_objects != 1 else ''})",
            f"{b.sampled} rows, max |batch - endpoint| {b.max_difference:.1g}",
            b.drift_status or "-",
        ]
        for b in record.batches
    ]
    columns = ["job", "dropped", "rows", "version", "seconds", "rows/s", "output", "vs the endpoint", "drift"]
    return (
        "<p>A table dropped under the model's <code>batch/incoming/</code>, scored by a transform job with "
        "the serving version's Model (the endpoint's container); each output row is its inputs and a score."
        "</p>" + _table(columns, rows)
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
        + "\n<h2>Live quality beside drift</h2>\n"
        + _quality(record)
        + "\n<h2>Ground truth, and what retraining learned from</h2>\n"
        + _learned(record)
        + "\n<h2>Drift checks: PSI per feature</h2>\n"
        + _drift(record)
        + "\n<h2>Rollouts: the new fleet's share of traffic</h2>\n"
        + f'<div class="plots">{rollouts}</div>'
        + "\n<h2>Batch scoring</h2>\n"
        + _batches(record)
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
