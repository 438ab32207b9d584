"""`headrace local up` in the foreground: Ctrl-C or `local down` (SIGTERM) stops the plane and exits 0, a
second Ctrl-C does not cut the stop short, and Ctrl-C or a failure during start-up stops what start began."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from headrace.cli import local, project
from headrace.cli.main import app
from headrace.local.aws import PlaneCredentials
from headrace.local.cloudformation import ProvisionError
from headrace.local.plane_info import PlaneInfo

ENDPOINT = "http://127.0.0.1:4599"


class FakePlane:
    """Stands in for LocalPlane: `start` does what the test says; `stop` records the SIGINT disposition and
    sends itself a Ctrl-C, which must not interrupt it."""

    instances: list[FakePlane] = []

    def __init__(
        self, *args: Any, progress: Any, compute: str, stages: list[str], on_start: Any = None
    ) -> None:
        self.on_start = on_start
        self.stages = stages
        self.stopped = 0
        self.sigint_during_stop: Any = None
        FakePlane.instances.append(self)

    def start(self) -> PlaneInfo:
        if self.on_start:
            self.on_start()
        return PlaneInfo(
            pid=os.getpid(),
            port=4599,
            endpoint=ENDPOINT,
            credentials=PlaneCredentials(access_key_id="AKIAEXAMPLE", secret_access_key="secret"),
        )

    def stop(self) -> None:
        self.sigint_during_stop = signal.getsignal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)  # a second Ctrl-C, while state is saved and processes end
        self.stopped += 1


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("HEADRACE_MODELS_DIR", "HEADRACE_WORK_DIR", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    FakePlane.instances = []
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def up_in_foreground(
    monkeypatch: pytest.MonkeyPatch, on_start: Any = None, then: int | None = None
) -> Result:
    """`headrace local up` with a fake plane; `then`: the signal this process gets once it runs."""

    def plane(*args: Any, **kwargs: Any) -> FakePlane:
        return FakePlane(*args, **kwargs, on_start=on_start)

    monkeypatch.setattr(local, "LocalPlane", plane)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), then)) if then is not None else None
    if timer:
        monkeypatch.setattr(FakePlane, "start", _started_then(FakePlane.start, timer))
    try:
        return CliRunner().invoke(app, ["local", "up"])
    finally:
        if timer:
            timer.cancel()


def _started_then(start: Any, timer: threading.Timer) -> Any:
    def started(self: FakePlane) -> PlaneInfo:
        info: PlaneInfo = start(self)
        timer.start()
        return info

    return started


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "local-down"])
def test_a_running_foreground_plane_stops_cleanly(monkeypatch: pytest.MonkeyPatch, signum: int) -> None:
    before = signal.getsignal(signal.SIGINT)
    done = up_in_foreground(monkeypatch, then=signum)
    assert done.exit_code == 0, done.output
    assert f"local plane running on {ENDPOINT}" in done.stdout
    assert f"stopped the local plane on {ENDPOINT}" in done.stdout
    [plane] = FakePlane.instances
    assert plane.stages == ["dev"]  # without --stage or --stages
    assert plane.stopped == 1
    assert plane.sigint_during_stop == signal.SIG_IGN  # the second Ctrl-C was ignored
    assert signal.getsignal(signal.SIGINT) == before  # and Ctrl-C is back to what it was
    assert project.recorded_planes() == []  # forgotten: `local env` elsewhere no longer finds it


def test_ctrl_c_during_start_up_stops_what_started_and_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    done = up_in_foreground(monkeypatch, on_start=interrupted)
    assert done.exit_code == local.EXIT_INTERRUPTED == 130
    assert "interrupted during start-up: the local plane stopped" in done.stderr
    assert FakePlane.instances[0].stopped == 1
    assert FakePlane.instances[0].sigint_during_stop == signal.SIG_IGN


def test_a_failed_start_up_stops_what_started_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused() -> None:
        raise ProvisionError("headrace-dev-pipeline: CREATE_FAILED (a reason)")

    done = up_in_foreground(monkeypatch, on_start=refused)
    assert done.exit_code == 2
    assert "headrace-dev-pipeline: CREATE_FAILED (a reason)" in done.stderr
    assert FakePlane.instances[0].stopped == 1
