"""`headrace batch MODEL INPUT`: score a file through the batch workflow (dropped under
`<model>/batch/incoming/`, validated by ingest, scored by a transform job); `headrace batches MODEL`: the
model's batch jobs from the ledger."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from headrace.batch.layout import incoming_prefix
from headrace.ledger import BatchItem, DynamoLedger, RejectionItem
from headrace.ledger.batches import FINISHED_BATCH

from .output import console, fail, print_json, table
from .target import Stage, resolve

app = typer.Typer()
EXIT_NOT_SCORED = 1
POLL_S = 2.0


def drop_key(model: str, name: str, version: int | None) -> str:
    """Where INPUT goes: `<model>/batch/incoming/[v<N>/]<name>` (a `v<N>/` folder names the version)."""
    return f"{incoming_prefix(model)}/" + (f"v{version}/" if version else "") + name


def _upload(s3: Any, source: str, bucket: str, key: str) -> None:
    if source.startswith("s3://"):
        where, _, path = source.removeprefix("s3://").partition("/")
        if not path:
            fail(f"'{source}' names a bucket, not an object", "pass s3://BUCKET/KEY")
        # A managed copy: multipart past 5 GB, server-side either way.
        s3.copy({"Bucket": where, "Key": path}, bucket, key)
        return
    file = Path(source)
    if not file.is_file():
        fail(f"'{source}' is not a file", "pass a local CSV or Parquet file, or s3://BUCKET/KEY")
    s3.upload_file(str(file), bucket, key)


def _wait(ledger: DynamoLedger, model: str, key: str, timeout: float) -> BatchItem | RejectionItem:
    deadline = time.monotonic() + timeout
    with console.status(f"scoring {key}"):
        while time.monotonic() < deadline:
            mine = [b for b in ledger.batches(model) if b.input_key == key]
            if mine and mine[0].status in FINISHED_BATCH:
                return mine[0]
            rejected = [r for r in ledger.partition(model) if isinstance(r, RejectionItem) and r.key == key]
            if rejected:
                return rejected[-1]
            time.sleep(POLL_S)
    fail(f"{key} was not scored within {timeout:g} s", "see `headrace batches` and `headrace status`")


@app.command()
def batch(
    model: Annotated[str, typer.Argument(help="Model name (a file in models/).")],
    source: Annotated[
        str, typer.Argument(metavar="INPUT", help="A CSV or Parquet file, or s3://BUCKET/KEY.")
    ],
    version: Annotated[
        int | None, typer.Option(min=1, help="Score with this approved version (default: the serving one).")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the job to end and show where it wrote.")
    ] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait with --wait.")] = 1800,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    stage: Stage = None,
    models_dir: Annotated[Path | None, typer.Option(help="Model configs directory.")] = None,
) -> None:
    """Score INPUT (the model's features, with a header, the target left out) with MODEL's serving version,
    or --version N. Each output row is the input row followed by the score.

    Example: headrace batch churn customers.csv --wait
    """
    target = resolve(stage, models_dir)
    config = target.model(model)
    info = target.deployment()
    key = drop_key(config.name, source.rstrip("/").rsplit("/", 1)[-1], version)
    _upload(target.client("s3"), source, info.data_bucket, key)
    if not wait:
        if as_json:
            print_json({"key": key})
        else:
            console.print(
                f"{config.name}: dropped as s3://{info.data_bucket}/{key}; see `headrace batches {model}`"
            )
        return
    ended = _wait(DynamoLedger(target.client("dynamodb"), info.ledger_table), config.name, key, timeout)
    if as_json:
        print_json(ended)
    elif isinstance(ended, RejectionItem):
        console.print(f"[red]quarantined[/]: s3://{info.data_bucket}/{ended.reason_key} says why")
    elif ended.status == "Completed":
        console.print(f"[green]scored[/] {ended.rows} rows with v{ended.version}: {ended.output_uri}")
    else:
        console.print(f"[red]{ended.status}[/]: {ended.failure_reason}")
    if isinstance(ended, RejectionItem) or ended.status != "Completed":
        raise typer.Exit(EXIT_NOT_SCORED)


@app.command()
def batches(
    model: Annotated[str, typer.Argument(help="Model name (a file in models/).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the jobs as JSON.")] = False,
    stage: Stage = None,
    models_dir: Annotated[Path | None, typer.Option(help="Model configs directory.")] = None,
) -> None:
    """MODEL's batch jobs, newest first: rows, version, status, and the output (or why there is none)."""
    target = resolve(stage, models_dir)
    config = target.model(model)
    info = target.deployment()
    jobs = DynamoLedger(target.client("dynamodb"), info.ledger_table).batches(config.name)
    if as_json:
        print_json([j.model_dump(mode="json") for j in jobs])
        return
    rows = [
        (
            j.job_name,
            j.input_key,
            j.rows,
            f"v{j.version}" if j.version else "-",
            j.status,
            j.started_at,
            j.output_uri or j.failure_reason or "",
        )
        for j in jobs
    ]
    columns = ("job", "input", "rows", "version", "status", "started", "output / reason")
    console.print(table(f"{config.name}: batch jobs", columns, rows))
