"""`headrace smoke`: a deployed stage, or the local plane, checked end to end for one model (../smoke.py)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer

from headrace.ledger import DynamoLedger
from headrace.smoke import Smoke, SmokeClients, SmokeReport, SmokeStep

from .output import EXIT_FAILED, console, errors, fail, print_json, table
from .target import resolve

app = typer.Typer()

# A deployed stage trains on SageMaker and rolls out with bakes: tens of minutes are normal there.
DEFAULT_TIMEOUT_S = 3600
DEFAULT_ROWS = 2_000


@app.command()
def smoke(
    stage: Annotated[
        str | None, typer.Option(help="The stage to check (default: $HEADRACE_STAGE, else the plane's).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="The model to check (default: the only model; required with several).")
    ] = None,
    rows: Annotated[int, typer.Option(min=1, help="Rows of sample data to drop.")] = DEFAULT_ROWS,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds the whole smoke may take before it fails.")
    ] = DEFAULT_TIMEOUT_S,
    seed: Annotated[
        int | None,
        typer.Option(help="Sample data seed (default: a fresh one, so the data is a new dataset version)."),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the report as JSON for scripts.")] = False,
    models_dir: Annotated[Path | None, typer.Option(help="Model configs directory.")] = None,
) -> None:
    """Drop the model's sample data in the stage, wait for the run it starts to register, for the endpoint
    to serve it when the stage's approval policy approves it (the smoke never approves), and check the
    endpoint answers. Each step is printed with its time; exits 0 only when no step failed.

    Works against the local plane and against a deployed stage (boto3's credentials): what CI runs after
    `make deploy`.

    Example: headrace smoke --stage dev --model churn
    """
    target = resolve(stage, models_dir)
    if model is None:
        if len(target.models) != 1:
            fail(
                f"{len(target.models)} models are configured: say which to check",
                f"--model {' or --model '.join(m.name for m in target.models) or 'NAME'}",
            )
        model = target.models[0].name
    config = target.model(model)
    deployment = target.deployment()
    chosen = seed if seed is not None else secrets.randbelow(2**31)
    run = Smoke(
        deployment.stage,
        config,
        deployment.model(config.name),
        DynamoLedger(target.client("dynamodb"), deployment.ledger_table),
        SmokeClients(
            s3=target.client("s3"),
            sagemaker=target.client("sagemaker"),
            runtime=target.client("sagemaker-runtime"),
        ),
        rows=rows,
        seed=chosen,
        timeout_s=timeout,
        on_step=_say if not json else lambda step: None,
    )
    if not json:
        errors.print(f"[dim]smoke of {config.name} in {deployment.stage} (seed {chosen})[/]", highlight=False)
    report = run.run()
    if json:
        print_json(report.model_dump(mode="json") | {"passed": report.passed})
    else:
        console.print(_table(report))
    if not report.passed:
        raise typer.Exit(EXIT_FAILED)


_MARKS = {"passed": "[green]ok[/]", "failed": "[bold red]FAILED[/]", "skipped": "[yellow]skipped[/]"}


def _say(step: SmokeStep) -> None:
    console.print(f"{_MARKS[step.status]} {step.name} ({step.seconds:.1f}s): {step.detail}", soft_wrap=True)


def _table(report: SmokeReport) -> object:
    verdict = "passed" if report.passed else "FAILED"
    return table(
        f"smoke of {report.model} in {report.stage}: {verdict} in {report.seconds:.1f}s",
        ["step", "result", "seconds", "detail"],
        [(s.name, s.status, f"{s.seconds:.1f}", s.detail) for s in report.steps],
    )
