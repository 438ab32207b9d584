"""`headrace`: the command line of the pipeline. Every command works against AWS or the local plane."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from headrace import __version__
from headrace.approval import Decision, VersionNotFound, set_approval
from headrace.config import ConfigError, ModelConfig, load_models
from headrace.datagen import generate, ground_truth_csv, ground_truth_jsonl, label_captured
from headrace.status import collect

from . import batch, drift, local, modelinit, project, quality, runs, serving
from . import promote as promote_cli
from . import smoke as smoke_cli
from .capturefiles import capture_lines
from .output import console, errors, fail, print_json, table
from .target import Stage, Target, resolve

app = typer.Typer(
    help="Headrace: serverless MLOps on AWS — and the same loop offline on this machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(local.app, name="local")
app.add_typer(runs.app, name="runs")
app.add_typer(serving.app)  # predict, endpoints, rollback
app.add_typer(drift.app)  # drift
app.add_typer(quality.app)  # quality
app.add_typer(batch.app)  # batch, batches
app.add_typer(smoke_cli.app)  # smoke
app.add_typer(promote_cli.app)  # promote
config_app = typer.Typer(help="Check model configs.", no_args_is_help=True)
data_app = typer.Typer(help="Example data for a model.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(modelinit.app, name="model")
app.add_typer(data_app, name="data")

ModelArg = Annotated[str, typer.Argument(help="Model name (a file in models/).")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
ModelsDir = Annotated[
    Path | None,
    typer.Option(
        help="Model configs directory (default: $HEADRACE_MODELS_DIR, else the running plane's, else the "
        "nearest models/ from here upward)."
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"headrace {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            help="The local plane to use: its work dir (default: $HEADRACE_WORK_DIR, else the nearest "
            ".headrace/ from here upward with a running plane, else the last one `local up` started)."
        ),
    ] = None,
) -> None:
    """Headrace: serverless MLOps on AWS — and the same loop offline on this machine.

    Like git, it finds your project from the current directory upward: models/ (the model configs) and
    .headrace/ (the local plane). Every command says on stderr which models and which plane it uses.
    """


@app.command()
def info(stage: Stage = None, json: Json = False, models_dir: ModelsDir = None) -> None:
    """What a script needs per model: bucket and prefixes, schema, state machine ARNs, endpoint name.

    Example: headrace info --json | jq -r '.models[0].data_bucket'
    """
    target = resolve(stage, models_dir)
    deployment = target.deployment()
    if json:
        print_json(deployment)
        return
    console.print(f"stage [bold]{deployment.stage}[/] · data bucket [bold]{deployment.data_bucket}[/]")
    configs = {m.name: m for m in target.models}
    rows = [
        (
            m.name,
            f"s3://{m.data_bucket}/{m.incoming_prefix}",
            m.schema_.target,
            len(m.schema_.columns),
            framework_line(configs[m.name]) if m.name in configs else "",
            m.training_state_machine_arn.rsplit(":", 1)[-1],
            m.endpoint_name,
        )
        for m in deployment.models
    ]
    console.print(
        table(
            "models",
            ["model", "drop files into", "target", "columns", "trained by", "training", "endpoint"],
            rows,
        )
    )


@app.command()
def status(stage: Stage = None, json: Json = False, models_dir: ModelsDir = None) -> None:
    """Datasets and ground-truth files accepted, files quarantined (with their reasons), training executions,
    drift checks, the newest quality check per model and retraining decisions (started, or skipped and why).

    Example: headrace status --json
    """
    target = resolve(stage, models_dir)
    deployment = target.deployment()
    report = collect(
        target.client("dynamodb"), target.client("stepfunctions"), deployment, s3=target.client("s3")
    )
    if json:
        print_json(report)
        return
    console.print(
        table(
            "datasets",
            ["model", "sha256", "rows", "key", "received"],
            [(d.model, d.sha256[:12], d.rows, d.key, d.received_at) for d in report.datasets],
        )
    )
    console.print(
        table(
            "quarantined",
            ["model", "file", "why", "quarantined as"],
            [
                (q.model, q.key, "\n".join(q.reasons) or ", ".join(q.rules), q.quarantine_key)
                for q in report.quarantined
            ],
        )
    )
    if report.misplaced:
        console.print(
            table(
                "misplaced (no model reads these)",
                ["file", "where it belongs", "received"],
                [(m.key, m.hint, m.received_at) for m in report.misplaced],
            )
        )
    console.print(
        table(
            "executions",
            ["model", "name", "status", "started"],
            [
                (e.model, e.name, e.status, e.started_at.strftime("%Y-%m-%d %H:%M:%S"))
                for e in report.executions
            ],
        )
    )
    console.print(
        table(
            "drift checks",
            ["model", "check", "status", "rows", "drifted features", "report"],
            [
                (c.model, c.check_id[:26], c.status, c.rows, ", ".join(c.drifted_features), c.report_uri)
                for c in report.drift_checks
            ],
        )
    )
    console.print(quality.label_files_table(report.label_files))
    console.print(quality.status_table(report.quality_checks))
    console.print(
        table(
            "retraining decisions",
            ["model", "decided", "alarm", "decision", "why"],
            [(r.model, r.decided_at[:19], r.alarm, r.decision, r.reason) for r in report.retrains],
        )
    )


Version = Annotated[str, typer.Argument(help="Registry version: 3 or v3 (see `headrace runs`).")]
Reason = Annotated[str, typer.Option(help="Why: recorded as the registry's approval description.")]


def _decide(model: str, version: str, decision: Decision, reason: str, stage: str | None) -> None:
    if not version.removeprefix("v").isdigit():
        fail(f"'{version}' is not a version number", "use the number from `headrace runs`, like 3 or v3")
    target = resolve(stage)
    config = target.model(model)
    deployment = target.deployment()
    try:
        result = set_approval(
            target.client("sagemaker"),
            target.client("dynamodb"),
            deployment.ledger_table,
            config.name,
            target.names.model_package_group(config.name),
            int(version.removeprefix("v")),
            decision,
            reason,
        )
    except VersionNotFound as exc:
        fail(str(exc), "list versions with `headrace runs " + config.name + "`")
    console.print(f"{result.model} v{result.version}: {result.previous_status} → [bold]{result.status}[/]")


@app.command()
def approve(
    model: ModelArg, version: Version, reason: Reason = "approved with the headrace CLI", stage: Stage = None
) -> None:
    """Approve a registered version; an approval is what rolls a version out.

    Example: headrace approve churn v3 --reason "reviewed the slice metrics" --stage prod
    """
    _decide(model, version, "Approved", reason, stage)


@app.command()
def reject(
    model: ModelArg, version: Version, reason: Reason = "rejected with the headrace CLI", stage: Stage = None
) -> None:
    """Reject a registered version: it is never deployed.

    Example: headrace reject churn v4 --reason "worse on the north region"
    """
    _decide(model, version, "Rejected", reason, stage)


@app.command()
def retrain(
    model: ModelArg,
    dataset: Annotated[
        str, typer.Option(help="The dataset version's sha256, or a unique prefix (see `headrace status`).")
    ],
    json: Json = False,
    stage: Stage = None,
) -> None:
    """Train a recorded dataset version again: after a failed run, or on purpose after a finished one.

    Each retrain is a new attempt with its own execution; twice at once still starts one run.
    Example: headrace retrain churn --dataset 3f2a9c1b4d5e
    """
    # Imported here: the ingest package loads the data stack, which no other command needs.
    from headrace.ingest.attempts import DatasetNotFound, RunInProgress, retrain_dataset
    from headrace.ingest.aws import StepFunctionsRuns
    from headrace.ledger import DynamoLedger

    target = resolve(stage)
    config = target.model(model)
    deployment = target.deployment()
    ledger = DynamoLedger(target.client("dynamodb"), deployment.ledger_table)
    matches = [d.sha256 for d in ledger.datasets(config.name) if d.sha256.startswith(dataset.lower())]
    if len(matches) != 1:
        what = "no" if not matches else f"{len(matches)}"
        fail(f"{what} dataset versions of {config.name} match '{dataset}'", "see `headrace status`")
    machine = deployment.model(config.name).training_state_machine_arn
    runs = StepFunctionsRuns(target.client("stepfunctions"), {config.name: machine})
    try:
        started = retrain_dataset(config.name, matches[0], ledger, runs, lambda: datetime.now(UTC))
    except (DatasetNotFound, RunInProgress) as exc:
        fail(str(exc), "wait for the run to end (`headrace status`), then retrain")
    if json:
        print_json({"model": config.name, "sha256": matches[0], **asdict(started)})
        return
    verb = "started" if started.created else "already started"
    console.print(f"{config.name} dataset {matches[0][:12]}: training {verb} as {started.execution_arn}")


@config_app.command("check")
def config_check(models_dir: ModelsDir = None) -> None:
    """Validate every model config; exits 2 naming the file, field and problem.

    Example: headrace config check --models-dir models/
    """
    source = project.models_dir(models_dir)
    errors.print(f"[dim]checking {source.path} ({source.how})[/]", highlight=False, soft_wrap=True)
    try:
        models = load_models(source.path)
    except ConfigError as exc:
        fail(str(exc))
    for model in models:
        console.print(
            f"[green]ok[/] {model.name}: {len(model.data.columns)} columns, target {model.data.target}, "
            f"{framework_line(model)}",
            highlight=False,
            soft_wrap=True,
        )


def framework_line(model: ModelConfig) -> str:
    """Which code trains the model: Headrace's built-in trainer, or the module in the model's folder."""
    if model.entry_point_file is None:
        return f"trainer {model.trainer.framework} (built in)"
    return f"trainer custom ({model.entry_point_file})"


@data_app.command("generate")
def data_generate(
    model: Annotated[str, typer.Argument(help="Model name (a file in models/).")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Output file (.csv or .parquet; with --labels-for-capture .jsonl or .csv)."
        ),
    ],
    rows: Annotated[int, typer.Option(min=1, help="Number of rows.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 7,
    drift: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="0 = training distribution, 1 = strongly drifted.")
    ] = 0.0,
    label_noise: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of labels shuffled: a worse dataset to train on.")
    ] = 0.0,
    concept_drift: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Concept drift: the features keep their distribution, the label rule changes "
            "(1 = the strongest feature's effect reversed).",
        ),
    ] = 0.0,
    labels_for_capture: Annotated[
        str | None,
        typer.Option(
            metavar="PATH|S3URI",
            help="Instead of rows: ground truth for the requests captured there (a capture file, a folder "
            "of them, or s3://bucket/prefix), keyed by each request's inference id, labels drawn from the "
            "rule (with --concept-drift) applied to the captured features; --out .jsonl (SageMaker's "
            "ground-truth lines) or .csv (inference_id,row,label).",
        ),
    ] = None,
    models_dir: ModelsDir = None,
) -> None:
    """Write seeded synthetic data for a model, optionally drifted, with noisy labels or concept drift; or
    the ground truth of captured requests, to upload under <model>/ground-truth/incoming/.

    Example: headrace data generate churn --rows 100000 --out churn.csv
    """
    source = project.models_dir(models_dir)
    errors.print(f"[dim]models {source.path} ({source.how})[/]", highlight=False, soft_wrap=True)
    try:
        configs = load_models(source.path)
    except ConfigError as exc:
        fail(str(exc))
    config = Target(stage="", endpoint=None, models=configs).model(model)
    if labels_for_capture is not None:
        _write_ground_truth(config, labels_for_capture, out, concept_drift, seed, models_dir)
        return
    frame = generate(
        config, rows, seed=seed, drift=drift, label_noise=label_noise, concept_drift=concept_drift
    )
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    elif out.suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        fail(f"cannot write '{out.suffix}' files", "use a .csv or .parquet file name")
    console.print(f"wrote {rows:,} rows of {model} to {out}")


def _write_ground_truth(
    config: ModelConfig, source: str, out: Path, concept_drift: float, seed: int, models_dir: Path | None
) -> None:
    if out.suffix not in (".jsonl", ".json", ".csv"):
        fail(f"cannot write ground truth as '{out.suffix}'", "use a .jsonl or .csv file name")
    lines = capture_lines(source, lambda: resolve(None, models_dir).client("s3"))
    labels = label_captured(config, lines, concept_drift=concept_drift, seed=seed)
    if not labels.keys:
        fail(
            f"none of the {labels.inferences} captured records at '{source}' holds {config.name}'s rows "
            f"({labels.skipped} skipped)",
            "point --labels-for-capture at the capture of this model's endpoint",
        )
    out.write_text(ground_truth_csv(labels) if out.suffix == ".csv" else ground_truth_jsonl(labels))
    console.print(
        f"wrote {len(labels.keys):,} labels for {len(set(labels.keys)):,} captured requests of "
        f"{config.name} to {out}"
        + (f" ({labels.skipped} records skipped)" if labels.skipped else "")
        + f"; upload it under {config.name}/ground-truth/incoming/"
    )


@app.command()
def demo(
    rows: Annotated[int, typer.Option(min=1, help="Rows in the example dataset.")] = 20_000,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the local plane running afterwards.")] = False,
    work_dir: Annotated[Path, typer.Option(help="The demo's plane, models and report live here.")] = Path(
        ".headrace/demo"
    ),
) -> None:
    """The whole loop on the local plane with a live display: data → validation → training → gate →
    registry → endpoint → predictions → quarantine → concept drift → ground truth → drift check (stable) →
    quality check (AUC fell) → alarm → retraining on production labels → canary v2 → a broken v3 rolled back.
    Then a summary and an HTML report (<work dir>/report.html).

    Example: make demo
    """
    from .demo import run_demo

    raise typer.Exit(run_demo(rows=rows, keep=keep, work_dir=work_dir))


if __name__ == "__main__":
    app()
