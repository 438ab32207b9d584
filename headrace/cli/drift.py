"""`headrace drift MODEL`: a drift check now, through the drift workflow its schedule runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from headrace.drift import DriftResult

from .checks import read_document, run_check, save_report, workflow
from .output import console, print_json, table
from .target import Stage, resolve

app = typer.Typer()
# Exit status when the check found drift (as `diff` exits 1 when files differ): scripts can branch on it.
EXIT_DRIFTED = 1


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
    stage: Stage = None,
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
    machine = workflow(info.drift_state_machine_arn, target.names.pipeline_stack, "drift", config.name)
    sfn, s3 = target.client("stepfunctions"), target.client("s3")
    doing = f"checking {config.name}'s captured traffic"
    check = run_check(sfn, machine, "the drift check", doing, timeout)
    if check["status"] == "not_serving":
        console.print(f"{config.name} has no endpoint serving yet: no traffic to check")
        return
    result = read_document(s3, check.get("result_uri"), DriftResult, "the drift check")
    if html is not None or open_report:
        save_report(s3, check.get("report_uri"), html or Path(f"drift-{config.name}.html"), open_report)
    if as_json:
        print_json({"check": check, "result": result.model_dump(mode="json")})
    else:
        _show(config.name, check, result)
    if result.drifted:
        raise typer.Exit(EXIT_DRIFTED)


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
