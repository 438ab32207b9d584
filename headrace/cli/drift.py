"""`headrace drift MODEL`: a drift check now, through the drift workflow its schedule runs."""

from __future__ import annotations

import json
import time
import uuid
import webbrowser
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError

from headrace.drift import DriftResult
from headrace.waiting import WaitTimeout, wait_for

from .output import EXIT_FAILED, EXIT_UNREACHABLE, console, fail, print_json, table
from .target import resolve

app = typer.Typer()
# Exit status when the check found drift (as `diff` exits 1 when files differ): scripts can branch on it.
EXIT_DRIFTED = 1
UNREACHABLE_HINT = "start the local plane (`headrace local up --detach`) or set credentials"


def _read_s3(client: Any, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


@app.command()
def drift(
    model: Annotated[str, typer.Argument(help="Model name (a file in models/).")],
    html: Annotated[
        Path | None,
        typer.Option(help="Write the HTML report (distributions, scores over time) to this file."),
    ] = None,
    open_report: Annotated[bool, typer.Option("--open", help="Open the HTML report in a browser.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the check's result as JSON.")] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the check.")] = 600,
    stage: Annotated[str | None, typer.Option(help="Deployment stage (default: the local plane's).")] = None,
    models_dir: Annotated[Path | None, typer.Option(help="Model configs directory.")] = None,
) -> None:
    """Run a drift check of MODEL's captured traffic now (since the last check) and show per feature PSI,
    KS, JS and chi-square with the verdict. Exits 0 when nothing drifted (or too little traffic to judge),
    1 when a feature drifted.

    Example: headrace drift churn --html drift.html
    """
    target = resolve(stage, models_dir)
    config = target.model(model)
    info = target.deployment().model(config.name)
    if info.drift_state_machine_arn is None:
        fail(
            f"stack {target.names.pipeline_stack} has no drift workflow for '{config.name}'",
            "deploy the current pipeline stack (`cdk deploy`) or restart the local plane",
            EXIT_UNREACHABLE,
        )
    sfn, s3 = target.client("stepfunctions"), target.client("s3")
    execution = _run_check(sfn, info.drift_state_machine_arn, config.name, timeout)
    check = json.loads(execution["output"])["check"]
    if check["status"] == "not_serving":
        console.print(f"{config.name} has no endpoint serving yet: no traffic to check")
        return
    result = DriftResult.model_validate_json(_read_s3(s3, check["result_uri"]))
    if html is not None or open_report:
        path = html or Path(f"drift-{config.name}.html")
        path.write_bytes(_read_s3(s3, check["report_uri"]))
        console.print(f"report: {path}")
        if open_report:
            webbrowser.open(path.resolve().as_uri())
    if as_json:
        print_json({"check": check, "result": result.model_dump(mode="json")})
    else:
        _show(config.name, check, result)
    if result.drifted:
        raise typer.Exit(EXIT_DRIFTED)


def _run_check(sfn: Any, machine: str, model: str, timeout: float) -> dict[str, Any]:
    """Start the drift workflow and wait for it; its successful description, or exit naming what failed."""
    name = f"cli-{uuid.uuid4().hex[:12]}"
    arn = machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"
    try:
        sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps({"trigger": "cli"}))
        started = time.monotonic()
        with console.status(f"checking {model}'s captured traffic…") as spinner:

            def ended() -> dict[str, Any] | None:
                described = sfn.describe_execution(executionArn=arn)
                spinner.update(f"checking {model}'s captured traffic… {time.monotonic() - started:.0f}s")
                return dict(described) if described["status"] != "RUNNING" else None

            execution = wait_for(ended, "the drift check", timeout_s=timeout, interval_s=0.5)
    except WaitTimeout as exc:
        fail(f"{exc}; the execution goes on", f"aws stepfunctions describe-execution --execution-arn {arn}")
    except (BotoCoreError, ClientError) as exc:
        fail(f"cannot reach AWS: {exc}", UNREACHABLE_HINT, EXIT_UNREACHABLE)
    if execution["status"] != "SUCCEEDED":
        fail(
            f"the drift check {name} ended {execution['status']}: {execution.get('error')}: "
            f"{execution.get('cause')}",
            f"its history: aws stepfunctions get-execution-history --execution-arn {arn}",
            EXIT_FAILED,
        )
    return execution


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _show(model: str, check: dict[str, Any], result: DriftResult) -> None:
    rows = [
        [
            f.name,
            f.kind,
            _score(f.psi),
            _score(f.ks_statistic),
            _score(f.ks_pvalue),
            _score(f.js_distance),
            _score(f.chi2_pvalue),
            f"{f.missing_rate_reference:.1%} → {f.missing_rate_current:.1%}",
            ("[red]drift[/] (" + ", ".join(f.reasons) + ")") if f.drifted else "ok",
        ]
        for f in result.features
    ]
    columns = ["feature", "kind", "PSI", "KS", "KS p", "JS", "chi2 p", "missing", "verdict"]
    console.print(table(f"drift of {model}", columns, rows))
    verdict = {
        "stable": "[green]no feature drifted[/]",
        "drifted": f"[red]drifted: {', '.join(result.drifted_features)}[/]",
        "too_little_traffic": f"too little traffic: {result.rows_current} rows, {result.min_rows} needed",
    }[result.status]
    console.print(
        f"{model}: {verdict} ({result.rows_current:,} captured rows); report: {check['report_uri']}"
    )
