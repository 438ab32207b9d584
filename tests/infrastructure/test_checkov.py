"""checkov, offline, over every stage's templates: every finding is either fixed or skipped in the template
with its reason (stacks/checkov.py writes the skips next to their constructs).

checkov pins boto3 against ours, so it runs from its own venv (.venv-checkov, pinned by
constraints-checkov.txt, made by `make tools`).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.synth import STAGE_VARIANTS, stage_variant

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"

Report = dict[str, Any]


@pytest.fixture(scope="module")
def checkov_report(request: pytest.FixtureRequest) -> Callable[[str], Report]:
    """checkov's JSON report on a variant's templates, run once per variant."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV.relative_to(REPO)} is missing: `make tools` installs it")
    reports: dict[str, Report] = {}

    def report(variant: str) -> Report:
        if variant not in reports:
            app = stage_variant(request, variant)
            files = [app.assembly_dir / f"{stack}.template.json" for stack in app.names.stacks]
            reports[variant] = _run_checkov(files)
        return reports[variant]

    return report


def _run_checkov(files: list[Path]) -> Report:
    # --skip-download: nothing from the vendor's platform (no network needed, none used).
    command = [str(CHECKOV), "--framework", "cloudformation", "--skip-download", "--compact", "-o", "json"]
    for file in files:
        command += ["-f", str(file)]
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert result.stdout.strip(), f"checkov printed no report:\n{result.stderr}"
    parsed = json.loads(result.stdout)
    [report] = parsed if isinstance(parsed, list) else [parsed]
    assert isinstance(report, dict)
    return report


@pytest.mark.parametrize("variant", sorted(STAGE_VARIANTS))
def test_checkov_finds_nothing_in_the_stage_that_is_not_fixed_or_accepted(
    checkov_report: Callable[[str], Report], variant: str
) -> None:
    report = checkov_report(variant)
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["resource_count"] > 50, report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("variant", sorted(STAGE_VARIANTS))
def test_every_check_the_stage_skips_says_why(checkov_report: Callable[[str], Report], variant: str) -> None:
    skipped = checkov_report(variant)["results"]["skipped_checks"]
    assert skipped, "checkov saw none of the template's skips"
    unexplained = [
        f"{c['check_id']} {c['resource']}"
        for c in skipped
        if len(str(c["check_result"].get("suppress_comment") or "")) < 40
    ]
    assert not unexplained, unexplained
