"""Which AWS the CLI talks to: AWS_ENDPOINT_URL if set, else a running local plane, else your AWS account."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3

from headrace.config import ConfigError, ModelConfig, load_models
from headrace.deployment import DeploymentInfo, DeploymentNotFound, DeploymentUnreachable, deployment_of
from headrace.local.aws import Clients, PlaneCredentials
from headrace.local.plane import DEFAULT_WORK_DIR, read_info
from headrace.naming import DEFAULT_STAGE, Names

from .output import EXIT_UNREACHABLE, fail


@dataclass
class Target:
    stage: str
    endpoint: str | None
    models: list[ModelConfig]
    # The running plane's key when `endpoint` is that plane; else boto3's own chain (`headrace local env`).
    credentials: PlaneCredentials | None = None

    @property
    def names(self) -> Names:
        return Names(self.stage)

    def client(self, service: str) -> Any:
        if self.endpoint and urlparse(self.endpoint).hostname in ("127.0.0.1", "localhost"):
            return Clients(self.endpoint, credentials=self.credentials).client(service)
        return boto3.client(service, endpoint_url=self.endpoint)

    def deployment(self) -> DeploymentInfo:
        """The deployment's resources, from its stacks' outputs; exits with a hint when it cannot be read."""
        try:
            return deployment_of(self.client("cloudformation"), self.names, self.models)
        except DeploymentNotFound as exc:
            fail(str(exc), code=EXIT_UNREACHABLE)
        except DeploymentUnreachable as exc:
            fail(
                str(exc),
                "start the local plane (`headrace local up --detach`) or set credentials",
                EXIT_UNREACHABLE,
            )

    def model(self, name: str) -> ModelConfig:
        for model in self.models:
            if model.name == name:
                return model
        fail(f"no model named '{name}'", f"known models: {', '.join(m.name for m in self.models)}")


def resolve(
    stage: str | None = None, models_dir: Path | None = None, work_dir: Path = DEFAULT_WORK_DIR
) -> Target:
    try:
        models = load_models(models_dir)
    except ConfigError as exc:
        fail(str(exc), "fix the field named above; every key is documented in headrace/config.py")
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    plane = read_info(work_dir)
    if not endpoint and plane:
        endpoint = plane.endpoint
    return Target(
        stage=stage or (plane.stage if plane else DEFAULT_STAGE),
        endpoint=endpoint,
        models=models,
        credentials=plane.credentials if plane and plane.endpoint == endpoint else None,
    )
