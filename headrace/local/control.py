"""Start and stop a detached local plane (a daemon process), and find a running one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from headrace.local.plane_info import DEFAULT_WORK_DIR, PlaneInfo, process_alive, read_info
from headrace.local.sagemaker.launchers import Compute

LOG_FILE = "plane.log"
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0


class PlaneError(RuntimeError):
    pass


def start_detached(
    port: int = 0,
    stage: str = "dev",
    work_dir: Path = DEFAULT_WORK_DIR,
    state_dir: Path | None = None,
    models_dir: Path | None = None,
    timeout_s: float | None = None,
    compute: Compute = "subprocess",
    stages: Sequence[str] = (),
) -> PlaneInfo:
    """Start a plane daemon; `stages` (else just `stage`) are provisioned into it, the first its default.
    It has `timeout_s` (default: START_TIMEOUT_S per stage, each synthesized and provisioned) to be ready."""
    stages = list(stages or [stage])
    timeout_s = timeout_s or START_TIMEOUT_S * len(stages)
    running = read_info(work_dir)
    if running:
        raise PlaneError(
            f"a local plane is already running on {running.endpoint} (pid {running.pid}); "
            "stop it with `headrace local down`"
        )
    work_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "headrace.local.daemon",
        "--port",
        str(port),
        "--stages",
        ",".join(stages),
        "--work-dir",
        str(work_dir.resolve()),
    ]
    if state_dir:
        command += ["--state-dir", str(state_dir.resolve())]
    if models_dir:
        command += ["--models-dir", str(models_dir.resolve())]
    command += ["--compute", compute]
    log_path = work_dir / LOG_FILE
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = read_info(work_dir)
        if info and info.pid == process.pid:
            return info
        if process.poll() is not None:
            raise PlaneError(f"the local plane exited during start-up:\n{tail(log_path)}")
        time.sleep(0.2)
    process.terminate()
    raise PlaneError(f"the local plane did not become ready in {timeout_s:.0f}s:\n{tail(log_path)}")


def stop_detached(work_dir: Path = DEFAULT_WORK_DIR, timeout_s: float = STOP_TIMEOUT_S) -> PlaneInfo | None:
    """Stop the plane recorded in work_dir; None when none was running."""
    info = read_info(work_dir)
    if info is None:
        return None
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process_alive(info.pid):
            return info
        time.sleep(0.1)
    os.kill(info.pid, signal.SIGKILL)
    raise PlaneError(f"the local plane (pid {info.pid}) did not stop in {timeout_s:.0f}s and was killed")


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
