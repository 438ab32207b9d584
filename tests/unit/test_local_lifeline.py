"""A plane ends with the process named by HEADRACE_LOCAL_EXIT_WITH (the suite names itself in
tests/conftest.py): a killed pytest leaves no detached plane running; without it, a plane runs until
`local down`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from headrace.local import daemon
from headrace.local.aws import PlaneCredentials
from headrace.local.lifeline import EXIT_WITH_ENV, exit_with_owner
from headrace.local.plane_info import PlaneInfo


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_the_stop_is_set_once_the_owner_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    owner = _sleeper()
    monkeypatch.setenv(EXIT_WITH_ENV, str(owner.pid))
    stop = threading.Event()
    assert exit_with_owner(stop, poll_s=0.05) == owner.pid
    assert not stop.wait(0.3)  # the owner lives: the plane goes on
    owner.kill()
    owner.wait()
    assert stop.wait(5)


def test_without_an_owner_nothing_watches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXIT_WITH_ENV, raising=False)
    stop = threading.Event()
    assert exit_with_owner(stop, poll_s=0.05) is None
    assert not stop.wait(0.2)


@pytest.mark.parametrize("value", ["abc", "-1", "0", "12.5"])
def test_a_value_that_is_not_a_pid_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(EXIT_WITH_ENV, value)
    with pytest.raises(ValueError, match=EXIT_WITH_ENV):
        exit_with_owner(threading.Event())


class _Plane:
    stopped = threading.Event()

    def __init__(self, **_: Any) -> None:
        pass

    def start(self) -> PlaneInfo:
        credentials = PlaneCredentials(access_key_id="AKIAEXAMPLE", secret_access_key="secret")
        return PlaneInfo(pid=os.getpid(), port=1, endpoint="http://127.0.0.1:1", credentials=credentials)

    def stop(self) -> None:
        _Plane.stopped.set()


def test_the_daemon_stops_its_plane_when_its_owner_exits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    owner = _sleeper()
    monkeypatch.setenv(EXIT_WITH_ENV, str(owner.pid))
    monkeypatch.setattr(daemon, "LocalPlane", _Plane)
    monkeypatch.setattr("headrace.local.lifeline.POLL_S", 0.05)
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # pytest's own handlers stay
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(daemon.main(["--work-dir", str(tmp_path)])))
    runner.start()
    runner.join(0.5)
    assert runner.is_alive() and not _Plane.stopped.is_set()
    owner.kill()
    owner.wait()
    runner.join(10)
    assert result == [0] and _Plane.stopped.is_set()
    assert f"ending with pid {owner.pid}" in capsys.readouterr().out


def test_the_daemon_refuses_a_bad_owner_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(EXIT_WITH_ENV, "pytest")
    monkeypatch.setattr(daemon, "LocalPlane", None)  # constructing a plane would fail the test
    monkeypatch.setattr(signal, "signal", lambda *_: None)
    assert daemon.main(["--work-dir", str(tmp_path)]) == 2
    assert EXIT_WITH_ENV in capsys.readouterr().err


class _SlowPlane(_Plane):
    def stop(self) -> None:
        time.sleep(0.6)


def test_a_slow_stop_writes_every_threads_stack_to_the_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    owner = _sleeper()
    monkeypatch.setenv(EXIT_WITH_ENV, str(owner.pid))
    monkeypatch.setattr(daemon, "LocalPlane", _SlowPlane)
    monkeypatch.setattr(daemon, "STACKS_AFTER_S", 0.2)
    monkeypatch.setattr("headrace.local.lifeline.POLL_S", 0.05)
    monkeypatch.setattr(signal, "signal", lambda *_: None)
    owner.kill()
    owner.wait()
    assert daemon.main(["--work-dir", str(tmp_path)]) == 0
    stacks = capfd.readouterr().err
    assert "most recent call first" in stacks and "in stop" in stacks


def test_sigusr1_writes_a_planes_stacks_and_it_runs_on(tmp_path: Path) -> None:
    script = (
        "import sys, time; from headrace.local.lifeline import dump_stacks_on_sigusr1\n"
        "dump_stacks_on_sigusr1()\n"
        "def waiting_for_a_commit():\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(30)\n"
        "waiting_for_a_commit()\n"
    )
    plane = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert plane.stdout is not None and plane.stdout.readline().strip() == "ready"
        plane.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        assert plane.poll() is None  # it runs on
    finally:
        plane.kill()
        _, stacks = plane.communicate()
    assert "waiting_for_a_commit" in stacks
