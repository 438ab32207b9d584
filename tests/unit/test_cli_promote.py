"""`headrace promote`'s refusals that need no plane."""

from __future__ import annotations

from typer.testing import CliRunner

from headrace.cli.main import app


def test_promoting_a_stage_into_itself_is_refused_before_anything_is_read() -> None:
    result = CliRunner().invoke(app, ["promote", "churn", "v1", "--from", "dev", "--to", "dev"])
    assert result.exit_code == 2, result.output
    assert "--from and --to both name dev" in result.output
