"""Every state machine of every stage is valid Amazon States Language (https://states-language.net/spec.html),
as asl-validator (npm, pinned in package.json) reads the spec: state types and their fields, transitions
that name existing states, paths, Retry/Catch blocks, ARNs where a Resource is.

The definitions are the synthesized ones, intrinsics resolved (tests/infrastructure/asl_definitions.py).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infrastructure.asl_definitions import StackTemplates, state_machines
from tests.support.synth import STAGE_VARIANTS, stage_variant

REPO = Path(__file__).resolve().parents[2]
ASL_VALIDATOR = REPO / "node_modules" / ".bin" / "asl-validator"
# Training, deploy and drift: at least one of each per model.
MACHINES_PER_MODEL = 3


@pytest.fixture(scope="module")
def asl_validator() -> Path:
    if not ASL_VALIDATOR.exists():
        pytest.fail(f"{ASL_VALIDATOR.relative_to(REPO)} is missing: `make tools` installs it (npm ci)")
    return ASL_VALIDATOR


def validate(
    validator: Path, definitions: dict[str, dict[str, Any]], folder: Path
) -> subprocess.CompletedProcess[str]:
    paths = []
    for name, definition in definitions.items():
        path = folder / f"{name}.asl.json"
        path.write_text(json.dumps(definition, indent=1), encoding="utf-8")
        paths += ["--json-path", str(path)]
    return subprocess.run([str(validator), *paths], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("variant", sorted(STAGE_VARIANTS))
def test_every_state_machine_of_the_stage_is_valid_amazon_states_language(
    request: pytest.FixtureRequest, variant: str, asl_validator: Path, tmp_path: Path
) -> None:
    app = stage_variant(request, variant)
    machines = state_machines(StackTemplates(data=app.data.to_json(), pipeline=app.pipeline.to_json()))
    assert len(machines) >= MACHINES_PER_MODEL * len(app.models), sorted(machines)
    result = validate(asl_validator, machines, tmp_path)
    assert result.returncode == 0, f"asl-validator on {variant}:\n{result.stdout}{result.stderr}"
    assert result.stdout.count("is valid") == len(machines), result.stdout


def test_the_validator_refuses_a_transition_to_a_state_that_does_not_exist(
    asl_validator: Path, tmp_path: Path
) -> None:
    """The check has teeth: a Next naming no state (spec: "Transitions") fails it."""
    broken = {"StartAt": "Plan", "States": {"Plan": {"Type": "Pass", "Next": "Deploy"}}}
    result = validate(asl_validator, {"broken": broken}, tmp_path)
    assert result.returncode != 0
    assert "Deploy" in result.stdout + result.stderr
