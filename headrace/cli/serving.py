"""`headrace predict`, `headrace endpoints`, `headrace rollback`: a model's endpoint from the command line."""

from __future__ import annotations

import csv
import getpass
import io
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Table

from headrace.config import ModelConfig
from headrace.serving.client import (
    EndpointClient,
    EndpointNotFound,
    PayloadTooLarge,
    PredictionError,
    PredictionResult,
    RequestRejected,
    ServingError,
)
from headrace.serving.endpoints import (
    EndpointView,
    NothingToRollBack,
    RollbackOutcome,
    list_deployments,
    list_endpoints,
    rollback_outcome,
    rollback_target,
    start_rollback,
)
from headrace.waiting import WaitTimeout, wait_for

from .output import EXIT_FAILED, EXIT_UNREACHABLE, console, fail, print_json, table
from .target import Stage, Target, resolve

app = typer.Typer()

ModelArg = Annotated[str, typer.Argument(help="Model name (a file in models/).")]
ModelsDir = Annotated[
    Path | None, typer.Option(help="Model configs directory (default: the repo's models/).")
]
# How often `rollback --wait` looks at the execution: DescribeExecution is cheap, rollouts take minutes.
POLL_S = 2.0
UNREACHABLE_HINT = "start the local plane (`headrace local up --detach`) or set credentials"


def _read(source: str, what: str) -> str:
    """A file's text, or stdin's for '-'."""
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {what} '{source}': {exc}", "give a readable UTF-8 file, or - for stdin")


def _json_rows(text: str) -> list[Any]:
    """The shapes the container accepts (CONTRACT.md): `{"instances": [...]}`, a list of rows, one object of
    features, or one row as a list."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        fail(
            f"--json is not JSON: {exc}",
            "e.g. --json '{\"instances\": [[3, 49.5, ...]]}' or --json @rows.json",
        )
    rows = document.get("instances", [document]) if isinstance(document, dict) else document
    if isinstance(rows, list) and rows and not isinstance(rows[0], list | dict):
        rows = [rows]  # one row as a list of values
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list | dict) for r in rows):
        fail(
            "--json holds no rows",
            'give {"instances": [...]}, a list of rows (lists of values or objects of features), '
            "or one object",
        )
    return rows


def _csv_records(text: str, model: ModelConfig) -> list[dict[str, str]] | None:
    """Rows as feature → value when the CSV starts with a header naming the model's columns (as `headrace
    data generate` writes, target included, which is dropped); None for headerless CSV, sent as it is."""
    reader = csv.reader(io.StringIO(text))
    first = next(reader, None)
    columns = {c.name for c in model.data.columns}
    if not first or not all(name.strip() in columns for name in first):
        return None
    header = [name.strip() for name in first]
    records: list[dict[str, str]] = []
    for line, record in enumerate(reader, start=2):
        if not any(value.strip() for value in record):
            continue
        if len(record) != len(header):
            fail(f"line {line} of the CSV has {len(record)} values, its header names {len(header)}")
        records.append({n: v for n, v in zip(header, record, strict=True) if n != model.data.target})
    if not records:
        fail("the CSV has a header and no rows")
    return records


def _request_body(model: ModelConfig, csv_file: str | None, json_rows: str | None) -> str | list[Any]:
    """CSV text to send as it is, or rows to send as JSON."""
    if csv_file is not None:
        text = _read(csv_file, "CSV file")
        return _csv_records(text, model) or text
    if json_rows is not None:
        return _json_rows(_read(json_rows[1:], "JSON file") if json_rows.startswith("@") else json_rows)
    fail("give the rows with --csv FILE or --json JSON|@FILE")


def _invoke(
    client: EndpointClient, body: str | list[Any], variant: str | None, inference_id: str | None
) -> PredictionResult:
    try:
        if isinstance(body, str):
            return client.invoke(body.encode(), "text/csv", target_variant=variant, inference_id=inference_id)
        return client.invoke_json(body, target_variant=variant, inference_id=inference_id)
    except PredictionError as exc:
        where = ", ".join(
            part
            for part in (
                f"row {exc.row} (counting from 0)" if exc.row is not None else "",
                f"column '{exc.column}'" if exc.column else "",
            )
            if part
        )
        status = f" ({exc.status})" if exc.status is not None else ""
        fail(
            f"the model refused the request{status}: {exc.message}" + (f" — at {where}" if where else ""),
            f"its log: {exc.log_stream_arn}" if exc.log_stream_arn else "",
            EXIT_FAILED,
        )
    except EndpointNotFound as exc:
        fail(str(exc), code=EXIT_UNREACHABLE)
    except (RequestRejected, PayloadTooLarge) as exc:
        hint = (
            "an inference id is 1 to 64 printable ASCII characters, not starting with a space"
            if "inferenceId" in str(exc)
            else "`headrace endpoints` lists each endpoint's variants"
        )
        fail(str(exc), hint)
    except ServingError as exc:
        fail(str(exc), code=EXIT_FAILED)
    except (BotoCoreError, ClientError) as exc:
        fail(f"cannot reach AWS: {exc}", UNREACHABLE_HINT, EXIT_UNREACHABLE)


def _prediction_table(result: PredictionResult) -> Table:
    """One line per row (numbered from 0, as the container numbers rows in its errors); a column per class
    for multi-class models."""
    title = f"predictions from {result.endpoint_name}" + (f" ({result.variant})" if result.variant else "")
    rows = [
        (i, *(f"{v:.4f}" for v in (p if isinstance(p, list) else [p])))
        for i, p in enumerate(result.predictions)
    ]
    first = result.predictions[0] if result.predictions else None
    classes = [f"class {k}" for k in range(len(first))] if isinstance(first, list) else ["prediction"]
    return table(title, ["row", *classes], rows)


@app.command()
def predict(
    model: ModelArg,
    csv_file: Annotated[
        str | None,
        typer.Option(
            "--csv",
            metavar="FILE",
            help="CSV rows in the model's column order, headerless, or with a header naming its columns "
            "(as `headrace data generate` writes); - reads stdin.",
        ),
    ] = None,
    json_rows: Annotated[
        str | None,
        typer.Option(
            "--json",
            metavar="JSON|@FILE",
            help='JSON rows: {"instances": [...]}, a list of rows, or one object of features; '
            "@FILE reads a file, @- stdin.",
        ),
    ] = None,
    variant: Annotated[
        str | None,
        typer.Option(help="Send to this production variant only (InvokeEndpoint's TargetVariant)."),
    ] = None,
    inference_id: Annotated[
        str | None,
        typer.Option(
            "--inference-id",
            metavar="ID",
            help="InvokeEndpoint's InferenceId for this request (1-64 printable ASCII characters); "
            "default: a new uuid4. It is shown with the predictions and recorded with the captured request.",
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option("--json-output", help="Print JSON for scripts instead of a table (with inference_id)."),
    ] = False,
    stage: Stage = None,
    models_dir: ModelsDir = None,
) -> None:
    """Send rows to a model's endpoint and print its predictions and the request's inference id; exits 1
    naming the row and column the model refused.

    Ground truth: once the true outcomes are known (days later is fine), upload
    them to the data bucket under <model>/ground-truth/incoming/, keyed by the
    inference id, one label per row (rows count from 0). Either CSV, header
    inference_id,label plus an optional row column (default 0):

        inference_id,row,label
        3f1c...,0,1

    or SageMaker's ground-truth JSON lines (.jsonl), N comma-separated labels
    for a request of N rows:

        {"groundTruthData": {"data": "1,0", "encoding": "CSV"},
         "eventMetadata": {"eventId": "3f1c..."}, "eventVersion": "0"}

    `headrace data generate MODEL --labels-for-capture DIR --out FILE` writes
    such a file for captured requests.

    Example: headrace data generate churn --rows 5 --out rows.csv && headrace predict churn --csv rows.csv
    """
    if (csv_file is None) == (json_rows is None):
        fail(
            "give the rows with exactly one of --csv FILE and --json JSON|@FILE",
            "see `headrace predict --help`",
        )
    target = resolve(stage, models_dir)
    config = target.model(model)
    body = _request_body(config, csv_file, json_rows)
    try:
        client = EndpointClient.for_model(
            config.name, target.stage, runtime=target.client("sagemaker-runtime")
        )
    except BotoCoreError as exc:
        fail(f"cannot reach AWS: {exc}", UNREACHABLE_HINT, EXIT_UNREACHABLE)
    result = _invoke(client, body, variant, inference_id)
    if json_output:
        print_json(result)
        return
    console.print(_prediction_table(result))
    # Its own line, never wrapped: the key to send these rows' ground truth under.
    console.print(f"inference id {result.inference_id}", highlight=False, soft_wrap=True)


def _views(target: Target) -> list[EndpointView]:
    deployment = target.deployment()
    try:
        return list_endpoints(
            target.client("sagemaker"),
            target.client("dynamodb"),
            deployment.ledger_table,
            target.names,
            [m.name for m in deployment.models],
            target.client("application-autoscaling"),
        )
    except (BotoCoreError, ClientError) as exc:
        fail(f"cannot reach AWS: {exc}", UNREACHABLE_HINT, EXIT_UNREACHABLE)


def _clip(text: str, width: int = 90) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= width else line[: width - 1] + "…"


@app.command()
def endpoints(
    stage: Stage = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")] = False,
    models_dir: ModelsDir = None,
) -> None:
    """Each model's endpoint: status, the version and config it serves, traffic weights, instances,
    autoscaling (bounds and the last scaling activity), last deployment.

    Example: headrace endpoints --json | jq '.[] | {model, version, status}'
    """
    views = _views(resolve(stage, models_dir))
    if json:
        print_json([v.model_dump(mode="json") for v in views])
        return
    rows = [
        (
            v.model,
            v.endpoint_name,
            v.status + (f" → {v.pending_config_name}" if v.pending_config_name else ""),
            f"v{v.version}" if v.version is not None else "",
            v.config_name or "",
            v.weights,
            v.instances,
            _clip(v.scaling.summary, 60) if v.scaling else "off",
            _clip(v.last_deployment.summary) if v.last_deployment else "",
        )
        for v in views
    ]
    columns = [
        "model",
        "endpoint",
        "status",
        "version",
        "config",
        "weights",
        "instances",
        "autoscaling",
        "last deployment",
    ]
    console.print(table("endpoints", columns, rows))


def _requester() -> str:
    """Who asked, for the ledger's reason: the login name where there is one."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "headrace rollback"


def _follow(
    target: Target, execution_arn: str, endpoint_name: str, version: int, timeout_s: float
) -> RollbackOutcome:
    stepfunctions, sagemaker = target.client("stepfunctions"), target.client("sagemaker")
    started = time.monotonic()
    with console.status(f"rolling out v{version} to {endpoint_name}…") as spinner:

        def finished() -> RollbackOutcome | None:
            outcome = rollback_outcome(stepfunctions, sagemaker, execution_arn, endpoint_name, version)
            spinner.update(f"rolling out v{version} to {endpoint_name}… {time.monotonic() - started:.0f}s")
            return outcome

        try:
            return wait_for(finished, f"the rollback to v{version}", timeout_s=timeout_s, interval_s=POLL_S)
        except WaitTimeout as exc:
            fail(
                f"{exc}; the execution goes on",
                f"follow it with `headrace endpoints` or "
                f"`aws stepfunctions describe-execution --execution-arn {execution_arn}`",
                EXIT_FAILED,
            )
        except (BotoCoreError, ClientError) as exc:
            fail(f"cannot reach AWS: {exc}", UNREACHABLE_HINT, EXIT_UNREACHABLE)


def _report(model: str, outcome: RollbackOutcome) -> None:
    serving = f"v{outcome.serving_version}" if outcome.serving_version is not None else "no Headrace version"
    if outcome.serves:
        console.print(f"[green]{model} serves v{outcome.version}[/] ({outcome.endpoint_status})")
        return
    if outcome.execution_status != "SUCCEEDED":
        fail(
            f"the rollback to v{outcome.version} ended {outcome.execution_status}: "
            f"{outcome.error or 'no error given'}: {outcome.cause or 'no cause given'}",
            f"the endpoint serves {serving} ({outcome.endpoint_status}); "
            "`headrace endpoints` shows the last deployment",
            EXIT_FAILED,
        )
    fail(
        f"v{outcome.version} was not rolled out: {outcome.reason or 'the deploy workflow gave no reason'}",
        f"the endpoint serves {serving} ({outcome.endpoint_status})",
        EXIT_FAILED,
    )


@app.command()
def rollback(
    model: ModelArg,
    version: Annotated[
        str | None,
        typer.Argument(help="Version to serve: 3 or v3 (default: the one the serving version replaced)."),
    ] = None,
    reason: Annotated[
        str, typer.Option(help="Why: recorded with the deployment in the ledger.")
    ] = "rolled back with the headrace CLI",
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the rollout until the endpoint serves it.")
    ] = True,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds --wait waits before giving up.")] = 3600,
    stage: Stage = None,
    models_dir: ModelsDir = None,
) -> None:
    """Serve an earlier Approved version again, through the deploy workflow (blue/green, guarded by alarms);
    exits 0 once the endpoint serves it, 1 when the rollout failed.

    Example: headrace rollback churn v2 --reason "v3 mis-scores the south region"
    """
    if version is not None and not (version.removeprefix("v").isdigit() and int(version.removeprefix("v"))):
        fail(f"'{version}' is not a version number", "use the number from `headrace runs`, like 3 or v3")
    target = resolve(stage, models_dir)
    config = target.model(model)
    deployment = target.deployment()
    info = deployment.model(config.name)
    if info.deploy_state_machine_arn is None:
        fail(
            f"stack {target.names.pipeline_stack} has no deploy workflow for '{config.name}'",
            "deploy the current pipeline stack (`cdk deploy`) or restart the local plane",
            EXIT_UNREACHABLE,
        )
    try:
        if version is None:
            ledger = list_deployments(target.client("dynamodb"), deployment.ledger_table, config.name)
            asked = rollback_target(config.name, ledger)
        else:
            asked = int(version.removeprefix("v"))
        execution_arn = start_rollback(
            target.client("stepfunctions"), info.deploy_state_machine_arn, asked, reason, _requester()
        )
    except NothingToRollBack as exc:
        fail(str(exc))
    except (BotoCoreError, ClientError) as exc:
        fail(f"cannot reach AWS: {exc}", UNREACHABLE_HINT, EXIT_UNREACHABLE)
    console.print(f"rolling {config.name} back to v{asked}: execution {execution_arn.rsplit(':', 1)[-1]}")
    if not wait:
        console.print(f"follow it with `headrace endpoints` (execution {execution_arn})", highlight=False)
        return
    _report(config.name, _follow(target, execution_arn, info.endpoint_name, asked, timeout))
