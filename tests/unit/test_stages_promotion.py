"""stages.yaml's promotion fields: where a stage is deployed and which stage it takes versions from."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from headrace.stages import StagesError, load_stage, parse_stages, promotion_targets


def test_the_shipped_prod_stage_promotes_from_dev() -> None:
    assert load_stage("prod").promote_from == "dev"
    assert [name for name, _ in promotion_targets("dev")] == ["prod"]
    assert promotion_targets("prod") == []


def test_promotion_targets_carry_the_target_accounts(tmp_path: Path) -> None:
    path = tmp_path / "stages.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "dev": {"account": "111122223333", "region": "eu-west-1"},
                "qa": {"promote_from": "dev"},
                "prod": {"promote_from": "dev", "account": "444455556666", "region": "eu-west-1"},
            }
        )
    )

    targets = promotion_targets("dev", path)

    assert [(name, s.account) for name, s in targets] == [("prod", "444455556666"), ("qa", None)]


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"account": "12345"}, "prod.account: String should match pattern"),
        ({"account": 123456789012}, "prod.account: Input should be a valid string"),
        ({"region": "Europe"}, "prod.region: String should match pattern"),
        (
            {"promote_from": "staging"},
            "prod.promote_from: no stage named 'staging' in this file (stages: dev, prod)",
        ),
        ({"promote_from": "prod"}, "prod.promote_from: a stage cannot promote from itself"),
        ({"promote_from": "Dev"}, "prod.promote_from: String should match pattern"),
    ],
)
def test_a_bad_promotion_field_is_named_with_its_stage(section: dict[str, object], problem: str) -> None:
    with pytest.raises(StagesError) as raised:
        parse_stages({"dev": {}, "prod": section}, "stages.yaml")

    assert problem in str(raised.value)


@pytest.mark.parametrize(
    "region", ["us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1", "ap-southeast-4"]
)
def test_real_region_codes_are_accepted(region: str) -> None:
    assert parse_stages({"prod": {"region": region}}, "stages.yaml")["prod"].region == region
