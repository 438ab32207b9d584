"""SageMaker's container contract, run locally: shared by training jobs and endpoint hosting.

An image is the directory `cdk synth` staged it from (the assembly's dockerImages). A launcher runs it:
- `SubprocessLauncher` (the default) runs the image's `train` or `serve` script with this Python, its
  `/opt/ml` tree a private directory (`HEADRACE_OPT_ML`), serving on a loopback `PORT`;
- `DockerLauncher` (docker.py, `headrace local up --compute docker`) builds the image from that directory
  and runs it as SageMaker local mode does.
Both start their processes through a `Supervisor` (supervision.py): they die with the plane.
Every path handed to a container is absolute: a foreground plane's work dir is relative to where the user
started it, and a container runs in its own /opt/ml tree.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any, Literal, Protocol
from urllib.parse import urlparse

from headrace.local.aws import Clients
from headrace.local.sagemaker.supervision import Supervisor


def split_s3(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key)."""
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


class ImageRegistry:
    """Container images by tag -> the staged directory CDK built them from (the assembly's dockerImages)."""

    def __init__(self) -> None:
        self._directories: dict[str, Path] = {}

    def add(self, tag: str, directory: Path) -> None:
        self._directories[tag] = directory.resolve()

    def resolve(self, image_uri: str) -> Path:
        tag = image_uri.rsplit(":", 1)[-1] if ":" in image_uri.rsplit("/", 1)[-1] else ""
        if tag not in self._directories:
            raise LookupError(
                f"image {image_uri} is not one of this deployment's container assets; "
                "the local plane runs only images that `cdk synth` staged"
            )
        return self._directories[tag]


Entry = Literal["train", "serve"]


class Container(Protocol):
    """A running container as the compute sees it: its output (stdout and stderr together, line-buffered
    text), its exit status, and SIGTERM / SIGKILL. `subprocess.Popen[str]` is one."""

    @property
    def pid(self) -> int: ...

    @property
    def stdout(self) -> IO[str] | None: ...

    @property
    def returncode(self) -> int | Any: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class ContainerLauncher(Protocol):
    """Starts an image's `train` or `serve` as SageMaker does (`docker run <image> train|serve`)."""

    def start(
        self,
        directory: Path,
        entry: Entry,
        root: Path,
        variables: dict[str, str],
        *,
        port: int | None = None,
        network_isolation: bool = False,
    ) -> Container:
        """`root` is the container's /opt/ml; `variables` its environment; `port`, for `serve`, the
        loopback port the caller reaches it on; `network_isolation` as EnableNetworkIsolation asks."""
        ...


class SubprocessLauncher:
    """The image's program as a process of this Python: no image build, no Docker, no isolation."""

    def __init__(self, supervisor: Supervisor | None = None) -> None:
        self._supervisor = supervisor or Supervisor()

    def start(
        self,
        directory: Path,
        entry: Entry,
        root: Path,
        variables: dict[str, str],
        *,
        port: int | None = None,
        network_isolation: bool = False,
    ) -> Container:
        served = {"HEADRACE_SERVE_HOST": "127.0.0.1", "PORT": str(port)} if port is not None else {}
        return start_container(directory, entry, root, {**variables, **served}, self._supervisor)


def start_container(
    directory: Path,
    entry: Entry,
    root: Path,
    variables: dict[str, str],
    supervisor: Supervisor | None = None,
) -> Container:
    """The image's `train` or `serve` program as SageMaker starts it (`<program> train|serve`), with `root`
    as its /opt/ml; its output (stdout and stderr together) is the process's line-buffered stdout."""
    # The process runs in `root`: a relative path would be read from there, not from the plane's cwd.
    directory, root = directory.resolve(), root.resolve()
    environment = {
        **os.environ,
        **variables,
        "HEADRACE_OPT_ML": str(root),
        "PYTHONPATH": os.pathsep.join([str(directory), os.environ.get("PYTHONPATH", "")]),
        "PYTHONUNBUFFERED": "1",
        # On a shared laptop, OpenMP's busy-waiting threads slow XGBoost 5-10x when the plane is busy.
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    return (supervisor or Supervisor()).popen(
        [sys.executable, str(directory / entry), entry],
        cwd=root,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_container(process: Container | None, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it is still running after `grace_s`."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()


class LogStream:
    """Batches a container process's lines into CloudWatch Logs put_log_events calls."""

    def __init__(self, clients: Clients, group: str, stream: str) -> None:
        self._logs = clients.client("logs")
        self._group, self._stream = group, stream
        self._pending: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
            self._logs.create_log_group(logGroupName=group)
        self._logs.create_log_stream(logGroupName=group, logStreamName=stream)

    def write(self, line: str) -> None:
        self._pending.append({"timestamp": int(time.time() * 1000), "message": line or " "})
        if len(self._pending) >= 200 or time.monotonic() - self._last_flush > 1.0:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._logs.put_log_events(
                logGroupName=self._group, logStreamName=self._stream, logEvents=self._pending
            )
        self._pending, self._last_flush = [], time.monotonic()
