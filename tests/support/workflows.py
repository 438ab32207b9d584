"""The GitHub Actions workflows as data: their jobs, and the `make` and `headrace` commands their steps run.

tests/infrastructure/test_workflows.py holds each command to the Makefile and the CLI; the parsing lives
here so its own tests can show it finds what a workflow runs.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# typer (0.29) runs on its own copy of click, typer._click: a command line is parsed with that copy's classes.
from typer._click import Command as ClickCommand
from typer._click import Context
from typer._click.exceptions import UsageError
from typer.core import TyperGroup

from tests.support.synth import REPO

WORKFLOWS_DIR = REPO / ".github" / "workflows"
MAKEFILE = REPO / "Makefile"
# Shell control operators end one command: `make lint && make test`, `a | b`, `a; b`.
_OPERATORS = {"&&", "||", ";", "|", "&", "(", ")"}
# `target: prerequisites` (not `VAR := value` nor `VAR ?= value`), and `VAR := value` itself.
_RULE = re.compile(r"^(?P<targets>[A-Za-z0-9_.-]+(?:\s+[A-Za-z0-9_.-]+)*)\s*:(?![=:])", re.MULTILINE)
_VARIABLE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?::=|\?=|=|\+=)\s*(?P<value>.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Command:
    """One `make ...` or `headrace ...` invocation in a step's `run:` script."""

    workflow: str
    job: str
    program: str  # "make" or "headrace"
    args: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.workflow} job {self.job}: {self.program} {shlex.join(self.args)}"


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS_DIR.glob("*.yml"), *WORKFLOWS_DIR.glob("*.yaml")])


def load_workflow(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path}: a workflow is a mapping"
    # YAML 1.1 reads the bare key `on` as the boolean true.
    if True in document:
        document["on"] = document.pop(True)
    return document


def commands_in_script(script: str, workflow: str = "", job: str = "") -> list[Command]:
    """Every `make` and `headrace` command in a shell script; a path prefix (.venv/bin/headrace) counts."""
    found: list[Command] = []
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
        for index, token in enumerate(tokens):
            program = token.rsplit("/", 1)[-1]
            if program not in ("make", "headrace"):
                continue
            args: list[str] = []
            for arg in tokens[index + 1 :]:
                if arg in _OPERATORS:
                    break
                args.append(arg)
            found.append(Command(workflow=workflow, job=job, program=program, args=tuple(args)))
    return found


def workflow_commands() -> list[Command]:
    commands: list[Command] = []
    for path in workflow_files():
        for job_id, job in load_workflow(path).get("jobs", {}).items():
            for step in job.get("steps", []):
                if "run" in step:
                    commands += commands_in_script(step["run"], workflow=path.name, job=job_id)
    return commands


def make_targets(makefile: str) -> set[str]:
    return {target for match in _RULE.finditer(makefile) for target in match["targets"].split()} - {".PHONY"}


def make_variables(makefile: str) -> dict[str, str]:
    return {match["name"]: match["value"].strip() for match in _VARIABLE.finditer(makefile)}


def make_goals(command: Command) -> tuple[list[str], dict[str, str]]:
    """A `make` command's targets and its `VAR=value` overrides (flags are left out)."""
    targets = [arg for arg in command.args if "=" not in arg and not arg.startswith("-")]
    overrides = dict(arg.split("=", 1) for arg in command.args if "=" in arg and not arg.startswith("-"))
    return targets, overrides


def parse_cli(group: ClickCommand, args: tuple[str, ...]) -> Context:
    """Parses a `headrace` command line as the CLI would, without running it: an unknown command, an
    unknown option or a bad value raises click's UsageError (or BadParameter) naming it."""
    command = group
    parent: Context | None = None
    name = "headrace"
    remaining = list(args)
    while isinstance(command, TyperGroup):
        if not remaining or remaining[0].startswith("-"):
            raise UsageError(f"expected a command of `{name}`, got {remaining[:1] or 'nothing'}")
        parent = Context(command, info_name=name, parent=parent)
        sub = command.get_command(parent, remaining[0])
        if sub is None:
            raise UsageError(f"no such command: {name} {remaining[0]}")
        name, command, remaining = remaining[0], sub, remaining[1:]
    return command.make_context(name, remaining, parent=parent)
