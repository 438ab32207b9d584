"""`headrace quality MODEL`: a live-quality check now (captured predictions joined with their ground truth),
through the quality workflow its schedule runs; and the quality table `headrace status` shows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, field_validator
from rich.table import Table

from headrace.ledger.quality import QualityStatus
from headrace.quality.check import QualityResult
from headrace.quality.metrics import QualityMetrics
from headrace.training.gate import Direction, UnknownMetric, direction

from .checks import parse_result, read_result, run_check, save_report, start_check, workflow
from .output import console, print_json, table
from .target import Stage, resolve

app = typer.Typer()
# Exit status when the live gate metric breached (as `headrace drift` exits 1 on drift): scripts branch on it.
EXIT_BREACHED = 1


class QualityDocument(BaseModel):
    """What people are shown of a quality check, read from its result.json (QualityResult) or from its ledger
    item (QualityCheckItem, whose `metrics` is QualityMetrics as JSON text): the fields both have, the
    metrics typed."""

    model_config = ConfigDict(extra="ignore")

    status: QualityStatus
    labelled_rows: int = 0
    unknown_labels: int = 0
    min_labels: int | None = None
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    baseline: float | None = None
    max_regression: float | None = None
    # Every metric, the bounds of the approximate ones (AUC from score histograms), per slice; None when
    # there was nothing to judge.
    metrics: QualityMetrics | None = None
    reasons: list[str] = []
    since: str | None = None
    until: str | None = None
    production_dataset_key: str | None = None

    @field_validator("metrics", mode="before")
    @classmethod
    def _from_ledger(cls, value: Any) -> Any:
        """The ledger keeps them as JSON text, or not at all (not_serving, too_few_labels)."""
        return json.loads(value) if isinstance(value, str | bytes) else value


def figure(value: float | None, bound: float | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" + (f" ±{bound:.2g}" if bound else "")


def _floor(metric: str | None, threshold: float | None) -> str:
    """`≥ 0.7` for a metric where higher is better, `≤ 0.3` where lower is."""
    if threshold is None or metric is None:
        return "-"
    try:
        better = direction(metric)
    except UnknownMetric:
        return f"{threshold:.4g}"
    return ("≥ " if better is Direction.HIGHER else "≤ ") + f"{threshold:.4g}"


VERDICT = {
    "ok": "[green]ok[/]",
    "breach": "[red]breach[/]",
    "too_few_labels": "too few labels",
    "not_serving": "not serving",
}


def gate_line(doc: QualityDocument) -> str:
    """`auc 0.712 ±0.0001 (threshold ≥ 0.75, own test 0.894)`: own test is the version's evaluation."""
    if doc.metric is None:
        return "-"
    bound = doc.metrics.error_bounds.get(doc.metric) if doc.metrics else None
    floor = _floor(doc.metric, doc.threshold)
    return f"{doc.metric} {figure(doc.value, bound)} (threshold {floor}, own test {figure(doc.baseline)})"


def _metrics_table(model: str, doc: QualityDocument, live: QualityMetrics) -> Table:
    return table(
        f"live quality of {model} ({live.rows:,} labelled rows)",
        ["metric", "live", "error bound", "threshold", "own test"],
        [
            (
                name,
                figure(value),
                figure(live.error_bounds[name]) if name in live.error_bounds else "exact",
                _floor(name, doc.threshold) if name == doc.metric else "",
                figure(doc.baseline) if name == doc.metric else "",
            )
            for name, value in live.metrics.items()
        ],
    )


def _slices_table(model: str, live: QualityMetrics) -> Table | None:
    names = list(live.metrics)
    rows = [
        (
            column,
            value,
            f"{part.rows:,}",
            *(figure(part.metrics.get(n), part.error_bounds.get(n)) for n in names),
        )
        for column, values in live.slices.items()
        for value, part in values.items()
    ]
    if not rows:
        return None
    return table(f"live quality of {model} by slice", ["slice", "value", "rows", *names], rows)


def render(model: str, doc: QualityDocument, report_uri: str | None = None) -> list[Table | str]:
    """The check as people read it: the verdict, the gate metric against its threshold and the version's own
    test metric, every metric with its error bound, the per-slice table and the reasons."""
    if doc.status == "not_serving":
        return [f"{model} has no endpoint serving yet: no predictions to judge"]
    labels = f"{doc.labelled_rows:,} labelled rows, {doc.unknown_labels:,} labels with no captured inference"
    if doc.status == "too_few_labels":
        needed = f", {doc.min_labels:,} needed" if doc.min_labels is not None else ""
        shown: list[Table | str] = [f"{model}: too few labels to judge ({labels}{needed})"]
    else:
        shown = [f"{model}: {VERDICT[doc.status]}: {gate_line(doc)}; {labels}"]
    if doc.metrics is not None and doc.metrics.metrics:
        shown.append(_metrics_table(model, doc, doc.metrics))
        slices = _slices_table(model, doc.metrics)
        if slices is not None:
            shown.append(slices)
    shown.extend(f"  [red]•[/] {reason}" for reason in doc.reasons)
    if doc.production_dataset_key:
        shown.append(f"labelled production rows: {doc.production_dataset_key}")
    if report_uri:
        shown.append(f"report: {report_uri}")
    return shown


def status_table(rows: Sequence[Any]) -> Table:
    """`headrace status`'s quality section: the newest check per model (status.QualityCheckRow)."""
    return table(
        "quality checks (newest per model)",
        [
            "model",
            "when",
            "status",
            "labelled rows",
            "unknown labels",
            "metric: live (threshold, own test)",
            "why",
        ],
        [
            (
                r.model,
                (r.until or "")[:19],
                r.status,
                f"{r.labelled_rows:,}",
                f"{r.unknown_labels:,}",
                gate_line(QualityDocument.model_validate(r.model_dump())),
                "\n".join(r.reasons),
            )
            for r in rows
        ],
    )


def label_files_table(rows: Sequence[Any]) -> Table:
    """`headrace status`'s accepted ground-truth files (status.LabelFileRow), newest first."""
    return table(
        "ground truth accepted",
        ["model", "file", "labels", "inferences", "arrived", "accepted as"],
        [
            (r.model, r.source_key, f"{r.labels:,}", f"{r.inferences:,}", r.arrived_at[:19], r.accepted_key)
            for r in rows
        ],
    )


@app.command()
def quality(
    model: Annotated[str, typer.Argument(help="Model name (a file in models/).")],
    html: Annotated[
        Path | None,
        typer.Option(help="Write the HTML report (quality over time beside drift) to this file."),
    ] = None,
    open_report: Annotated[bool, typer.Option("--open", help="Open the HTML report in a browser.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the check's result document as JSON.")
    ] = False,
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="Wait for the check, or start it and print its execution."),
    ] = True,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the check.")] = 600,
    stage: Stage = None,
    models_dir: Annotated[Path | None, typer.Option(help="Model configs directory.")] = None,
) -> None:
    """Run a quality check of MODEL now: the predictions captured in the last quality_window_hours joined
    with the ground truth accepted so far, with the gate metric live against its threshold and the serving
    version's own test metric, every metric (with its error bound where merged approximately), per slice.
    Exits 0 when quality holds (or too few labels to judge), 1 on a breach.

    Example: headrace quality churn --html quality.html
    """
    target = resolve(stage, models_dir)
    config = target.model(model)
    info = target.deployment().model(config.name)
    machine = workflow(info.quality_state_machine_arn, target.names.pipeline_stack, "quality", config.name)
    sfn, s3 = target.client("stepfunctions"), target.client("s3")
    if not wait:
        arn = start_check(sfn, machine, "the quality check")
        if as_json:
            print_json({"execution_arn": arn})
        else:
            console.print(
                f"{config.name}: quality check started as {arn}; see `headrace status` when it ends"
            )
        return
    check = run_check(
        sfn, machine, "the quality check", f"joining {config.name}'s predictions with labels", timeout
    )
    if check["status"] == "not_serving":
        if as_json:
            print_json({"check": check, "result": None})
        else:
            console.print(*render(config.name, QualityDocument(status="not_serving")))
        return
    body = read_result(s3, check.get("result_uri"), "the quality check")
    written = parse_result(body, QualityResult, check.get("result_uri"), "the quality check")
    doc = QualityDocument.model_validate(written.model_dump())
    if html is not None or open_report:
        save_report(s3, check.get("report_uri"), html or Path(f"quality-{config.name}.html"), open_report)
    if as_json:
        # The document as the check wrote it, not only the fields shown here.
        print_json({"check": check, "result": json.loads(body)})
    else:
        for part in render(config.name, doc, check.get("report_uri")):
            console.print(part)
    if doc.status == "breach":
        raise typer.Exit(EXIT_BREACHED)
