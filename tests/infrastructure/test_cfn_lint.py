"""cfn-lint, offline, over every template the app synthesizes: what CloudFormation would refuse, or frowns on.

The templates are the template tests' own synth (the session's `synthesized` fixture): no second synth.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint_file

from headrace.naming import DEFAULT_STAGE, Names
from tests.support.synth import SynthesizedApp

# Each check left out, and why. Anything else cfn-lint reports (error, warning or informational) fails.
IGNORED_CHECKS = {
    # CDK makes a Lambda function or a state machine DependsOn its role as well as its role's default policy
    # (so the policy exists before the first invocation); the role is also referenced by GetAtt, which makes
    # that one entry redundant. CDK writes it by design; it costs nothing.
    "W3005": "redundant DependsOn",
}


@pytest.mark.parametrize("stack", Names(DEFAULT_STAGE).stacks)
def test_template_passes_cfn_lint(synthesized: SynthesizedApp, stack: str) -> None:
    template = Path(synthesized.assembly_dir) / f"{stack}.template.json"
    matches = lint_file(template, ManualArgs(ignore_checks=sorted(IGNORED_CHECKS)))
    report = "\n".join(f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches)
    assert not matches, f"cfn-lint on {template.name}:\n{report}"
