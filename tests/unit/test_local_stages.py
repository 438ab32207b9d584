"""Several stages on one local plane: `--stages` parsed and checked, the plane's stages recorded, each in its
account, and the CLI's stage chosen from --stage, else $HEADRACE_STAGE, else the plane's first stage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from headrace.cli.main import app
from headrace.cli.project import Plane
from headrace.cli.target import STAGE_ENV, choose_stage
from headrace.local.aws import LOCAL_ACCOUNT, PlaneCredentials
from headrace.local.plane import accounts_enforced, one_region, parse_stages, stage_accounts
from headrace.local.plane_info import PlaneInfo


def _info(**fields: object) -> PlaneInfo:
    return PlaneInfo.model_validate(
        {
            "pid": os.getpid(),
            "port": 4567,
            "endpoint": "http://127.0.0.1:4567",
            "credentials": PlaneCredentials(access_key_id="AKIAEXAMPLE", secret_access_key="secret"),
            **fields,
        }
    )


def test_stages_are_split_on_commas_in_order() -> None:
    assert parse_stages("dev,prod") == ["dev", "prod"]
    assert parse_stages(" prod , dev ") == ["prod", "dev"]
    assert parse_stages("qa") == ["qa"]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "names no stage"),
        (",", "names no stage"),
        ("dev,dev", "dev more than once"),
        ("dev,Prod", "'Prod'"),
    ],
)
def test_bad_stages_are_refused_naming_what_is_wrong(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_stages(text)


def test_a_plane_json_from_before_stages_lists_its_one_stage() -> None:
    assert _info(stage="qa").stages == ["qa"]
    assert _info(stage="dev", stages=["dev", "prod"]).stages == ["dev", "prod"]


def _stages_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stages.yaml"
    path.write_text(text)
    return path


def test_each_stage_is_in_its_account_and_one_without_is_in_the_first_stage_s(tmp_path: Path) -> None:
    two = _stages_file(tmp_path, "dev: {account: '111111111111'}\nprod: {account: '222222222222'}\n")
    assert stage_accounts(["dev", "prod"], two) == {"dev": "111111111111", "prod": "222222222222"}
    # prod names none: the deploying credentials' account, on the plane its first stage's.
    one = _stages_file(tmp_path, "dev: {account: '111111111111'}\nprod: {}\n")
    assert stage_accounts(["dev", "prod"], one) == {"dev": "111111111111", "prod": "111111111111"}
    assert stage_accounts(["dev", "prod"], _stages_file(tmp_path, "dev: {}\n")) == {
        "dev": LOCAL_ACCOUNT,
        "prod": LOCAL_ACCOUNT,
    }


def test_stage_accounts_read_the_stages_file_named_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _stages_file(tmp_path, "dev: {account: '111111111111'}\nprod: {account: '222222222222'}\n")
    monkeypatch.setenv("HEADRACE_STAGES_FILE", str(path))
    assert stage_accounts(["prod"]) == {"prod": "222222222222"}


def test_a_stage_in_another_region_than_the_planes_is_refused_naming_it(tmp_path: Path) -> None:
    one_region(["dev", "prod"], _stages_file(tmp_path, "dev: {region: us-east-1}\nprod: {}\n"))

    with pytest.raises(
        ValueError, match=r"prod: eu-west-1, and the local plane serves one region, us-east-1"
    ):
        one_region(["dev", "prod"], _stages_file(tmp_path, "dev: {}\nprod: {region: eu-west-1}\n"))


def test_stages_in_two_accounts_are_refused_when_iam_is_not_enforced() -> None:
    accounts = {"dev": "111111111111", "prod": "222222222222"}
    with pytest.raises(ValueError, match=r"dev: 111111111111, prod: 222222222222.*HEADRACE_LOCAL_IAM"):
        accounts_enforced(accounts, enforce_iam=False)
    accounts_enforced(accounts, enforce_iam=True)
    accounts_enforced({"dev": LOCAL_ACCOUNT, "prod": LOCAL_ACCOUNT}, enforce_iam=False)


def test_a_plane_in_two_accounts_hands_each_stage_its_account_s_key() -> None:
    prod_key = PlaneCredentials(access_key_id="AKIAPRODEXAMPLE00000", secret_access_key="prod")
    info = _info(
        stage="dev",
        stages=["dev", "prod"],
        account="111111111111",
        accounts={"dev": "111111111111", "prod": "222222222222"},
        account_credentials={"222222222222": prod_key},
    )
    assert info.credentials_for("prod") == prod_key
    assert info.credentials_for("dev") == info.credentials == info.credentials_for()
    assert info.clients("prod").account == "222222222222"
    assert info.environment("prod")["AWS_ACCESS_KEY_ID"] == "AKIAPRODEXAMPLE00000"


@pytest.fixture
def two_stages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Plane:
    monkeypatch.delenv(STAGE_ENV, raising=False)
    return Plane(_info(stage="dev", stages=["dev", "prod"]), tmp_path, "test")


def test_the_stage_is_the_option_else_the_environment_else_the_planes_first(
    two_stages: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert choose_stage(None, two_stages) == "dev"
    assert choose_stage(None, None) == "dev"
    monkeypatch.setenv(STAGE_ENV, "prod")
    assert choose_stage(None, two_stages) == "prod"
    assert choose_stage("dev", two_stages) == "dev"
    assert choose_stage(None, None) == "prod"  # against AWS, any valid stage


@pytest.mark.parametrize(("option", "environment"), [("qa", None), (None, "qa")])
def test_a_stage_the_plane_did_not_provision_is_refused_listing_its_stages(
    two_stages: Plane,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    option: str | None,
    environment: str | None,
) -> None:
    if environment:
        monkeypatch.setenv(STAGE_ENV, environment)
    with pytest.raises(typer.Exit) as exited:
        choose_stage(option, two_stages)
    assert exited.value.exit_code == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "'qa'" in said and "did not provision" in said and "(its stages: dev, prod)" in said, said
    assert ("--stage" if option else "$HEADRACE_STAGE") in said
    assert "--stages dev,prod,qa" in said


def test_a_malformed_stage_is_refused_before_any_call(
    two_stages: Plane, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit):
        choose_stage("Prod!", None)
    assert "must match" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--stage", "dev", "--stages", "dev,prod"], "give --stage or --stages, not both"),
        (["--stages", "dev,dev"], "names dev more than once"),
        (["--stage", "Prod"], "'Prod' must match"),
    ],
)
def test_local_up_refuses_bad_stages_before_starting_anything(
    args: list[str], said: str, tmp_path: Path
) -> None:
    done = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["local", "up", "--work-dir", str(tmp_path), *args])
    assert done.exit_code == 2, done.output
    assert said in " ".join(done.output.split())
    assert not (tmp_path / "plane.json").exists()
