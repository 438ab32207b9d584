"""A tuned run as people read it: every trial in a table, the top trials side by side, and one self-contained
HTML page (inline SVG, no scripts, no network) plotting the objective per trial.

The input is the run record's `tuning` document, written by the training state machine's TuningResult step
from DescribeHyperParameterTuningJob and ListTrainingJobsForHyperParameterTuningJob: the trials keep
AWS's statuses (HyperParameterTrainingJobSummary's TrainingJobStatus and ObjectiveStatus,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_HyperParameterTrainingJobSummary.html).
"""

from __future__ import annotations

import html
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from headrace.metric_direction import ObjectiveType
from headrace.runs import RunRecord

# A trial that SageMaker stopped (early stopping, or the tuning job stopped) ends `Stopped`; its objective is
# the last one it reported (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-early-stopping.html).
STOPPED = "Stopped"
# SageMaker names a tuning job's training jobs `<tuning job>-<NNN>-<8 hex>`, NNN counting launches.
_LAUNCH = re.compile(r"-(\d{3})-[0-9a-f]{8}$")

WIDTH, HEIGHT, MARGIN = 640, 240, 48
POINT_COLOR, BEST_COLOR, STOPPED_COLOR, FAILED_COLOR, RUNNING_BEST = (
    "#8da0cb",
    "#d62728",
    "#fc8d62",
    "#999999",
    "#66a61e",
)
STYLE = (
    "body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }"
    " table { border-collapse: collapse; }"
    " td, th { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }"
    f" tr.best td {{ color: {BEST_COLOR}; font-weight: 600; }}"
    f" tr.stopped td {{ color: {STOPPED_COLOR}; }}"
    " figure { margin: 1em 0; } figcaption { font-size: 12px; }"
)


class _Record(BaseModel):
    # Read leniently: a newer writer may add fields.
    model_config = ConfigDict(extra="ignore")


class Trial(_Record):
    name: str
    status: str
    objective_status: str | None = None
    hyperparameters: dict[str, Any] = {}
    objective: float | None = None

    @property
    def stopped_early(self) -> bool:
        return self.status == STOPPED


class Objective(_Record):
    name: str
    type: ObjectiveType


class Best(_Record):
    name: str
    objective: float | None = None
    why: str = ""


class Tuning(_Record):
    """A run record's `tuning` document."""

    job_name: str
    job_arn: str | None = None
    strategy: str
    objective: Objective
    warm_start_parents: list[str] = []
    trials: list[Trial]
    best: Best | None = None

    @property
    def tuned_names(self) -> list[str]:
        return sorted({name for trial in self.trials for name in trial.hyperparameters})

    def in_launch_order(self) -> list[Trial]:
        """Trials as the tuning job launched them (its names count launches; else as recorded)."""
        numbered = [(_launch_number(t.name, i), t) for i, t in enumerate(self.trials)]
        return [trial for _, trial in sorted(numbered, key=lambda pair: pair[0])]

    def ranked(self) -> list[Trial]:
        """Trials with an objective, best first (the objective's own direction); ties in launch order."""
        scored = [t for t in self.in_launch_order() if t.objective is not None]
        sign = -1.0 if self.objective.type == "Maximize" else 1.0
        return sorted(scored, key=lambda t: sign * (t.objective or 0.0))

    def is_best(self, trial: Trial) -> bool:
        return self.best is not None and trial.name == self.best.name

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for trial in self.trials:
            counted[trial.status] = counted.get(trial.status, 0) + 1
        return counted


def _launch_number(name: str, position: int) -> tuple[int, int]:
    match = _LAUNCH.search(name)
    return (int(match.group(1)) if match else position, position)


class NotTuned(LookupError):
    """The run has no tuning document (its model trains one configuration per run)."""


class MalformedTuning(ValueError):
    """The run's tuning document is not the shape TuningResult writes."""


def tuning_of(run: RunRecord) -> Tuning:
    if not run.tuning:
        raise NotTuned(f"run {run.job_name} of {run.model} was not tuned (its model has no trainer.tuning)")
    try:
        return Tuning.model_validate(run.tuning)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise MalformedTuning(f"run {run.job_name}'s tuning record: tuning.{where}: {first['msg']}") from exc


def summary(run: RunRecord) -> str:
    """`tuned: 6 trials, best <name>` for a tuned run; empty for any other (or an unreadable record)."""
    try:
        tuning = tuning_of(run)
    except (NotTuned, MalformedTuning):
        return ""
    best = f", best {tuning.best.name}" if tuning.best else ", no best"
    return f"tuned: {len(tuning.trials)} trials{best}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def trial_columns(tuning: Tuning) -> list[str]:
    return ["#", "trial", "status", "stopped early", *tuning.tuned_names, tuning.objective.name, ""]


def trial_rows(tuning: Tuning) -> list[list[str]]:
    """One row per trial in launch order: its tuned hyperparameters, objective, and the best marked."""
    return [
        [
            str(i),
            trial.name,
            trial.status,
            "yes" if trial.stopped_early else "",
            *(_text(trial.hyperparameters.get(name)) for name in tuning.tuned_names),
            _number(trial.objective),
            "best" if tuning.is_best(trial) else "",
        ]
        for i, trial in enumerate(tuning.in_launch_order(), start=1)
    ]


def best_trials(tuning: Tuning, count: int) -> list[Trial]:
    return tuning.ranked()[:count]


def comparison_rows(tuning: Tuning, trials: list[Trial]) -> list[list[str]]:
    """The top trials side by side (columns in rank order): name, status, objective, every tuned
    hyperparameter. (The static ones are the same for every trial: `headrace runs compare` of two runs shows
    those.)"""
    rows = [
        ["trial", *(t.name for t in trials)],
        ["status", *(t.status + (" (best)" if tuning.is_best(t) else "") for t in trials)],
        [tuning.objective.name, *(_number(t.objective) for t in trials)],
    ]
    rows += [
        [f"hp.{name}", *(_text(t.hyperparameters.get(name)) for t in trials)] for name in tuning.tuned_names
    ]
    return rows


def _mark(tuning: Tuning, trial: Trial, position: int, cx: float, cy: float) -> str:
    label = html.escape(
        f"#{position} {trial.name}: {trial.status}, {tuning.objective.name}={_text(trial.objective)}"
    )
    if trial.objective is None:
        return (
            f'<line class="no-objective" x1="{cx:.1f}" x2="{cx:.1f}" y1="{HEIGHT - 6}" y2="{HEIGHT}" '
            f'stroke="{FAILED_COLOR}" stroke-width="3"><title>{label}</title></line>'
        )
    if tuning.is_best(trial):
        return (
            f'<circle class="best" cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{BEST_COLOR}">'
            f"<title>best: {label}</title></circle>"
        )
    if trial.stopped_early:
        return (
            f'<rect class="stopped" x="{cx - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8" '
            f'fill="{STOPPED_COLOR}"><title>stopped early: {label}</title></rect>'
        )
    return (
        f'<circle class="trial" cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{POINT_COLOR}">'
        f"<title>{label}</title></circle>"
    )


def _best_so_far(tuning: Tuning, trials: list[Trial]) -> list[float | None]:
    """Per trial in launch order, the best objective reported up to it (None before the first)."""
    better = max if tuning.objective.type == "Maximize" else min
    best: float | None = None
    shown: list[float | None] = []
    for trial in trials:
        if trial.objective is not None:
            best = trial.objective if best is None else better(best, trial.objective)
        shown.append(best)
    return shown


def _objective_plot(tuning: Tuning) -> str:
    """x = trial in launch order, y = its objective; the best red, the stopped early orange squares, trials
    with no objective grey ticks on the axis, and the best so far as a green step line under the marks."""
    trials = tuning.in_launch_order()
    values = [t.objective for t in trials if t.objective is not None]
    if not values:
        return "<p>no trial reported an objective</p>"
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    step = (WIDTH - 2 * MARGIN) / max(1, len(trials) - 1)

    def x(i: int) -> float:
        return MARGIN + i * step if len(trials) > 1 else WIDTH / 2

    def y(value: float) -> float:
        return 10 + (HEIGHT - 20) * (high + pad - value) / (high - low + 2 * pad)

    steps: list[str] = []
    previous: float | None = None
    for i, best in enumerate(_best_so_far(tuning, trials)):
        if best is None:
            continue
        if previous is not None and best != previous:
            steps.append(f"{x(i):.1f},{y(previous):.1f}")  # flat up to this trial, then the step
        steps.append(f"{x(i):.1f},{y(best):.1f}")
        previous = best
    axis = (
        f'<line x1="{MARGIN}" x2="{WIDTH - 10}" y1="{HEIGHT}" y2="{HEIGHT}" stroke="#444"/>'
        f'<line x1="{MARGIN}" x2="{MARGIN}" y1="10" y2="{HEIGHT}" stroke="#444"/>'
        f'<text x="{MARGIN - 4}" y="{y(high) + 4:.1f}" font-size="10" text-anchor="end">{high:.4g}</text>'
        f'<text x="{MARGIN - 4}" y="{y(low) + 4:.1f}" font-size="10" text-anchor="end">{low:.4g}</text>'
        f'<text x="{WIDTH / 2:.1f}" y="{HEIGHT + 28}" font-size="11" text-anchor="middle">'
        "trial (launch order)</text>"
    )
    line = (
        f'<polyline points="{" ".join(steps)}" fill="none" stroke="{RUNNING_BEST}" stroke-dasharray="4 3"/>'
    )
    marks = "".join(
        f'<text x="{x(i):.1f}" y="{HEIGHT + 14}" font-size="9" text-anchor="middle">{i + 1}</text>'
        + _mark(tuning, trial, i + 1, x(i), y(trial.objective if trial.objective is not None else low))
        for i, trial in enumerate(trials)
    )
    return (
        f'<svg width="{WIDTH}" height="{HEIGHT + 30}" role="img" aria-label="objective per trial">'
        f"{axis}{line}{marks}</svg>"
    )


def render_report(run: RunRecord, tuning: Tuning) -> str:
    """One page: what was tuned and how, which trial won and why, the objective per trial, every trial."""
    counts = ", ".join(f"{n} {status.lower()}" for status, n in sorted(tuning.counts().items()))
    parents = ", ".join(tuning.warm_start_parents) or "none (a cold start)"
    best = (
        f"<b>Best: {html.escape(tuning.best.name)}</b> ({tuning.objective.name} "
        f"{_number(tuning.best.objective)}): {html.escape(tuning.best.why)}."
        if tuning.best
        else "<b>No best trial</b>."
    )
    version = f"v{run.version}" if run.version is not None else "not registered"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in trial_columns(tuning))
    rows = "".join(
        f'<tr class="{"best" if cells[-1] == "best" else "stopped" if cells[3] else ""}">'
        + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells)
        + "</tr>"
        for cells in trial_rows(tuning)
    )
    title = f"Tuning: {html.escape(run.model)} {html.escape(run.job_name)}"
    direction = "higher" if tuning.objective.type == "Maximize" else "lower"
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>Tuning run - {html.escape(run.model)}</h1>\n"
        f"<p>Run {html.escape(run.job_name)}: {html.escape(run.outcome)} ({version}). Tuning job "
        f"{html.escape(tuning.job_name)}, strategy {html.escape(tuning.strategy)}, objective "
        f"{html.escape(tuning.objective.type)} {html.escape(tuning.objective.name)} ({direction} is better). "
        f"{len(tuning.trials)} trials: {html.escape(counts)}. "
        f"Warm-started from: {html.escape(parents)}.</p>\n"
        f"<p>{best}</p>\n"
        f"<figure>{_objective_plot(tuning)}<figcaption>{html.escape(tuning.objective.name)} per trial: "
        f'<span style="color:{BEST_COLOR}">● best</span> '
        f'<span style="color:{POINT_COLOR}">● completed</span> '
        f'<span style="color:{STOPPED_COLOR}">■ stopped early</span> '
        f'<span style="color:{FAILED_COLOR}">| no objective</span> '
        f'<span style="color:{RUNNING_BEST}">- - best so far</span></figcaption></figure>\n'
        f"<table><tr>{head}</tr>\n{rows}</table>\n</body></html>\n"
    )
