"""`headrace local ...`: run the whole AWS side of Headrace on this machine."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from headrace.local.cloudformation import ProvisionError
from headrace.local.control import PlaneError, start_detached, stop_detached
from headrace.local.control_server import ControlError, TickReport, TickRequest, request_tick
from headrace.local.lifeline import dump_stacks_on_sigusr1, exit_with_owner
from headrace.local.plane import LocalPlane, parse_stages
from headrace.local.plane_info import PlaneInfo, read_info
from headrace.local.sagemaker.launchers import Compute

from . import project
from .output import EXIT_BAD_INPUT, EXIT_UNREACHABLE, console, fail, print_json, table
from .project import Plane, find_plane
from .target import named_work_dir, say_using

app = typer.Typer(
    help="Run the local plane: moto's AWS on 127.0.0.1 plus Headrace's compute.", no_args_is_help=True
)

# 128 + SIGINT: what a shell reports for a command Ctrl-C ended.
EXIT_INTERRUPTED = 130

WorkDir = Annotated[
    Path | None,
    typer.Option(
        help="Where the plane keeps its runtime files (default: $HEADRACE_WORK_DIR, else the nearest "
        ".headrace/ from here upward, else the last plane `local up` started)."
    ),
]


def _plane(work_dir: Path | None, code: int = EXIT_UNREACHABLE) -> Plane:
    """The running plane named or found (project.py), said on stderr; exits when there is none."""
    plane = find_plane(work_dir or named_work_dir(), follow_endpoint=False)
    if plane is None:
        where = f" in {work_dir}" if work_dir else " here, above, or among those `local up` started"
        fail(f"no local plane is running{where}", "start one with `headrace local up --detach`", code)
    say_using(None, plane)
    return plane


def _export_lines(info: PlaneInfo, stage: str | None = None) -> str:
    """The `export` lines for `stage`'s account (default: the plane's first stage's); where the plane's
    stages live in several accounts, a comment says which account's key they export."""
    lines = [f"export {key}={value}" for key, value in info.environment(stage).items()]
    if len(set(info.accounts.values())) > 1:
        chosen = stage or info.stage
        others = ", ".join(f"{s}: {a}" for s, a in info.accounts.items() if s != chosen)
        lines.insert(
            0,
            f"# account {info.account_of(chosen)} (stage {chosen})'s key; other stages' accounts: {others}. "
            "`headrace local env --stage STAGE` exports another's",
        )
    return "\n".join(lines)


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 0,
    state_dir: Annotated[
        Path | None, typer.Option(help="Keep AWS state here across down/up (default: state is discarded).")
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Run in the background; stop with `local down`.")
    ] = False,
    stage: Annotated[
        str | None, typer.Option(help="Deployment stage to provision: the same as --stages STAGE.")
    ] = None,
    stages: Annotated[
        str | None,
        typer.Option(
            help="Stages to provision into this one plane, comma-separated (dev,prod); the first is what "
            "commands use without --stage or $HEADRACE_STAGE. Default: dev."
        ),
    ] = None,
    models_dir: Annotated[
        Path | None,
        typer.Option(help="Model configs (default: $HEADRACE_MODELS_DIR, else the nearest models/ upward)."),
    ] = None,
    compute: Annotated[
        Compute,
        typer.Option(
            help="Where training jobs and endpoints run: `subprocess` (this Python), or `docker` "
            "(their images, built on a local base: see `make images`)."
        ),
    ] = "subprocess",
    work_dir: WorkDir = None,
) -> None:
    """Start the local plane and provision it from `cdk synth`; it keeps the models directory it used, which
    `info`, `status` and the other commands then read, from any directory. In the foreground, Ctrl-C (or
    `headrace local down` from another shell) stops it and exits 0; Ctrl-C during start-up exits 130.

    Example: headrace local up --detach --stages dev,prod && eval "$(headrace local env)"
    """
    if stage and stages:
        fail("give --stage or --stages, not both", f"--stages {stages} alone provisions each of them")
    try:
        chosen = parse_stages(stages or stage or "dev")
    except ValueError as exc:
        fail(str(exc), "stage names are like dev, prod (naming.py)")
    models = project.models_dir(models_dir)
    work = project.work_dir(work_dir or named_work_dir())
    console.print(f"models {models.path} ({models.how}) · work dir {work.path} ({work.how})", highlight=False)
    try:
        if detach:
            with console.status("starting the local plane (synth + provision)…"):
                info = start_detached(
                    port, chosen[0], work.path, state_dir, models.path, compute=compute, stages=chosen
                )
            project.record(work.path)
            console.print(
                f"[green]local plane running[/] on {info.endpoint} (pid {info.pid}) · stages "
                f"{', '.join(info.stages)}"
            )
            console.print(_export_lines(info), highlight=False)
            return
        running = read_info(work.path)
        if running:
            fail(
                f"a local plane is already running on {running.endpoint}",
                "stop it with `headrace local down`",
            )
        plane = LocalPlane(
            port,
            chosen[0],
            work.path,
            state_dir,
            models.path,
            progress=lambda m: console.print(f"  {m}"),
            compute=compute,
            stages=chosen,
        )
        # `local down` (SIGTERM) stops it as Ctrl-C does; one during start-up stops it once it is up.
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        dump_stacks_on_sigusr1()
        exit_with_owner(stop)
        try:
            info = plane.start()
        except KeyboardInterrupt:
            _stop(plane)
            fail("interrupted during start-up: the local plane stopped", code=EXIT_INTERRUPTED)
        except BaseException:  # a bad config, a failed provision: what start began ends too
            _stop(plane)
            raise
    except (PlaneError, ProvisionError, ValueError) as exc:
        fail(str(exc))
    with contextlib.suppress(KeyboardInterrupt):  # from here on, Ctrl-C stops the plane
        project.record(work.path)
        console.print(f"[green]local plane running[/] on {info.endpoint} — Ctrl-C stops it")
        console.print(_export_lines(info), highlight=False)
        stop.wait()
    console.print(f"stopping the local plane on {info.endpoint}")
    _stop(plane)
    project.forget(work.path)
    console.print(f"stopped the local plane on {info.endpoint}")


def _stop(plane: LocalPlane) -> None:
    """Stop a foreground plane; a second Ctrl-C does not cut short saving its state or ending its children."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        plane.stop()
    finally:
        signal.signal(signal.SIGINT, previous)


@app.command()
def down(work_dir: WorkDir = None) -> None:
    """Stop the running local plane (its state is saved first if it was started with --state-dir).

    Example: headrace local down
    """
    plane = find_plane(work_dir or named_work_dir(), follow_endpoint=False)
    if plane is None:
        console.print("no local plane is running")
        return
    try:
        info = stop_detached(plane.work_dir)
        project.forget(plane.work_dir)
    except PlaneError as exc:
        fail(str(exc))
    if info is None:
        console.print("no local plane is running")
        return
    console.print(f"stopped the local plane on {info.endpoint}")


@app.command()
def env(
    work_dir: WorkDir = None,
    stage: Annotated[
        str | None,
        typer.Option(help="The stage whose account's key to export (default: the plane's first stage)."),
    ] = None,
) -> None:
    """Print the `export` lines (endpoint, region, the plane's key) that point boto3 and the AWS CLI at the
    local plane; works from any directory. Stages in several accounts (stages.yaml `account:`): each
    account has its own key, and --stage picks whose.

    Example: eval "$(headrace local env)" && aws s3 ls
    """
    info = _plane(work_dir).info
    if stage is not None and stage not in info.stages:
        fail(f"--stage {stage}: the plane did not provision it (its stages: {', '.join(info.stages)})")
    typer.echo(_export_lines(info, stage))


@app.command()
def tick(
    schedules: Annotated[
        bool, typer.Option("--schedules", help="Fire the schedules now (every ENABLED one, or --name).")
    ] = False,
    alarms: Annotated[bool, typer.Option("--alarms", help="Evaluate every alarm once, now.")] = False,
    name: Annotated[
        list[str] | None,
        typer.Option("--name", help="Fire only this schedule (repeatable); fires it even when DISABLED."),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")] = False,
    work_dir: WorkDir = None,
) -> None:
    """Make the running plane act now instead of waiting: fire schedules, evaluate alarms (both by default).

    Example: headrace local tick --schedules --name headrace-dev-churn-drift-check --json
    """
    info = _plane(work_dir, EXIT_BAD_INPUT).info
    if info.control_port is None:
        fail(
            f"the local plane on {info.endpoint} has no control port (it predates `tick`)",
            "restart it: `headrace local down && headrace local up --detach`",
            EXIT_BAD_INPUT,
        )
    both = not schedules and not alarms
    request = TickRequest(schedules=schedules or both, alarms=alarms or both, names=name or None)
    try:
        report = request_tick(info.control_port, request, info.credentials.secret_access_key)
    except ControlError as exc:
        fail(str(exc), code=EXIT_BAD_INPUT if exc.status == 404 else EXIT_UNREACHABLE)
    if json:
        print_json(report)
        return
    _print_tick(request, report)


def _print_tick(request: TickRequest, report: TickReport) -> None:
    if request.schedules:
        if report.schedules:
            rows = [
                (s.name, s.target.rsplit(":", 1)[-1], s.execution or f"[red]{escape(s.error or '')}[/]")
                for s in report.schedules
            ]
            console.print(table("schedules fired", ["schedule", "target", "execution"], rows))
        else:
            console.print("no schedule fired (none is ENABLED)")
    if request.alarms:
        if report.alarms:
            rows = [(a.name, f"{a.previous} → {a.current}", escape(a.reason)) for a in report.alarms]
            console.print(table("alarms changed", ["alarm", "state", "reason"], rows))
        else:
            console.print("no alarm changed state")
