"""`headrace demo` (`make demo`): the whole loop on the local plane with a live display, then a summary and
an HTML report. The story lives in headrace/demo; this edge sets it up, runs its steps, prints and stops."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from rich.live import Live
from rich.markup import escape
from rich.table import Table

from headrace.demo import report
from headrace.demo.models import timings, write_demo_models
from headrace.demo.progress import DemoFailed, Progress, Stopwatch
from headrace.demo.record import DemoRecord
from headrace.demo.story import Story
from headrace.demo.summary import EXPLORE, TIMING_COLUMNS, timing_rows, versions
from headrace.local.control import LOG_FILE, PlaneError, stop_detached

from .output import console, table

WORK_DIR = Path(".headrace/demo")


def run_demo(rows: int, keep: bool, work_dir: Path = WORK_DIR) -> int:
    clock = Stopwatch()
    models_dir = work_dir / "models"
    model = write_demo_models(models_dir)
    record = DemoRecord(
        model=model.name,
        metric=model.gate.metric,
        rows=rows,
        started=datetime.now().astimezone(),
        models_dir=str(models_dir),
        settings=timings(model),
    )
    console.print(
        f"[dim]models: {models_dir / model.name}.yaml, a copy of models/{model.name}.yaml with "
        f"{timings(model)} (the shipped file is unchanged)[/]"
    )
    story = Story(record, model, models_dir, work_dir, clock, say=lambda text: progress.say(text))
    steps = story.steps()
    progress = Progress(record, clock, [title for title, _ in steps])
    failure: DemoFailed | None = None
    try:
        with Live(progress, console=console, refresh_per_second=4, transient=True):
            for index, (_, action) in enumerate(steps):
                progress.run(index, action)
    except DemoFailed as exc:
        failure = exc
    finally:
        story.close()
        progress.compact = False
        console.print(progress)
        record.seconds = clock()
        written = report.write(record, work_dir)
        if not keep:
            _stop(work_dir)
    if failure is not None:
        console.print(f"[bold red]demo failed:[/] {escape(str(failure))}")
        console.print(f"the plane's log: {work_dir / LOG_FILE}; what happened so far: {written}")
        return 1
    _summary(record, written, keep, work_dir)
    return 0


def _stop(work_dir: Path) -> None:
    try:
        stop_detached(work_dir)
    except PlaneError as exc:
        console.print(f"[yellow]{escape(str(exc))}[/]")


def _summary(record: DemoRecord, written: Path, keep: bool, work_dir: Path) -> None:
    console.print()
    console.print(table("versions", *versions(record)))
    console.print(table("time to…", TIMING_COLUMNS, timing_rows(record)))
    console.print(
        f"\nreport: [bold]{written}[/] (versions, live quality beside drift, rollout traffic, every step)"
    )
    if keep:
        console.print(
            f'the demo\'s plane is still up: eval "$(headrace local env --work-dir {work_dir})"; '
            f"add --models-dir {work_dir / 'models'} to headrace commands"
        )
    else:
        console.print("the demo's plane is stopped. Keep exploring:")
    commands = Table.grid(padding=(0, 2))
    commands.add_column(no_wrap=True)
    commands.add_column()
    for command, what in EXPLORE:
        commands.add_row(f"  [bold]{escape(command)}[/]", f"[dim]{escape(what)}[/]")
    console.print(commands)
