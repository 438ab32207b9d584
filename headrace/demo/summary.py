"""The summary's rows, from the record alone: printed as tables by the CLI and repeated in the HTML report."""

from __future__ import annotations

from .record import DemoRecord, VersionRecord

TIMING_COLUMNS = ["from", "to", "seconds"]


def clock(seconds: float | None) -> str:
    """m:ss since the demo started."""
    if seconds is None:
        return "-"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


# In an evaluation's metrics but not a metric: how many held-out rows it was computed on.
NOT_METRICS = {"rows"}


def metric_names(record: DemoRecord) -> list[str]:
    """Every metric any version has, the gate's metric first."""
    names: list[str] = []
    for version in record.versions:
        names.extend(n for n in version.metrics if n not in names and n not in NOT_METRICS)
    return sorted(names, key=lambda n: (n != record.metric, n))


def served(version: VersionRecord) -> str:
    parts = []
    if version.canary_at is not None:
        parts.append(f"canary {clock(version.canary_at)}")
    if version.serving_from is not None:
        until = clock(version.serving_until) if version.serving_until is not None else "end"
        parts.append(f"all {clock(version.serving_from)} → {until}")
    if version.rolled_back_at is not None:
        parts.append(f"rolled back {clock(version.rolled_back_at)}")
    return ", ".join(parts) or "never served"


def versions(record: DemoRecord, *, detail: bool = False) -> tuple[list[str], list[list[str]]]:
    """Columns and rows: short enough for an 80-column terminal, or with `detail` every metric, the gate's
    reasoning and the notes (the report)."""
    metrics = metric_names(record) if detail else [record.metric]
    # Each version's own test split; and where a retraining judged on labelled production rows, the gate
    # metric of both it and its champion on that same recent holdout.
    recent = [f"{record.metric} recent"] if any(v.recent is not None for v in record.versions) else []
    columns = ["version", "came from", *metrics, *recent, "gate", "approval", "served"]
    rows = []
    for v in record.versions:
        values = [f"{v.metrics[m]:.3f}" if v.metrics.get(m) is not None else "-" for m in metrics]
        if recent:
            values.append(f"{v.recent:.3f}" if v.recent is not None else "-")
        gate = v.gate_detail if detail and v.gate_detail else v.gate
        rows.append([f"v{v.version}", v.origin, *values, gate, v.approval, served(v)])
    if detail:
        columns.append("note")
        for row, v in zip(rows, record.versions, strict=True):
            row.append(v.note)
    return columns, rows


def timing_rows(record: DemoRecord) -> list[list[str]]:
    """The latencies the story is about, from milestone to milestone."""
    marks = dict(record.marks)
    if record.steps and record.steps[0].status == "done":
        marks["plane up"] = record.steps[0].seconds
    spans = [
        ("demo start", "plane up", 0.0, marks.get("plane up")),
        ("data dropped", "v1 serving", marks.get("dropped"), marks.get("v1 serving")),
        ("concept drift", "quality alarm", marks.get("concept drift"), marks.get("quality alarm")),
        ("quality alarm", "v2 serving (all traffic)", marks.get("quality alarm"), marks.get("v2 serving")),
    ]
    spans += [
        ("batch file dropped", f"batch scored ({b.rows:,} rows)", b.dropped_at, b.ended_at)
        for b in record.batches
    ]
    if record.versions and record.versions[-1].version == 3:
        v3 = record.versions[-1]
        spans.append(("v3 canary", "v3 rolled back", v3.canary_at, v3.rolled_back_at))
    spans.append(("demo start", "demo end", 0.0, record.seconds or None))
    return [
        [a, b, f"{end - start:.1f}"] for a, b, start, end in spans if start is not None and end is not None
    ]


def step_rows(record: DemoRecord) -> list[list[str]]:
    return [
        [s.title, s.status, f"{s.seconds:.1f}" if s.status in ("done", "failed") else "", s.detail]
        for s in record.steps
    ]


# How to keep exploring once the demo's plane is down: a plane of your own, then the same tools.
EXPLORE: list[tuple[str, str]] = [
    ("headrace local up --detach", "a plane of your own (models/)"),
    ('eval "$(headrace local env)"', "boto3 and the AWS CLI → that plane"),
    ("headrace info", "buckets, prefixes, schema, endpoint names"),
    ("headrace data generate churn --out churn.csv", "data to drop into incoming/"),
    ("aws s3 ls --recursive s3://<data bucket>/churn/", "incoming, quarantine, capture, runs"),
    ("headrace status", "datasets, quarantine, runs, drift, quality, retrains"),
    ("headrace endpoints", "what serves, at which weights"),
    ("headrace batch churn customers.csv --wait", "score a table with the serving version"),
    ("headrace batches churn", "batch jobs: rows, status, output"),
    ("headrace drift churn --html drift.html", "a drift check now, as HTML"),
    ("headrace quality churn --html quality.html", "live quality against ground truth, as HTML"),
    ("headrace data generate churn --labels-for-capture <capture> --out t.jsonl", "ground truth for it"),
    ("headrace demo --keep", "this demo, its plane left up"),
]
