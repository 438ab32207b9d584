"""Where the plane's training jobs and endpoints run: `headrace local up --compute subprocess|docker`."""

from __future__ import annotations

from typing import Literal

from headrace.local.sagemaker.containers import ContainerLauncher, SubprocessLauncher
from headrace.local.sagemaker.supervision import Supervisor

Compute = Literal["subprocess", "docker"]
COMPUTES: tuple[Compute, ...] = ("subprocess", "docker")


def launcher_for(compute: Compute, supervisor: Supervisor | None = None) -> ContainerLauncher:
    """The launcher for `compute`, its processes started by `supervisor`; for docker, ValueError (saying
    why) when no daemon answers."""
    if compute == "docker":
        from headrace.local.sagemaker.docker import DockerLauncher
        from headrace.local.sagemaker.images import docker_available

        if reason := docker_available():
            raise ValueError(f"--compute docker: {reason}")
        return DockerLauncher(supervisor=supervisor)
    return SubprocessLauncher(supervisor)
