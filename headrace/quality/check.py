"""The quality check's steps. Window picks the inferences captured within the last
`monitoring.quality_window_hours` and every accepted label file from the window's start to now, and copies
the serving version's features.json and evaluation.json out of its model artifact; each Partial joins one
batch of captures with the labels (headrace.quality.join) and counts it (headrace.quality.metrics: partials
merge exactly); Finish merges, judges the gate metric, publishes the metrics the live-quality alarm watches,
records the check, writes result.json and report.html, and turns the labelled rows into a production dataset.

Labels arrive in `<model>/ground-truth/accepted/<YYYY>/<MM>/<DD>/<HH>/` (headrace.quality.labels): a label
may come days after its inference, so every label accepted since the window's start is read; one for an
(inference, row) given twice counts once, the later accepted file winning (key order is arrival order).
Fewer labelled rows than `monitoring.quality_min_labels` are a result of their own (`too_few_labels`):
recorded, never published as a breach, so a trickle of labels cannot raise the alarm.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from headrace.config import ColumnType, ModelConfig
from headrace.ledger import QualityCheckItem, sort_time
from headrace.ledger.quality import QualityStatus
from headrace.metric_direction import EPSILON, Direction, direction
from headrace.monitoring import window as windows
from headrace.monitoring.served_files import copy_reference, monitoring_prefix
from headrace.naming import Names
from headrace.ports import ObjectSummary
from headrace.quality.payloads import (
    QualityFinishRequest,
    QualityOutcome,
    QualityPartOut,
    QualityPartRequest,
    QualityWindow,
    WindowRequest,
)
from headrace.quality.ports import QualityPorts
from headrace.serving.capture import VARIANT, capture_prefix

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from headrace.quality.accepted import AcceptedLabels
    from headrace.quality.captured import CapturedRows
    from headrace.quality.metrics import QualityMetrics

# numpy and the metrics are imported by the steps that use them: Window needs neither.

log = logging.getLogger("headrace.quality")

QUALITY_FILES = ("features.json", "evaluation.json")
HISTORY = 30
CSV = "text/csv"
JSON = "application/json"


def quality_prefix(model: str) -> str:
    return f"{monitoring_prefix(model)}/quality"


def accepted_labels_prefix(model: str) -> str:
    return f"{model}/ground-truth/accepted"


def production_key(model: str, folder: str) -> str:
    """Where Finish drops the labelled rows: ingested like any dataset, marked as production data."""
    return f"{model}/incoming/production/{folder}.csv"


def check_folder(check_id: str) -> str:
    return check_id.replace("#", "-")


def score_width(model: ModelConfig) -> int:
    """Scores per row the serving container answers: K class probabilities for multi:softprob, else one."""
    return classes_of(model) if model.trainer.objective == "multi:softprob" else 1


def classes_of(model: ModelConfig) -> int:
    """The target's classes: 2 for binary:logistic, K for multi:softprob (its categories, else num_class),
    1 for regression."""
    objective = model.trainer.objective
    if objective == "binary:logistic":
        return 2
    if objective == "reg:squarederror":
        return 1
    target = model.data.column(model.data.target)
    if target.categories:
        return len(target.categories)
    declared = model.trainer.hyperparameters.get("num_class")
    if declared is None:
        raise ValueError(
            f"model {model.name}: multi:softprob needs the number of classes: declare the target "
            f"'{target.name}' as a category column, or set trainer.hyperparameters.num_class"
        )
    return int(declared)


class QualityResult(BaseModel):
    """result.json: what `headrace quality` shows (headrace/cli/quality.py reads it)."""

    model: str
    check_id: str
    status: QualityStatus
    since: str
    until: str
    endpoint_config: str | None
    labelled_rows: int
    unknown_labels: int
    captured_rows: int
    min_labels: int
    metric: str
    value: float | None
    threshold: float | None
    baseline: float | None
    max_regression: float
    metrics: dict[str, Any]  # QualityMetrics as JSON: every metric, error bounds, slices
    reasons: list[str]
    production_dataset_key: str | None


def judge(model: ModelConfig, value: float | None, baseline: float | None) -> list[str]:
    """Why the live gate metric is a breach (none: it is not): worse than gate.thresholds[gate.metric], or
    worse than the serving version's own test metric by more than gate.max_regression. The gate's
    directions and slack (headrace.metric_direction, the table headrace.training.gate reads)."""
    gate = model.gate
    if value is None:
        return []
    higher = direction(gate.metric) is Direction.HIGHER
    reasons: list[str] = []
    bound = gate.thresholds.get(gate.metric)
    if bound is not None and (value < bound - EPSILON if higher else value > bound + EPSILON):
        side = "below the threshold" if higher else "above the ceiling"
        reasons.append(
            f"live {gate.metric} {value:.4g} is {side} {bound:.4g} (gate.thresholds.{gate.metric})"
        )
    if baseline is not None:
        worse_by = baseline - value if higher else value - baseline
        if worse_by > gate.max_regression + EPSILON:
            reasons.append(
                f"live {gate.metric} {value:.4g} is {worse_by:.4g} worse than the serving version's own test "
                f"{gate.metric} {baseline:.4g}; gate.max_regression allows {gate.max_regression:.4g}"
            )
    return reasons


# --- Window ---------------------------------------------------------------------------------------------


def _listed(
    ports: QualityPorts, bucket: str, base: str, since: datetime, until: datetime
) -> list[ObjectSummary]:
    found = [
        o for prefix in windows.hour_prefixes(base, since, until) for o in ports.store.list(bucket, prefix)
    ]
    return windows.in_window(found, since, until)


def plan_window(
    request: WindowRequest, model: ModelConfig, ports: QualityPorts, *, names: Names, bucket: str
) -> QualityWindow:
    now = ports.clock()
    check_id = f"{sort_time(now)}#{request.execution.name}"
    since = now - timedelta(hours=model.monitoring.quality_window_hours)
    endpoint = names.endpoint(model.name)
    base: dict[str, Any] = {
        "model": model.name,
        "check_id": check_id,
        "since": since,
        "until": now,
        "trigger": request.trigger,
    }
    served = ports.serving.artifact(endpoint)
    if served is None:
        return QualityWindow(
            **base,
            endpoint_config=None,
            reference_prefix=None,
            baseline=None,
            labels_key=None,
            label_files=0,
            batches=[],
            objects=0,
            bytes=0,
        )
    config, model_data_url = served
    reference = copy_reference(ports.store, bucket, model.name, model_data_url, QUALITY_FILES)
    evaluation = json.loads(ports.store.read(bucket, f"{reference}/evaluation.json"))
    baseline = evaluation.get("metrics", {}).get(model.gate.metric)
    captured = _listed(ports, bucket, f"{capture_prefix(model.name)}/{endpoint}/{VARIANT}", since, now)
    # Labels for the window's inferences may have arrived any time since its start; key order is arrival.
    labels = sorted(o.key for o in _listed(ports, bucket, accepted_labels_prefix(model.name), since, now))
    labels_key = f"{quality_prefix(model.name)}/{check_folder(check_id)}/labels.json"
    ports.store.put(bucket, labels_key, json.dumps({"files": labels}).encode(), JSON)
    return QualityWindow(
        **base,
        endpoint_config=config,
        reference_prefix=reference,
        baseline=None if baseline is None else float(baseline),
        labels_key=labels_key,
        label_files=len(labels),
        batches=windows.batches(captured),
        objects=len(captured),
        bytes=sum(o.size for o in captured),
    )


# --- Partial --------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _features(body: bytes) -> tuple[str, ...]:
    return tuple(json.loads(body)["features"])


def _label_files(ports: QualityPorts, bucket: str, labels_key: str) -> list[str]:
    return list(json.loads(ports.store.read(bucket, labels_key))["files"])


def read_labels(ports: QualityPorts, bucket: str, files: Sequence[str]) -> AcceptedLabels:
    """Every accepted label of the files, one per (inference, row): the later accepted file wins
    (headrace.quality.accepted.latest_labels)."""
    from headrace.quality.accepted import latest_labels, read_accepted

    return latest_labels([(key, read_accepted(ports.store.read(bucket, key))) for key in files])


def label_text(model: ModelConfig, labels: NDArray[np.float64]) -> list[str]:
    """Numeric labels back in the target's own values (what an uploaded dataset holds): a category
    column's class by its index, booleans as true/false, integers without a fraction."""
    target = model.data.column(model.data.target)
    if target.categories:
        return [target.categories[int(v)] for v in labels]
    if target.type is ColumnType.BOOLEAN:
        return ["true" if v else "false" for v in labels]
    if target.type is ColumnType.INTEGER:
        return [str(int(v)) for v in labels]
    return [repr(float(v)) for v in labels]


def labelled_rows_csv(
    model: ModelConfig, captured: CapturedRows, rows: NDArray[Any], labels: NDArray[Any]
) -> bytes:
    """The labelled rows in the schema's columns and order, target included, no header (Finish adds it)."""
    columns: list[list[str]] = []
    for column in model.data.columns:
        values = captured.column(column.name)
        if column.name == model.data.target:
            columns.append(label_text(model, labels))
        elif values is not None:
            columns.append([_cell(v) for v in values[rows]])
        else:  # a schema column the trainer left out of the features: the request never had it
            columns.append([""] * len(rows))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(zip(*columns, strict=True))
    return out.getvalue().encode()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _slice_values(captured: CapturedRows, column: str, rows: NDArray[np.int64]) -> NDArray[np.object_]:
    """A slice column's values of the labelled rows; empty where the model has no such feature."""
    import numpy as np

    values = captured.column(column)
    if values is None:
        return np.full(len(rows), "", dtype=object)
    return np.asarray(values[rows], dtype=object)


def count_batch(
    request: QualityPartRequest, model: ModelConfig, ports: QualityPorts, *, bucket: str
) -> QualityPartOut:
    import numpy as np

    from headrace.quality.captured import read_captured
    from headrace.quality.join import join_labels
    from headrace.quality.metrics import QualityPartial

    features = _features(ports.store.read(bucket, f"{request.reference_prefix}/features.json"))
    lines = [line for key in request.keys for line in ports.store.read(bucket, key).splitlines()]
    captured = read_captured(lines, features, score_width(model))
    labels = read_labels(ports, bucket, _label_files(ports, bucket, request.labels_key))
    joined = join_labels(captured.keys, captured.rows, labels.keys, labels.rows)
    rows, matched = joined.inference, joined.label
    partial = QualityPartial.empty(model.trainer.objective, classes_of(model), model.gate.slice_by)
    partial.add(
        captured.scores[rows],
        labels.labels[matched],
        {c: _slice_values(captured, c, rows) for c in model.gate.slice_by},
    )
    folder = f"{quality_prefix(request.model)}/{check_folder(request.check_id)}"
    part = f"{request.index:05d}"
    out = QualityPartOut(
        partial_key=f"{folder}/partials/{part}.bin",
        matched_key=f"{folder}/matched/{part}.bin",
        rows_key=f"{folder}/rows/{part}.csv",
        rows=len(captured),
        labelled=len(rows),
        labels=len(labels),
    )
    ports.store.put(bucket, out.partial_key, partial.to_bytes(), "application/octet-stream")
    ports.store.put(
        bucket, out.matched_key, np.packbits(joined.matched).tobytes(), "application/octet-stream"
    )
    ports.store.put(
        bucket, out.rows_key, labelled_rows_csv(model, captured, rows, labels.labels[matched]), CSV
    )
    return out


# --- Finish ---------------------------------------------------------------------------------------------


def finish_check(
    request: QualityFinishRequest, model: ModelConfig, ports: QualityPorts, *, bucket: str
) -> QualityOutcome:
    window = request.window
    folder = f"{quality_prefix(model.name)}/{check_folder(window.check_id)}"
    gate = model.gate
    fields: dict[str, Any] = {
        "model": model.name,
        "check_id": window.check_id,
        "since": window.since.isoformat(),
        "until": window.until.isoformat(),
        "trigger": window.trigger,
        "endpoint_config": window.endpoint_config,
        "metric": gate.metric,
        "threshold": gate.thresholds.get(gate.metric),
    }
    if window.reference_prefix is None or window.labels_key is None:
        ports.ledger.record(QualityCheckItem(**fields, status="not_serving"))
        return QualityOutcome(
            model=model.name,
            check_id=window.check_id,
            status="not_serving",
            labelled_rows=0,
            unknown_labels=0,
            metric=gate.metric,
            value=None,
            result_uri=None,
            report_uri=None,
            production_dataset_key=None,
        )
    import numpy as np

    from headrace.quality.metrics import QualityPartial
    from headrace.quality.report import render_report

    files = _label_files(ports, bucket, window.labels_key)
    # Every Partial joined the same labels; without captures to join, Finish counts them itself.
    count = request.partials[0].labels if request.partials else len(read_labels(ports, bucket, files))
    matched = np.zeros(count, dtype=bool)
    total = QualityPartial.empty(model.trainer.objective, classes_of(model), gate.slice_by)
    for part in request.partials:
        total = total.merge(QualityPartial.from_bytes(ports.store.read(bucket, part.partial_key)))
        bits = np.frombuffer(ports.store.read(bucket, part.matched_key), dtype=np.uint8)
        matched |= np.unpackbits(bits, count=len(matched)).astype(bool)
    result: QualityMetrics = total.result()
    labelled = result.rows
    value = result.metrics.get(gate.metric)
    enough = labelled >= model.monitoring.quality_min_labels
    reasons = judge(model, value, window.baseline) if enough else []
    status: QualityStatus = ("breach" if reasons else "ok") if enough else "too_few_labels"
    if not enough:
        reasons = [
            f"{labelled} labelled rows, fewer than monitoring.quality_min_labels "
            f"({model.monitoring.quality_min_labels}): nothing is judged"
        ]
    production, production_sha256 = None, None
    # Fewer rows than the schema's min_rows would only be quarantined by ingest: no dataset, and a retrain
    # this breach starts does not wait for one.
    if enough and labelled < model.data.min_rows:
        log.info(
            "%d labelled rows of %s: fewer than schema.min_rows (%d), not written as a production dataset",
            labelled,
            model.name,
            model.data.min_rows,
        )
    elif enough:
        production, production_sha256 = _write_production(
            request, model, ports, bucket=bucket, folder=folder, label_files=files
        )
    document = QualityResult(
        model=model.name,
        check_id=window.check_id,
        status=status,
        since=fields["since"],
        until=fields["until"],
        endpoint_config=window.endpoint_config,
        labelled_rows=labelled,
        unknown_labels=int((~matched).sum()),
        captured_rows=sum(p.rows for p in request.partials),
        min_labels=model.monitoring.quality_min_labels,
        metric=gate.metric,
        value=value,
        threshold=fields["threshold"],
        baseline=window.baseline,
        max_regression=gate.max_regression,
        metrics=result.model_dump(mode="json"),
        reasons=reasons,
        production_dataset_key=production,
    )
    result_uri, report_uri = f"s3://{bucket}/{folder}/result.json", f"s3://{bucket}/{folder}/report.html"
    ports.store.put(bucket, f"{folder}/result.json", document.model_dump_json(indent=1).encode(), JSON)
    item = QualityCheckItem(
        **fields,
        status=status,
        labelled_rows=labelled,
        unknown_labels=document.unknown_labels,
        value=value,
        baseline=window.baseline,
        metrics=json.dumps(document.metrics),
        reasons=reasons,
        result_uri=result_uri,
        report_uri=report_uri,
        production_dataset_key=production,
        production_sha256=production_sha256,
    )
    history = ports.ledger.quality_checks(model.name, HISTORY)
    drift = ports.ledger.drift_checks(model.name, HISTORY)
    html = render_report(document, [item, *history], drift)
    ports.store.put(bucket, f"{folder}/report.html", html.encode(), "text/html")
    ports.metrics.labelled(model.name, labelled)
    if enough:
        ports.metrics.publish(model.name, result.metrics, status == "breach")
    ports.ledger.record(item)
    log.info(
        "quality check of %s: %s (%d labelled rows; %s)",
        model.name,
        status,
        labelled,
        "; ".join(reasons) or "ok",
    )
    return QualityOutcome(
        model=model.name,
        check_id=window.check_id,
        status=status,
        labelled_rows=labelled,
        unknown_labels=document.unknown_labels,
        metric=gate.metric,
        value=value,
        result_uri=result_uri,
        report_uri=report_uri,
        production_dataset_key=production,
    )


def _write_production(
    request: QualityFinishRequest,
    model: ModelConfig,
    ports: QualityPorts,
    *,
    bucket: str,
    folder: str,
    label_files: Sequence[str],
) -> tuple[str, str]:
    """The labelled rows as a dataset file, its lineage first (ingest records it with the version); its key
    and SHA-256 (the retrain decision waits for that dataset version)."""
    from headrace.quality.production import Lineage, production_csv

    window = request.window
    key = production_key(model.name, check_folder(window.check_id))
    lineage = Lineage(
        check_id=window.check_id,
        since=window.since,
        until=window.until,
        capture_objects=window.objects,
        label_files=list(label_files),
        rows=sum(p.labelled for p in request.partials),
        dataset_key=key,
    )
    ports.store.put(bucket, f"{folder}/lineage.json", lineage.model_dump_json(indent=1).encode(), JSON)
    body = production_csv(model, (ports.store.read(bucket, p.rows_key) for p in request.partials))
    ports.store.put(bucket, key, body, CSV)
    return key, hashlib.sha256(body).hexdigest()
