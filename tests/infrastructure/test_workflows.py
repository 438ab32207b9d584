"""The CI/CD workflows (.github/workflows), offline: actionlint (with shellcheck over every `run:` script)
finds nothing, every `make` target and `headrace` command they run exists, actions are pinned by commit,
and AWS is reached only through the OIDC role of each stage's protected environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer._click import ClickException

from headrace.cli.main import app
from headrace.stages import load_stages
from tests.support.synth import REPO
from tests.support.workflows import (
    MAKEFILE,
    commands_in_script,
    load_workflow,
    make_goals,
    make_targets,
    make_variables,
    parse_cli,
    workflow_commands,
    workflow_files,
)

# actionlint and shellcheck: dev dependencies (pyproject.toml), wheels that put their binaries beside python.
BIN = Path(sys.executable).parent
ACTIONLINT = BIN / "actionlint"
SHELLCHECK = BIN / "shellcheck"
# A remote action pinned to a full commit SHA, its release in a comment: `owner/repo@<sha> # v1.2.3`.
# A tag can be moved to other code; a SHA cannot (GitHub's "Security hardening for GitHub Actions").
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
CONFIGURE_AWS = "aws-actions/configure-aws-credentials"


def _actionlint(cwd: Path, *files: Path) -> list[dict[str, Any]]:
    assert ACTIONLINT.is_file(), f"{ACTIONLINT} is missing: `make venv` installs the dev dependencies"
    assert SHELLCHECK.is_file(), f"{SHELLCHECK} is missing: without it actionlint skips the run: scripts"
    # actionlint runs shellcheck when it finds it on PATH.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [str(ACTIONLINT), "-format", "{{json .}}", *map(str, files)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), f"actionlint failed to run ({done.returncode}): {done.stderr}"
    findings: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    return findings


def _jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path.name, job_id, job)
        for path in workflow_files()
        for job_id, job in load_workflow(path)["jobs"].items()
    ]


def _steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job.get("steps", []) if str(step.get("uses", "")).startswith(f"{action}@")]


def _deploys() -> dict[str, tuple[str, dict[str, Any]]]:
    """stage -> (job id, job) for every job that runs `make deploy STAGE=<stage>`."""
    deploys: dict[str, tuple[str, dict[str, Any]]] = {}
    for _, job_id, job in _jobs():
        for step in job.get("steps", []):
            for command in commands_in_script(step.get("run", "")):
                targets, overrides = make_goals(command)
                if command.program == "make" and "deploy" in targets:
                    deploys[overrides["STAGE"]] = (job_id, job)
    return deploys


def test_the_workflows_are_there() -> None:
    assert {path.name for path in workflow_files()} >= {"ci.yml", "deploy.yml"}


def test_every_workflow_passes_actionlint_and_shellcheck() -> None:
    findings = _actionlint(REPO, *workflow_files())
    report = "\n".join(
        f"{f['filepath']}:{f['line']}:{f['column']} [{f['kind']}] {f['message']}" for f in findings
    )
    assert not findings, f"actionlint:\n{report}"


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    """The checker is live: an unquoted variable (shellcheck SC2086) and an input the action lacks."""
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    broken = workflows / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo $FOO\n"
        "      - uses: actions/checkout@v4\n        with:\n          no-such-input: 1\n",
        encoding="utf-8",
    )
    kinds = {f["kind"] for f in _actionlint(tmp_path, broken)}
    assert {"shellcheck", "action"} <= kinds


def test_the_parser_finds_make_and_headrace_behind_paths_sudo_and_operators() -> None:
    script = 'make tools\nsudo env "PATH=$PATH" CI=true make test && .venv/bin/headrace smoke --stage dev # x'
    found = [(c.program, c.args) for c in commands_in_script(script)]
    assert found == [("make", ("tools",)), ("make", ("test",)), ("headrace", ("smoke", "--stage", "dev"))]


def test_every_make_target_a_workflow_runs_is_in_the_makefile() -> None:
    makefile = MAKEFILE.read_text(encoding="utf-8")
    targets, variables = make_targets(makefile), make_variables(makefile)
    commands = [c for c in workflow_commands() if c.program == "make"]
    assert {"lint", "typecheck", "test", "nag", "deploy"} <= {t for c in commands for t in make_goals(c)[0]}
    missing = [f"{c}: no target {t}" for c in commands for t in make_goals(c)[0] if t not in targets]
    unused = [
        f"{c}: {v} is not a Makefile variable"
        for c in commands
        for v in make_goals(c)[1]
        if v not in variables
    ]
    assert not missing + unused, "\n".join(missing + unused)


def test_the_makefile_parser_sees_only_rules() -> None:
    targets = make_targets("STAGE ?= dev\nX := 1\nnag: venv\n\tfor s in a; do :; done\ntest unit: venv\n")
    assert targets == {"nag", "test", "unit"}


def test_every_headrace_command_a_workflow_runs_parses_in_the_cli() -> None:
    cli = typer.main.get_command(app)
    commands = [c for c in workflow_commands() if c.program == "headrace"]
    assert commands, "the deploy workflow smokes each stage with `headrace smoke`"
    errors: list[str] = []
    for command in commands:
        try:
            parse_cli(cli, command.args)
        except ClickException as exc:
            errors.append(f"{command}: {exc.format_message()}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    "args", [("no-such-command",), ("smoke", "--no-such-option"), ("smoke", "--rows", "zero"), ("local",)]
)
def test_the_cli_parser_refuses_what_headrace_would(args: tuple[str, ...]) -> None:
    with pytest.raises(ClickException):
        parse_cli(typer.main.get_command(app), args)


def test_nag_and_deploy_cover_every_stage_of_stages_yaml() -> None:
    stages = sorted(load_stages())
    assert sorted(make_variables(MAKEFILE.read_text(encoding="utf-8"))["STAGES"].split()) == stages
    assert sorted(_deploys()) == stages


def test_each_deploy_job_runs_in_its_stage_environment_and_smokes_its_stage() -> None:
    for stage, (job_id, job) in _deploys().items():
        assert job.get("environment") == stage, f"{job_id}: environment {job.get('environment')!r}"
        smoked = [
            c.args
            for step in job["steps"]
            for c in commands_in_script(step.get("run", ""))
            if c.program == "headrace" and c.args[:1] == ("smoke",)
        ]
        assert smoked and all(args[args.index("--stage") + 1] == stage for args in smoked), (
            f"{job_id}: {smoked}"
        )


def test_a_stage_deploys_only_after_the_stage_it_promotes_from() -> None:
    deploys = _deploys()
    for stage, settings in load_stages().items():
        if settings.promote_from:
            needs = deploys[stage][1].get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            assert deploys[settings.promote_from][0] in needs, (
                f"{stage} deploys without waiting for its source"
            )


def test_deploys_wait_for_the_checks() -> None:
    workflow = load_workflow(REPO / ".github" / "workflows" / "deploy.yml")
    assert workflow["jobs"]["ci"]["uses"] == "./.github/workflows/ci.yml"
    first = [
        job for job in workflow["jobs"].values() if "steps" in job and not _upstream_deploy(job, workflow)
    ]
    assert first and all(job["needs"] == "ci" for job in first)


def _upstream_deploy(job: dict[str, Any], workflow: dict[str, Any]) -> bool:
    needs = job.get("needs", [])
    return any("steps" in workflow["jobs"][need] for need in ([needs] if isinstance(needs, str) else needs))


def test_aws_is_reached_only_through_an_oidc_role() -> None:
    """configure-aws-credentials with role-to-assume and the job's id-token: no stored keys anywhere.
    GitHub: "Configuring OpenID Connect in Amazon Web Services"; the job needs `id-token: write`."""
    text = "\n".join(path.read_text(encoding="utf-8") for path in workflow_files())
    assert "secrets." not in text and "aws-access-key-id" not in text
    for workflow, job_id, job in _jobs():
        for step in _steps_using(job, CONFIGURE_AWS):
            assert step["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}", f"{workflow} {job_id}"
            assert job["permissions"] == {"id-token": "write", "contents": "read"}, f"{workflow} {job_id}"
        if "steps" in job and not _steps_using(job, CONFIGURE_AWS):
            assert job.get("permissions", {}).get("id-token") != "write", (
                f"{workflow} {job_id}: unused id-token"
            )
    for stage, (job_id, job) in _deploys().items():
        assert _steps_using(job, CONFIGURE_AWS), f"{job_id} deploys {stage} without the OIDC role"


def test_every_action_is_pinned_to_a_commit() -> None:
    unpinned = [
        f"{path.name}:{number}: {line.strip()}"
        for path in workflow_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if (uses := re.match(r"^\s*(?:- )?uses: (?P<ref>.+)$", line))
        and not uses["ref"].startswith("./")
        and not PINNED.match(uses["ref"])
    ]
    assert not unpinned, "\n".join(unpinned)
