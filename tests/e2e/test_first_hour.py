"""A new user's first hour, from a directory outside the repo: a CSV of their own (feature names with spaces)
→ `headrace model init` → `config check` names it → `local up --detach` → `local env` from another directory
→ upload (the AWS CLI when installed, else boto3) → `status` with reasons in words → predictions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest

from headrace.waiting import wait_for

pytestmark = pytest.mark.e2e

FEATURES = 30
ROWS = 600


def user_dataset(rows: int = ROWS, seed: int = 3) -> pd.DataFrame:
    """30 float features named like the Wisconsin breast-cancer set's ("mean radius"), a M/B diagnosis."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, rows)
    columns = {
        f"mean feature {i}": (rng.normal(10 + 2.5 * label * (i % 3 == 0), 2.0, rows)).round(4)
        for i in range(FEATURES)
    }
    return pd.DataFrame(columns).assign(diagnosis=np.where(label == 1, "M", "B"))


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """The user's environment: nothing of the repo's, nothing of another plane's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HEADRACE_"))}
    return env | {"XDG_STATE_HOME": str(tmp_path / "state"), "COLUMNS": "250", "NO_COLOR": "1"}


def headrace(
    *args: str, cwd: Path, env: dict[str, str], timeout: int = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headrace.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path, home: dict[str, str]) -> Iterator[Path]:
    root = tmp_path / "my-project"
    root.mkdir()
    try:
        yield root
    finally:
        headrace("local", "down", cwd=root, env=home)


def exports(text: str) -> dict[str, str]:
    return dict(line.removeprefix("export ").split("=", 1) for line in text.splitlines() if line)


def upload(path: Path, url: str, env: dict[str, str]) -> None:
    if shutil.which("aws"):  # the AWS CLI as a user would call it (v1 or v2)
        done = subprocess.run(["aws", "s3", "cp", str(path), url], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return
    bucket, key = url.removeprefix("s3://").split("/", 1)
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    session.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).upload_file(str(path), bucket, key)


def test_a_new_user_goes_from_a_csv_to_predictions(
    project: Path, home: dict[str, str], tmp_path: Path
) -> None:
    data = user_dataset()
    data.to_csv(project / "cancer.csv", index=False)

    drafted = headrace(
        "model", "init", "cancer", "--from", "cancer.csv", "--target", "diagnosis", cwd=project, env=home
    )
    assert drafted.returncode == 0, drafted.stderr
    assert (project / "models" / "cancer.yaml").exists()

    checked = headrace("config", "check", cwd=project, env=home)
    assert checked.returncode == 0, checked.stderr
    assert "ok cancer" in checked.stdout and "ok churn" not in checked.stdout
    assert str(project / "models") in checked.stderr

    started = headrace("local", "up", "--detach", cwd=project, env=home)
    assert started.returncode == 0, started.stdout + started.stderr
    assert (project / ".headrace" / "plane.json").exists()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    printed = headrace("local", "env", cwd=elsewhere, env=home)
    assert printed.returncode == 0, printed.stderr
    plane_env = exports(printed.stdout)
    assert plane_env["AWS_DEFAULT_REGION"] and plane_env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    user = home | plane_env

    info = headrace("info", "--json", cwd=elsewhere, env=user)
    assert info.returncode == 0, info.stderr
    deployment = json.loads(info.stdout)
    cancer = next(m for m in deployment["models"] if m["name"] == "cancer")
    assert cancer["schema"]["columns"][0]["name"] == "mean feature 0"
    assert cancer["schema"]["columns"][0]["min"] is not None
    incoming = f"s3://{deployment['data_bucket']}/{cancer['incoming_prefix']}"

    bad = data.head(150).astype({"mean feature 3": object})
    bad.loc[7, "mean feature 3"] = "n/a?"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    upload(project / "cancer.csv", incoming + "cancer.csv", user)
    upload(tmp_path / "bad.csv", incoming + "bad.csv", user)

    def quarantined() -> str | None:
        done = headrace("status", cwd=elsewhere, env=user)
        assert done.returncode == 0, done.stderr
        return done.stdout if "bad.csv" in done.stdout and "cancer.csv" in done.stdout else None

    table = wait_for(quarantined, "both files in `headrace status`", timeout_s=60, interval_s=2)
    assert "in 'mean feature 3' is not float" in table  # the reason in words, not the rule id

    runtime = boto3.client(
        "sagemaker",
        endpoint_url=user["AWS_ENDPOINT_URL"],
        region_name=user["AWS_DEFAULT_REGION"],
        aws_access_key_id=user["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=user["AWS_SECRET_ACCESS_KEY"],
    )

    def serving() -> bool:
        try:
            status = runtime.describe_endpoint(EndpointName="headrace-dev-cancer")["EndpointStatus"]
        except runtime.exceptions.ClientError:
            return False
        return bool(status == "InService")

    wait_for(serving, "the cancer endpoint in service", timeout_s=150, interval_s=1)
    data.drop(columns=["diagnosis"]).head(20).to_csv(elsewhere / "rows.csv", index=False)
    predicted = headrace("predict", "cancer", "--csv", "rows.csv", "--json-output", cwd=elsewhere, env=user)
    assert predicted.returncode == 0, predicted.stderr
    result: dict[str, Any] = json.loads(predicted.stdout)
    scores = [float(p) for p in result["predictions"]]
    assert len(scores) == 20 and all(0 <= s <= 1 for s in scores)
    truth = (data["diagnosis"].head(20) == "M").to_numpy()
    assert np.mean((np.array(scores) > 0.5) == truth) >= 0.7
