"""Training jobs and endpoints in their real images: SageMaker's container contract run by Docker, as
SageMaker local mode runs it (`headrace local up --compute docker`).

- training: `docker run <image> train` with the job's private tree mounted at /opt/ml, and `--network none`
  when the job asks for EnableNetworkIsolation;
- hosting: `docker run <image> serve` on the contract's port 8080, published on a loopback port of the host.

Each staged image directory is built once per plane (images.py), on the local Debian base. Containers carry
the plane's label (supervision.py): a killed plane's `docker run` dies with it but its container does not,
so the next plane (and a clean stop) removes them by that label.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import IO, Any, Final

from headrace.local.sagemaker.containers import Container, Entry
from headrace.local.sagemaker.images import ContextImages
from headrace.local.sagemaker.supervision import Supervisor

# SageMaker's hosting contract: the container answers /ping and /invocations on 8080
# (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html).
SERVING_PORT: Final = 8080
OPT_ML: Final = "/opt/ml"


class DockerContainer:
    """A `docker run` in the foreground: the CLI streams the container's output and exits with its status;
    signals go to the container by name (the CLI's own SIGKILL would leave the container running)."""

    def __init__(self, process: Container, name: str) -> None:
        self._process = process
        self.name = name

    @property
    def pid(self) -> int:
        """The `docker run` CLI's (the container's own processes are Docker's)."""
        return self._process.pid

    @property
    def stdout(self) -> IO[str] | None:
        return self._process.stdout

    @property
    def returncode(self) -> int | Any:
        return self._process.returncode

    def poll(self) -> int | None:
        return self._process.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self._process.wait(timeout)

    def terminate(self) -> None:
        self._signal("TERM")

    def kill(self) -> None:
        self._signal("KILL")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()

    def _signal(self, signal: str) -> None:
        if self._process.poll() is None:
            subprocess.run(
                ["docker", "kill", "--signal", signal, self.name], capture_output=True, check=False
            )


class DockerLauncher:
    """Runs each image built from its staged directory; `images` builds them (once per directory)."""

    def __init__(self, images: ContextImages | None = None, supervisor: Supervisor | None = None) -> None:
        self._images = images or ContextImages()
        self._supervisor = supervisor or Supervisor()
        self._supervisor.docker = True

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
        image = self._images.image_for(directory)
        name = f"headrace-{entry}-{uuid.uuid4().hex[:12]}"
        # --init: a PID 1 that forwards SIGTERM (StopTrainingJob, DeleteEndpoint) to the program.
        command = ["docker", "run", "--rm", "--init", "--name", name, "-v", f"{root.resolve()}:{OPT_ML}"]
        if self._supervisor.label:
            command += ["--label", self._supervisor.label]
        if os.getuid() != 0:  # what the container writes under /opt/ml stays the user's to delete
            command += ["--user", f"{os.getuid()}:{os.getgid()}"]
        for key, value in variables.items():
            command += ["--env", f"{key}={value}"]
        if port is not None:
            # An endpoint must be reachable for InvokeEndpoint even when its model is isolated: as in
            # SageMaker local mode, it runs on the bridge with its port 8080 published on loopback only.
            command += ["--publish", f"127.0.0.1:{port}:{SERVING_PORT}"]
        elif network_isolation:
            command += ["--network", "none"]
        command += [image, entry]
        process = self._supervisor.popen(
            command, cwd=root.resolve(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        return DockerContainer(process, name)
