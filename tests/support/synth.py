"""The CDK app synthesized once per session, in-process, as `app.py` builds it; fixtures for the
infrastructure tests (registered by tests/infrastructure/conftest.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Before aws_cdk starts jsii: Node 20's end-of-life banner would otherwise fill every test report.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from headrace.config import ModelConfig, load_model_file, load_models
from headrace.naming import DEFAULT_STAGE, Names
from headrace.stages import StageSettings, VpcSettings, load_stage
from stacks.app_builder import build_app


def stack_template(app: App, stack_name: str) -> Template:
    stack = app.node.find_child(stack_name)
    assert isinstance(stack, Stack)
    return Template.from_stack(stack)


@dataclass(frozen=True)
class SynthesizedApp:
    names: Names
    models: list[ModelConfig]
    assembly_dir: Path
    data: Template
    pipeline: Template

    def role_statements(self, role_logical_id: str) -> list[dict[str, Any]]:
        """Every statement of the pipeline stack's policies on one role."""
        policies = self.pipeline.find_resources(
            "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_logical_id}]}}
        )
        return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]

    @property
    def data_bucket_id(self) -> str:
        """The data bucket's logical ID: the data stack's bucket encrypted with the data key (the other one
        holds the data bucket's access logs, which S3 writes only to a bucket with S3-managed keys)."""
        found = [
            logical_id
            for logical_id, bucket in self.data.find_resources("AWS::S3::Bucket").items()
            if bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
                "ServerSideEncryptionByDefault"
            ]["SSEAlgorithm"]
            == "aws:kms"
        ]
        assert len(found) == 1, f"expected one KMS-encrypted bucket, found {found}"
        return found[0]

    def data_export(self, value: Any) -> str:
        """The name of the data stack's export of `value`: how the pipeline stack refers to it."""
        exports = [
            output["Export"]["Name"]
            for output in self.data.find_outputs("*").values()
            if output.get("Export") and output["Value"] == value
        ]
        assert len(exports) == 1, f"expected one export of {value}, found {exports}"
        return str(exports[0])


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    names = Names(DEFAULT_STAGE)
    models = load_models()
    assembly_dir = tmp_path_factory.mktemp("cdk.out")
    app = build_app(names.stage, models, str(assembly_dir))
    return SynthesizedApp(
        names=names,
        models=models,
        assembly_dir=assembly_dir,
        data=stack_template(app, names.data_stack),
        pipeline=stack_template(app, names.pipeline_stack),
    )


# --- every stage variant, for the conformance tests (ASL, service integrations, checkov) --------------------

EXAMPLE_VPC = VpcSettings(
    subnet_ids=["subnet-0123456789abcdef0"], security_group_ids=["sg-0123456789abcdef0"]
)
# The variants the conformance tests check, each by the session fixture that synthesizes it.
STAGE_VARIANTS = {
    "dev": "synthesized",
    "dev_extended": "synthesized_dev_extended",
    "prod": "synthesized_prod",
    "prod_in_a_vpc": "synthesized_prod_in_a_vpc",
}
REPO = Path(__file__).resolve().parents[2]
CUSTOM_MODEL = REPO / "tests" / "support" / "custom_models" / "churn-centroid" / "model.yaml"


def extended_models() -> list[ModelConfig]:
    """The repo's models plus what they do not exercise: a tuned model (its tuning states, TuningResult and
    their grants) and a custom-code model (its own images)."""
    from tests.support.tuning import TUNING, tuned

    models = load_models()
    return [*models, tuned(models[0], "churn-tuned", TUNING), load_model_file(CUSTOM_MODEL)]


def synthesize_stage(
    stage: str, settings: StageSettings, assembly_dir: Path, models: list[ModelConfig] | None = None
) -> SynthesizedApp:
    names = Names(stage)
    models = models or load_models()
    app = build_app(stage, models, str(assembly_dir), settings=settings)
    return SynthesizedApp(
        names=names,
        models=models,
        assembly_dir=assembly_dir,
        data=stack_template(app, names.data_stack),
        pipeline=stack_template(app, names.pipeline_stack),
    )


@pytest.fixture(scope="session")
def synthesized_dev_extended(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    return synthesize_stage(
        "dev", load_stage("dev"), tmp_path_factory.mktemp("devextended.out"), extended_models()
    )


@pytest.fixture(scope="session")
def synthesized_prod(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    return synthesize_stage("prod", load_stage("prod"), tmp_path_factory.mktemp("prod.out"))


@pytest.fixture(scope="session")
def synthesized_prod_in_a_vpc(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    settings = load_stage("prod").model_copy(update={"vpc": EXAMPLE_VPC})
    return synthesize_stage("prod", settings, tmp_path_factory.mktemp("prodvpc.out"))


def stage_variant(request: pytest.FixtureRequest, variant: str) -> SynthesizedApp:
    """One of STAGE_VARIANTS, synthesized once per session."""
    app: SynthesizedApp = request.getfixturevalue(STAGE_VARIANTS[variant])
    return app


def render(value: Any) -> str:
    """A string CDK assembled from intrinsics, written out: a Ref as <LogicalId> (a pseudo parameter as
    ${AWS::Name}), a GetAtt as <LogicalId.Attribute>, an Fn::Sub as its template, an import as
    <import:ExportName>."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        ref = str(value["Ref"])
        return f"${{{ref}}}" if ref.startswith("AWS::") else f"<{ref}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render(part) for part in parts)
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return str(value["Fn::Sub"])
    if "Fn::ImportValue" in value:
        return f"<import:{value['Fn::ImportValue']}>"
    raise AssertionError(f"unexpected intrinsic in a joined string: {value}")
