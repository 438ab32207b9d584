"""Which AWS the CLI talks to: AWS_ENDPOINT_URL if set, else a running local plane (project.py finds it), else
your AWS account."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

import boto3
import click
import typer

from headrace.config import ConfigError, ModelConfig, load_models
from headrace.deployment import DeploymentInfo, DeploymentNotFound, DeploymentUnreachable, deployment_of
from headrace.local.aws import Clients, PlaneCredentials
from headrace.naming import DEFAULT_STAGE, Names

from .output import EXIT_BAD_INPUT, EXIT_UNREACHABLE, errors, fail
from .project import MODELS_DIR_ENV, Found, Plane, find_plane
from .project import models_dir as project_models_dir

# The stage every command works with when it is given no --stage (default: the plane's first, else dev).
STAGE_ENV = "HEADRACE_STAGE"
# Every command's --stage option.
Stage = Annotated[
    str | None,
    typer.Option(help=f"Deployment stage (default: ${STAGE_ENV}, else the local plane's first, else dev)."),
]


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

    def acting_as(self, other: Target) -> Target:
        """This stage reached with `other`'s credentials: on a local plane whose stages live in several
        accounts, `other`'s account's key (on AWS both are boto3's one chain anyway)."""
        return replace(self, credentials=other.credentials)

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


def resolve(stage: str | None = None, models_dir: Path | None = None, work_dir: Path | None = None) -> Target:
    """The plane (or AWS) and the model configs a command works with, said on stderr.

    The models are the running plane's own (recorded by `local up`) unless named; without a plane, the
    nearest models/ from the current directory upward (project.py)."""
    plane = find_plane(work_dir or named_work_dir())
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or (plane.info.endpoint if plane else None)
    named = models_dir is not None or os.environ.get(MODELS_DIR_ENV)
    if not named and plane and plane.info.models_dir:
        source = Found(Path(plane.info.models_dir), "the running plane's")
    else:
        source = project_models_dir(models_dir)
    try:
        models = load_models(source.path)
    except ConfigError as exc:
        fail(str(exc), "fix the field named above; every key is documented in headrace/config.py")
    say_using(source, plane, endpoint)
    on_plane = plane is not None and plane.info.endpoint == endpoint
    chosen = choose_stage(stage, plane if on_plane else None)
    return Target(
        stage=chosen,
        endpoint=endpoint,
        models=models,
        # The admin key of the stage's account (stages.yaml `account:`; one key for a one-account plane).
        credentials=plane.info.credentials_for(chosen) if plane and on_plane else None,
    )


def choose_stage(explicit: str | None, plane: Plane | None) -> str:
    """--stage, else $HEADRACE_STAGE, else the plane's first stage, else dev; on a plane, a stage it
    provisioned."""
    if explicit:
        stage, how = explicit, "--stage"
    elif os.environ.get(STAGE_ENV):
        stage, how = os.environ[STAGE_ENV], f"${STAGE_ENV}"
    else:
        return plane.info.stage if plane else DEFAULT_STAGE
    try:
        Names(stage)
    except ValueError as exc:
        fail(f"{how}: {exc}", code=EXIT_BAD_INPUT)
    if plane and stage not in plane.info.stages:
        fail(
            f"{how} '{stage}': the local plane on {plane.info.endpoint} did not provision that stage "
            f"(its stages: {', '.join(plane.info.stages)})",
            f"use one of those, or start a plane with it: `headrace local up --stages "
            f"{','.join([*plane.info.stages, stage])}`",
            EXIT_BAD_INPUT,
        )
    return stage


def say_using(models: Found | None, plane: Plane | None, endpoint: str | None = None) -> None:
    """One line on stderr (stdout stays clean for --json and eval): which models and which plane."""
    parts = [f"models {models.path} ({models.how})"] if models else []
    if plane:
        parts.append(f"plane {plane.info.endpoint} ({plane.work_dir}, {plane.how})")
    elif endpoint:
        parts.append(f"AWS at {endpoint} ($AWS_ENDPOINT_URL)")
    else:
        parts.append("AWS (no local plane running; boto3's credentials and region)")
    errors.print(f"[dim]using {' · '.join(parts)}[/]", highlight=False, soft_wrap=True)


def named_work_dir() -> Path | None:
    """`headrace --work-dir DIR <command>`: the plane named for every command of this invocation."""
    context = click.get_current_context(silent=True)
    if context is None:
        return None
    value = (context.find_root().params or {}).get("work_dir")
    return Path(value) if value else None
