"""`headrace runs`: experiment tracking from the command line."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from headrace.runs import RunRecord, comparison_rows, find_run, list_runs

from .output import console, fail, print_json, table
from .target import Target, resolve


class _ListByDefault(TyperGroup):
    """`headrace runs [MODEL]` lists; `headrace runs compare A B` compares."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_ListByDefault,
    help=(
        "Training runs: hyperparameters, metrics, data version, outcome.\n\n"
        "Example: headrace runs churn;  headrace runs compare v1 v2 --model churn"
    ),
)

Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


def _runs(target: Target, models: list[str]) -> list[RunRecord]:
    deployment = target.deployment()
    dynamodb = target.client("dynamodb")
    return [run for model in models for run in list_runs(dynamodb, deployment.ledger_table, model)]


@app.command("list")
def list_command(
    model: Annotated[str | None, typer.Argument(help="Only this model's runs.")] = None,
    json: Json = False,
) -> None:
    """List runs, newest first.

    Example: headrace runs churn --json
    """
    target = resolve()
    models = [target.model(model).name] if model else [m.name for m in target.models]
    runs = _runs(target, models)
    if json:
        print_json([r.model_dump(mode="json") | {"outcome": r.outcome} for r in runs])
        return
    rows = [
        (
            r.model,
            r.job_name,
            r.version or "",
            r.outcome,
            (r.dataset_sha256 or "")[:12],
            _main_metric(r),
            r.started_at or "",
        )
        for r in runs
    ]
    columns = ["model", "run", "version", "outcome", "dataset", "metric", "started"]
    console.print(table("training runs", columns, rows))


def _main_metric(run: RunRecord) -> str:
    name = run.gate.get("metric") or next(iter(run.metrics), None)
    value: Any = run.metrics.get(name) if name else None
    return f"{name}={value:.4f}" if isinstance(value, float) else ""


@app.command()
def compare(
    first: Annotated[str, typer.Argument(help="A run: job name (or its unique prefix) or version (v3).")],
    second: Annotated[str, typer.Argument(help="The other run.")],
    model: Annotated[str | None, typer.Option(help="Model, when comparing versions.")] = None,
    json: Json = False,
) -> None:
    """Two runs side by side: data, every hyperparameter and metric.

    Example: headrace runs compare v1 v2 --model churn
    """
    target = resolve()
    models = [target.model(model).name] if model else [m.name for m in target.models]
    runs = _runs(target, models)
    try:
        a, b = find_run(runs, first), find_run(runs, second)
    except LookupError as exc:
        fail(str(exc), "list runs with `headrace runs`")
    if json:
        print_json({"a": a.model_dump(mode="json"), "b": b.model_dump(mode="json")})
        return
    console.print(table(f"{a.job_name} vs {b.job_name}", ["", "A", "B"], comparison_rows(a, b)))
