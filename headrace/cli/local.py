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
from headrace.local.plane import DEFAULT_WORK_DIR, LocalPlane, PlaneInfo, read_info
from headrace.local.sagemaker.containers import Compute

from .output import EXIT_BAD_INPUT, EXIT_UNREACHABLE, console, fail, print_json, table

app = typer.Typer(
    help="Run the local plane: moto's AWS on 127.0.0.1 plus Headrace's compute.", no_args_is_help=True
)

WorkDir = Annotated[Path, typer.Option(help="Where the running plane keeps its runtime files.")]


def _export_lines(info: PlaneInfo) -> str:
    return "\n".join(f"export {key}={value}" for key, value in info.environment().items())


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 0,
    state_dir: Annotated[
        Path | None, typer.Option(help="Keep AWS state here across down/up (default: state is discarded).")
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Run in the background; stop with `local down`.")
    ] = False,
    stage: Annotated[str, typer.Option(help="Deployment stage to provision.")] = "dev",
    models_dir: Annotated[
        Path | None, typer.Option(help="Model configs (default: the repo's models/).")
    ] = None,
    compute: Annotated[
        Compute,
        typer.Option(
            help="Where training jobs and endpoints run: `subprocess` (this Python), or `docker` "
            "(their images, built on a local base: see `make images`)."
        ),
    ] = "subprocess",
    work_dir: WorkDir = DEFAULT_WORK_DIR,
) -> None:
    """Start the local plane and provision it from `cdk synth`.

    Example: headrace local up --detach --state-dir .headrace/state && eval "$(headrace local env)"
    """
    try:
        if detach:
            with console.status("starting the local plane (synth + provision)…"):
                info = start_detached(port, stage, work_dir, state_dir, models_dir, compute=compute)
            console.print(f"[green]local plane running[/] on {info.endpoint} (pid {info.pid})")
            console.print(_export_lines(info), highlight=False)
            return
        running = read_info(work_dir)
        if running:
            fail(
                f"a local plane is already running on {running.endpoint}",
                "stop it with `headrace local down`",
            )
        plane = LocalPlane(
            port,
            stage,
            work_dir,
            state_dir,
            models_dir,
            progress=lambda m: console.print(f"  {m}"),
            compute=compute,
        )
        info = plane.start()
    except (PlaneError, ProvisionError, ValueError) as exc:
        fail(str(exc))
    console.print(f"[green]local plane running[/] on {info.endpoint} — Ctrl-C stops it")
    console.print(_export_lines(info), highlight=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    plane.stop()
    console.print("stopped")


@app.command()
def down(work_dir: WorkDir = DEFAULT_WORK_DIR) -> None:
    """Stop the running local plane (its state is saved first if it was started with --state-dir).

    Example: headrace local down
    """
    try:
        info = stop_detached(work_dir)
    except PlaneError as exc:
        fail(str(exc))
    if info is None:
        console.print("no local plane is running")
        return
    console.print(f"stopped the local plane on {info.endpoint}")


@app.command()
def env(work_dir: WorkDir = DEFAULT_WORK_DIR) -> None:
    """Print the `export` lines that point boto3 and the AWS CLI at the local plane.

    Example: eval "$(headrace local env)" && aws s3 ls
    """
    info = read_info(work_dir)
    if info is None:
        fail("no local plane is running", "start one with `headrace local up --detach`", EXIT_UNREACHABLE)
    typer.echo(_export_lines(info))


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
    work_dir: WorkDir = DEFAULT_WORK_DIR,
) -> None:
    """Make the running plane act now instead of waiting: fire schedules, evaluate alarms (both by default).

    Example: headrace local tick --schedules --name headrace-dev-churn-drift-check --json
    """
    info = read_info(work_dir)
    if info is None:
        fail("no local plane is running", "start one with `headrace local up --detach`", EXIT_BAD_INPUT)
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
