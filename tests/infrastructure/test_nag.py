"""cdk-nag's AwsSolutions pack over every stack: no finding is left that stacks/nag.py does not accept.

The pack runs as an aspect on an app of its own: with a nag aspect attached, `Template.from_stack` (the
template tests' app) raises. Stages differ in their policies (stages.yaml), so the pack runs over dev, prod,
and prod in a VPC with an alarm address: every switch that adds resources or permissions is on in one of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Aspects, Stack
from aws_cdk import aws_sqs as sqs
from aws_cdk.cx_api import CloudAssembly, SynthesisMessageLevel
from cdk_nag import AwsSolutionsChecks

from headrace.config import load_models
from headrace.stages import StageSettings, VpcSettings, load_stage
from stacks.app_builder import build_app
from stacks.nag import PACK
from stacks.settings import cdk_json_context
from tests.support.synth import extended_models

# With this flag on (cdk.json), an error annotation makes synth raise one ValidationFailed for the lot;
# off, the findings stay annotations on the assembly, and this test lists them all.
ANNOTATIONS_IN_VALIDATION_REPORT = "@aws-cdk/core:annotationsInValidationReport"
REPORTED = (SynthesisMessageLevel.ERROR, SynthesisMessageLevel.WARNING)


@dataclass(frozen=True)
class Finding:
    level: str
    message: str
    path: str

    def __str__(self) -> str:
        # "AwsSolutions-IAM5[Resource::*]: The IAM entity contains ..." -> the rule and the finding.
        return f"{self.level} {self.message.split(': ', 1)[0]} at {self.path}"


@dataclass(frozen=True)
class NaggedApp:
    findings: list[Finding]
    assembly_dir: Path

    def templates(self) -> Iterator[dict[str, Any]]:
        for path in sorted(self.assembly_dir.glob("*.template.json")):
            yield json.loads(path.read_text(encoding="utf-8"))


def _nag(app: App) -> list[Finding]:
    Aspects.of(app).add(AwsSolutionsChecks(reports=False))
    return _findings(app.synth())


def _findings(assembly: CloudAssembly) -> list[Finding]:
    return [
        Finding(level=message.level.value, message=str(message.entry.data), path=message.id)
        for stack in assembly.stacks
        for message in stack.messages
        if message.level in REPORTED
    ]


def _context() -> dict[str, Any]:
    return {**cdk_json_context(), ANNOTATIONS_IN_VALIDATION_REPORT: False}


def _prod_in_a_vpc() -> StageSettings:
    vpc = VpcSettings(subnet_ids=["subnet-0123456789abcdef0"], security_group_ids=["sg-0123456789abcdef0"])
    return load_stage("prod").model_copy(update={"vpc": vpc, "alarm_email": "ml-oncall@example.com"})


STAGES = {
    "dev": lambda: load_stage("dev"),
    "dev-extended": lambda: load_stage("dev"),
    "prod": lambda: load_stage("prod"),
    "prod-vpc": _prod_in_a_vpc,
}


@pytest.fixture(scope="module", params=sorted(STAGES))
def nagged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> NaggedApp:
    outdir = tmp_path_factory.mktemp("nagged.out")
    stage = request.param.split("-")[0]
    # dev-extended: a tuned and a custom-code model beside the repo's (tests/support/synth.py).
    models = extended_models() if request.param == "dev-extended" else load_models()
    app = build_app(stage, models, str(outdir), context=_context(), settings=STAGES[request.param]())
    return NaggedApp(findings=_nag(app), assembly_dir=outdir)


def test_every_stack_passes_the_aws_solutions_pack(nagged: NaggedApp) -> None:
    unaccepted = "\n".join(sorted(map(str, nagged.findings)))
    assert not nagged.findings, f"accept these in stacks/nag.py with a reason, or fix them:\n{unaccepted}"


def test_the_pack_reports_what_nothing_accepts(tmp_path: Path) -> None:
    """A queue that accepts plain HTTP fails AwsSolutions-SQS4: the pack is live in this set-up."""
    app = App(outdir=str(tmp_path), context=_context())
    stack = Stack(app, "Probe")
    sqs.Queue(stack, "Queue", encryption=sqs.QueueEncryption.SQS_MANAGED)
    findings = _nag(app)
    assert any(f.message.startswith(f"{PACK}-SQS4") and f.path == "/Probe/Queue/Resource" for f in findings)


def test_every_iam_wildcard_acceptance_names_the_wildcards_it_accepts(nagged: NaggedApp) -> None:
    iam = [
        (logical_id, rule)
        for template in nagged.templates()
        for logical_id, resource in template["Resources"].items()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
        if rule["id"] in (f"{PACK}-IAM4", f"{PACK}-IAM5")
    ]
    assert iam, "expected the IAM acceptances of stacks/nag.py in the templates' metadata"
    blanket = [logical_id for logical_id, rule in iam if not rule.get("applies_to")]
    assert not blanket, f"IAM suppressions without applies_to: {blanket}"


def test_no_finding_is_accepted_for_a_whole_stack(nagged: NaggedApp) -> None:
    assert not [t for t in nagged.templates() if "cdk_nag" in t.get("Metadata", {})]
