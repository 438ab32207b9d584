"""The plane's container processes die with it, and the next plane kills whatever a killed one left.

- Each `train` / `serve` process leads its own process group (what it forks goes with it) and, on Linux,
  gets a parent-death signal (prctl PR_SET_PDEATHSIG), so a SIGKILL of the plane kills it at once.
  Linux sends that signal when the *thread* that forked the child exits, and the plane starts containers
  from short-lived worker threads: every process is therefore forked by one thread that lives as long
  as the plane (`_Spawner`).
- Each one is recorded in `<work dir>/containers.json` (pid, process group, start time); `docker run`
  containers carry the label `headrace.plane=<work dir>`. On start, a plane kills the groups recorded there
  that are still alive (same pid *and* start time: a recycled pid is left alone) and removes the labelled
  containers, before anything else starts.
- Lambda sandboxes (lambda_runtime.py) are forked by multiprocessing's forkserver, not here: the forkserver
  is started from the same long-lived thread and both it and each sandbox arm the parent-death signal
  (`die_with_parent`), so a dead plane takes the forkserver and the forkserver its sandboxes; each sandbox
  leads its own group and is recorded here (`adopt`), so the next plane kills what its handlers started.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any, Final, TypeVar

from pydantic import BaseModel

log = logging.getLogger("headrace.local")

PROCESS_FILE: Final = "containers.json"
DOCKER_LABEL: Final = "headrace.plane"
# <linux/prctl.h>: PR_SET_PDEATHSIG = 1.
PR_SET_PDEATHSIG: Final = 1
STOP_GRACE_S: Final = 10.0
T = TypeVar("T")


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, loaded once in the plane (never between fork and exec); None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl: Callable[..., int] = libc.prctl
    return prctl


_PRCTL = _load_prctl()


def die_with_parent() -> None:
    """Ask for SIGKILL when the thread that forked this process exits (its whole process, for a plane that
    forked it from the spawner thread); nothing off Linux."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


def _dies_with(parent: int) -> Callable[[], None]:
    """The child's first act: ask for SIGKILL when its parent goes; exit if the parent already went."""

    def arm() -> None:
        die_with_parent()
        if os.getppid() != parent:  # the plane died between fork and prctl
            os._exit(1)

    return arm


class GroupProcess:
    """A container process that leads its own group: SIGTERM and SIGKILL reach everything it started."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def stdout(self) -> IO[str] | None:
        return self.process.stdout

    @property
    def returncode(self) -> int | Any:
        return self.process.returncode

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.process.wait(timeout)

    def send_signal(self, sig: int) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                with contextlib.suppress(ProcessLookupError):
                    self.process.send_signal(sig)  # not a group leader after all

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Spawner:
    """Forks every container from one thread that never exits before the plane does (see the module doc)."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="headrace-container-spawner", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            start, future = self._requests.get()
            try:
                future.set_result(start())
            except BaseException as exc:  # handed to the caller, whatever it is
                future.set_exception(exc)

    def run(self, start: Callable[[], Any]) -> Any:
        future: Future[Any] = Future()
        self._requests.put((start, future))
        return future.result()


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def _the_spawner() -> _Spawner:
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
        return _spawner


def on_spawner_thread(start: Callable[[], T]) -> T:
    """Run `start` on the thread that forks the plane's processes: what it forks may die with the plane."""
    result: T = _the_spawner().run(start)
    return result


class _Recorded(BaseModel):
    pid: int
    started: int | None = None  # the kernel's start time of the process (Linux), against pid reuse


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat, field 22); None off Linux
    or when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


class Supervisor:
    """Starts the plane's container processes supervised, and records them for the next plane.

    `work_dir` None: supervised but not recorded (tests and tools that host containers without a plane)."""

    def __init__(self, work_dir: Path | None = None) -> None:
        self._file = work_dir.resolve() / PROCESS_FILE if work_dir else None
        self.label = f"{DOCKER_LABEL}={work_dir.resolve()}" if work_dir else None
        self._live: dict[int, tuple[GroupProcess, int | None]] = {}
        # Group leaders started by others (Lambda sandboxes): pid -> start time.
        self._adopted: dict[int, int | None] = {}
        # Set by the docker launcher: its containers outlive a killed `docker run` and are removed by label.
        self.docker = False
        self._lock = threading.Lock()

    def popen(self, command: list[str], **options: Any) -> GroupProcess:
        """`subprocess.Popen(command, **options)`, in its own process group, dying with the plane."""
        parent = os.getpid()

        def start() -> GroupProcess:
            popen = subprocess.Popen(command, process_group=0, preexec_fn=_dies_with(parent), **options)
            return GroupProcess(popen)

        process: GroupProcess = _the_spawner().run(start)
        with self._lock:
            self._live = {p: v for p, v in self._live.items() if v[0].poll() is None}
            self._live[process.pid] = (process, _start_time(process.pid))
            self._write()
        return process

    def adopt(self, pid: int) -> None:
        """Record a process that leads its own group but was started elsewhere (a Lambda sandbox), so that
        the next plane kills its group if this one dies; `forget` it once it has been stopped."""
        with self._lock:
            self._adopted = {p: s for p, s in self._adopted.items() if _start_time(p) == s}
            self._adopted[pid] = _start_time(pid)
            self._write()

    def forget(self, pid: int) -> None:
        with self._lock:
            if pid in self._adopted:
                del self._adopted[pid]
                self._write()

    def _write(self) -> None:
        if self._file is None:
            return
        started = {p: s for p, (_, s) in self._live.items()} | self._adopted
        records = [_Recorded(pid=p, started=s).model_dump() for p, s in started.items()]
        temporary = self._file.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump(records, out)
        temporary.replace(self._file)

    def stop_all(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM every live container group, SIGKILL after `grace_s` (the plane is going down)."""
        with self._lock:
            live = [p for p, _ in self._live.values() if p.poll() is None]
        for process in live:
            process.terminate()
        for process in live:
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                process.kill()
        with self._lock:
            self._live.clear()
            self._write()
        if self.docker:
            self._remove_labelled_containers()

    def kill_leftovers(self) -> list[int]:
        """Kill what a previous plane in this work dir left running; the pids of the groups killed."""
        killed: list[int] = []
        if self._file is not None and self._file.exists():
            try:
                records = [_Recorded.model_validate(r) for r in json.loads(self._file.read_text())]
            except ValueError:
                records = []
            for record in records:
                if record.started is not None and _start_time(record.pid) != record.started:
                    continue  # gone, or its pid now belongs to someone else
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(record.pid, signal.SIGKILL)
                    killed.append(record.pid)
            self._file.unlink(missing_ok=True)
        if killed:
            log.warning("killed %d container process group(s) a previous plane left: %s", len(killed), killed)
        self._remove_labelled_containers()
        return killed

    def _remove_labelled_containers(self) -> None:
        if self.label is None:
            return
        try:
            listed = subprocess.run(
                ["docker", "ps", "--all", "--quiet", "--filter", f"label={self.label}"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return  # no Docker here: nothing of ours can be running in it
        if ids := listed.stdout.split():
            log.warning("removing %d container(s) a previous plane left: %s", len(ids), ids)
            subprocess.run(["docker", "rm", "--force", *ids], capture_output=True, check=False, timeout=60)
