"""Cross-account promotion (stacks/promotion.py): when a stage that promotes from dev lives in another
account, dev's data stack lets that account read exactly the versions' files, decrypt them through S3 only,
and list and describe the models' registry versions; nothing when every stage shares the account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from headrace.naming import Names
from headrace.stages import load_stage, promoting_accounts
from stacks.app_builder import build_app
from tests.support.synth import SynthesizedApp, stack_template

PROD_ACCOUNT = "444455556666"


@pytest.fixture(scope="module")
def granting_dev(synthesized: SynthesizedApp, tmp_path_factory: pytest.TempPathFactory) -> Template:
    outdir = tmp_path_factory.mktemp("dev-granting.out")
    app = build_app(
        "dev", synthesized.models, str(outdir), settings=load_stage("dev"), promoting=[PROD_ACCOUNT]
    )
    return stack_template(app, Names("dev").data_stack)


def _statement(template: Template, kind: str, sid: str) -> dict[str, Any]:
    documents = [
        properties.get("PolicyDocument") or properties.get("KeyPolicy")
        for resource in template.find_resources(kind).values()
        for properties in [resource["Properties"]]
    ]
    found = [s for d in documents if d for s in d["Statement"] if s.get("Sid") == sid]
    assert len(found) == 1, f"{sid} in {kind}: {found}"
    return dict(found[0])


def _principal_accounts(statement: dict[str, Any]) -> list[str]:
    principals = statement["Principal"]["AWS"]
    return [str(p) for p in (principals if isinstance(principals, list) else [principals])]


def test_the_bucket_lets_the_prod_account_read_only_the_versions_files(
    granting_dev: Template, synthesized: SynthesizedApp
) -> None:
    statement = _statement(granting_dev, "AWS::S3::BucketPolicy", "PromotingStagesReadVersions")

    assert statement["Action"] == "s3:GetObject"
    assert PROD_ACCOUNT in str(_principal_accounts(statement))
    keys = sorted(str(r["Fn::Join"][1][-1]) for r in statement["Resource"])
    expected = sorted(
        f"/{m.name}/runs/*/{file}"
        for m in synthesized.models
        for file in ("output/*", "evaluation.json", "lineage.json")
    )
    assert keys == expected


def test_the_key_lets_the_prod_account_decrypt_only_through_s3(granting_dev: Template) -> None:
    statement = _statement(granting_dev, "AWS::KMS::Key", "PromotingStagesDecryptThroughS3")

    assert statement["Action"] == "kms:Decrypt"
    assert PROD_ACCOUNT in str(_principal_accounts(statement))
    via = statement["Condition"]["StringEquals"]["kms:ViaService"]
    assert via == {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}


def test_each_models_group_lets_the_prod_account_list_and_describe_its_versions(
    granting_dev: Template, synthesized: SynthesizedApp
) -> None:
    groups = granting_dev.find_resources("AWS::SageMaker::ModelPackageGroup")
    by_name = {g["Properties"]["ModelPackageGroupName"]: g["Properties"] for g in groups.values()}

    assert sorted(by_name) == sorted(Names("dev").model_package_group(m.name) for m in synthesized.models)
    for name, properties in by_name.items():
        statements = properties["ModelPackageGroupPolicy"]["Statement"]
        actions = sorted(a for s in statements for a in s["Action"])
        assert actions == [
            "sagemaker:DescribeModelPackage",
            "sagemaker:DescribeModelPackageGroup",
            "sagemaker:ListModelPackages",
        ]
        assert all(PROD_ACCOUNT in str(s["Principal"]) for s in statements)
        resources = str([s["Resource"] for s in statements])
        assert f"model-package-group/{name}" in resources and f"model-package/{name}/*" in resources


def test_stages_in_one_account_grant_nothing(synthesized: SynthesizedApp) -> None:
    assert synthesized.data.find_resources("AWS::SageMaker::ModelPackageGroup") == {}
    assert "PromotingStages" not in str(synthesized.data.to_json())


def test_the_stages_file_decides_which_accounts_are_granted(tmp_path: Path) -> None:
    path = tmp_path / "stages.yaml"
    path.write_text(
        "dev: {account: '111122223333'}\n"
        f"prod: {{promote_from: dev, account: '{PROD_ACCOUNT}'}}\n"
        "qa: {promote_from: dev, account: '111122223333'}\n"
        "perf: {promote_from: dev}\n"
    )

    assert promoting_accounts("dev", path) == [PROD_ACCOUNT]
    assert promoting_accounts("prod", path) == []


def _hosting_reads(template: Template) -> str:
    roles = {
        logical: resource
        for logical, resource in template.find_resources("AWS::IAM::Policy").items()
        if "HostingRole" in logical
    }
    assert roles, "no hosting role policy"
    return str(roles)


def test_prod_s_endpoints_read_the_promoted_artifacts_and_dev_s_do_not(
    synthesized: SynthesizedApp, synthesized_prod: SynthesizedApp
) -> None:
    promoted = "/churn/promoted/*/model.tar.gz"

    assert promoted in _hosting_reads(synthesized_prod.pipeline)
    assert promoted not in _hosting_reads(synthesized.pipeline)
