"""`headrace runs`: experiment tracking from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from headrace.runs import RunRecord, comparison_rows, find_run, list_runs
from headrace.tuning_report import (
    MalformedTuning,
    NotTuned,
    Tuning,
    best_trials,
    render_report,
    summary,
    trial_columns,
    trial_rows,
    tuning_of,
)
from headrace.tuning_report import comparison_rows as trial_comparison_rows

from .output import EXIT_FAILED, console, fail, print_json, table
from .target import Stage, Target, resolve


class _ListByDefault(TyperGroup):
    """`headrace runs [MODEL]` lists; `headrace runs compare A B` compares; `trials` and `report` show a tuned
    run's trials."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_ListByDefault,
    help=(
        "Training runs: hyperparameters, metrics, data version, outcome.\n\n"
        "Example: headrace runs churn;  headrace runs compare v1 v2 --model churn;  "
        "headrace runs trials v3 --model churn"
    ),
)

Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
Model = Annotated[str | None, typer.Option(help="Model, when naming a run by its version.")]
Run = Annotated[str, typer.Argument(help="A run: job name (or its unique prefix) or version (v3).")]


def _runs(target: Target, models: list[str]) -> list[RunRecord]:
    deployment = target.deployment()
    dynamodb = target.client("dynamodb")
    return [run for model in models for run in list_runs(dynamodb, deployment.ledger_table, model)]


def _model_runs(model: str | None, stage: str | None = None) -> list[RunRecord]:
    target = resolve(stage)
    return _runs(target, [target.model(model).name] if model else [m.name for m in target.models])


def _find(runs: list[RunRecord], reference: str) -> RunRecord:
    try:
        return find_run(runs, reference)
    except LookupError as exc:
        fail(str(exc), "list runs with `headrace runs`")


def _tuning(run: RunRecord) -> Tuning:
    try:
        return tuning_of(run)
    except NotTuned as exc:
        fail(str(exc), f"tuned runs say `tuned: N trials` in `headrace runs {run.model}`")
    except MalformedTuning as exc:
        fail(str(exc), "the run's ledger record was written by another Headrace version", EXIT_FAILED)


@app.command("list")
def list_command(
    model: Annotated[str | None, typer.Argument(help="Only this model's runs.")] = None,
    json: Json = False,
    stage: Stage = None,
) -> None:
    """List runs, newest first.

    Example: headrace runs churn --json --stage prod
    """
    runs = _model_runs(model, stage)
    if json:
        print_json([r.model_dump(mode="json") | {"outcome": r.outcome} for r in runs])
        return
    tuned = any(r.tuning for r in runs)
    rows = [
        (
            r.model,
            r.job_name,
            r.version or "",
            r.outcome,
            (r.dataset_sha256 or "")[:12],
            _main_metric(r),
            r.started_at or "",
            *([summary(r)] if tuned else []),
        )
        for r in runs
    ]
    columns = [
        "model",
        "run",
        "version",
        "outcome",
        "dataset",
        "metric",
        "started",
        *(["tuning"] if tuned else []),
    ]
    console.print(table("training runs", columns, rows))


def _main_metric(run: RunRecord) -> str:
    name = run.gate.get("metric") or next(iter(run.metrics), None)
    value: Any = run.metrics.get(name) if name else None
    return f"{name}={value:.4f}" if isinstance(value, float) else ""


@app.command()
def compare(
    first: Run,
    second: Annotated[str | None, typer.Argument(help="The other run (not with --best).")] = None,
    model: Model = None,
    best: Annotated[
        int | None,
        typer.Option(min=2, help="Compare the top N trials of one tuned run instead of two runs."),
    ] = None,
    json: Json = False,
    stage: Stage = None,
) -> None:
    """Two runs side by side: data, every hyperparameter and metric. With --best N, the N best trials of a
    tuned run side by side: status, objective and each tuned hyperparameter (the static ones are the same
    for every trial). A trial is compared within its run, so it is named by rank, not by its job name.

    Example: headrace runs compare v1 v2 --model churn;  headrace runs compare v3 --best 3 --model churn
    """
    if best is not None:
        if second is not None:
            fail(
                "--best compares the trials of one run; give one run",
                f"headrace runs compare {first} --best {best}",
            )
        _compare_trials(_find(_model_runs(model, stage), first), best, json)
        return
    if second is None:
        fail(
            "compare needs two runs, or one tuned run with --best N",
            "headrace runs compare v1 v2 --model churn",
        )
    runs = _model_runs(model, stage)
    a, b = _find(runs, first), _find(runs, second)
    if json:
        print_json({"a": a.model_dump(mode="json"), "b": b.model_dump(mode="json")})
        return
    console.print(table(f"{a.job_name} vs {b.job_name}", ["", "A", "B"], comparison_rows(a, b)))


def _compare_trials(run: RunRecord, count: int, json: bool) -> None:
    tuning = _tuning(run)
    trials = best_trials(tuning, count)
    if not trials:
        fail(f"no trial of {run.job_name} reported {tuning.objective.name}", code=EXIT_FAILED)
    if json:
        print_json(
            {
                "run": run.job_name,
                "objective": tuning.objective.model_dump(),
                "trials": [t.model_dump(mode="json") for t in trials],
            }
        )
        return
    title = (
        f"the {len(trials)} best trials of {run.job_name} ({tuning.objective.type} {tuning.objective.name})"
    )
    console.print(
        table(
            title, ["", *(f"#{i}" for i in range(1, len(trials) + 1))], trial_comparison_rows(tuning, trials)
        )
    )


@app.command()
def trials(run: Run, model: Model = None, json: Json = False, stage: Stage = None) -> None:
    """Every trial of a tuned run, in launch order: status, stopped early, each tuned hyperparameter, the
    objective; the best marked.

    Example: headrace runs trials v3 --model churn
    """
    found = _find(_model_runs(model, stage), run)
    tuning = _tuning(found)
    if json:
        print_json(tuning.model_dump(mode="json"))
        return
    title = f"{found.job_name}: {len(tuning.trials)} trials of {tuning.job_name} ({tuning.strategy})"
    console.print(table(title, trial_columns(tuning), trial_rows(tuning)))
    if tuning.best:
        console.print(f"best: {tuning.best.name} ({tuning.best.why})")


@app.command()
def report(
    run: Run,
    out: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path("tuning.html"),
    model: Model = None,
    stage: Stage = None,
) -> None:
    """An HTML report of a tuned run: the objective per trial plotted (best and stopped-early marked) and
    every trial in a table. One file, no scripts, no network.

    Example: headrace runs report v3 --model churn --out tuning.html
    """
    found = _find(_model_runs(model, stage), run)
    page = render_report(found, _tuning(found))
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write the report to {out}: {exc.strerror}", "choose another --out path")
    console.print(f"report: {out}")
