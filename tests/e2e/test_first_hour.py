"""A new user's first hour, from a directory outside the repo: a CSV of their own (feature names with spaces)
→ `headrace model init` → `config check` names it → `local up` in the foreground → `local env` from another
directory → upload (the AWS CLI when installed, else boto3) → `status` with reasons in words, untruncated
off a terminal → predictions → Ctrl-C → `local up --detach` on the same state: the files and the endpoint
are still there, and the README's `aws sagemaker-runtime invoke-endpoint` answers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
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
ENDPOINT = "headrace-dev-cancer"


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
    env.pop("COLUMNS", None)  # output to a pipe, as a script or `| grep` gets it: nothing may be cut
    return env | {"XDG_STATE_HOME": str(tmp_path / "state"), "NO_COLOR": "1"}


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


# Saving the state of a plane that served an endpoint, on a loaded 2-core machine beside another test worker.
STOP_S = 180


def _stopped(foreground: subprocess.Popen[str], log: Path) -> int:
    """The foreground plane's exit status once Ctrl-C stopped it; one that has not stopped in STOP_S fails
    the test with its threads' stacks (SIGUSR1, headrace/local/lifeline.py) and its log."""
    try:
        return foreground.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        foreground.send_signal(signal.SIGUSR1)
        time.sleep(2)
        pytest.fail(f"the plane did not stop in {STOP_S}s after Ctrl-C; log and stacks:\n{log.read_text()}")


def plane_env(
    elsewhere: Path,
    env: dict[str, str],
    foreground: subprocess.Popen[str] | None = None,
    log: Path | None = None,
) -> dict[str, str]:
    """`local env` from a directory that is not the project's, once the plane answers."""

    def printed() -> dict[str, str] | None:
        if foreground is not None and foreground.poll() is not None:
            said = log.read_text() if log else ""
            raise AssertionError(
                f"`local up` exited with {foreground.returncode} before it was ready:\n{said}"
            )
        done = headrace("local", "env", cwd=elsewhere, env=env)
        return exports(done.stdout) if done.returncode == 0 else None

    found = wait_for(printed, "`headrace local env` from another directory", timeout_s=180, interval_s=1)
    assert found["AWS_DEFAULT_REGION"] and found["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    return env | found


def recorded_processes(work: Path) -> dict[int, int]:
    """The plane's container processes and sandboxes (containers.json): pid -> start time."""
    records = json.loads((work / "containers.json").read_text())
    return {r["pid"]: r["started"] for r in records}


def still_running(pid: int, started: int) -> bool:
    """The same process (its start time, /proc/<pid>/stat field 22) is alive and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return stat[0] != "Z" and int(stat[19]) == started


def status_with_both(elsewhere: Path, env: dict[str, str]) -> str | None:
    done = headrace("status", cwd=elsewhere, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout if "bad.csv" in done.stdout and "cancer.csv" in done.stdout else None


def wait_serving(env: dict[str, str]) -> None:
    sagemaker = boto3.client(
        "sagemaker",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )

    def serving() -> bool:
        try:
            described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        except sagemaker.exceptions.ClientError:
            return False
        # Failed is final: say why now rather than time out.
        assert described["EndpointStatus"] != "Failed", described.get("FailureReason")
        return bool(described["EndpointStatus"] == "InService")

    wait_for(serving, "the cancer endpoint in service", timeout_s=150, interval_s=1)


def invoke_endpoint(rows: Path, out: Path, env: dict[str, str]) -> list[float]:
    """The README's call: the AWS CLI (v1 or v2: `fileb://`, no `--cli-binary-format`) when installed."""
    if shutil.which("aws"):
        command = ["aws", "sagemaker-runtime", "invoke-endpoint", "--endpoint-name", ENDPOINT]
        command += ["--content-type", "text/csv", "--body", f"fileb://{rows}", str(out)]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        answer = out.read_bytes()
    else:
        runtime = boto3.client(
            "sagemaker-runtime",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        answer = runtime.invoke_endpoint(
            EndpointName=ENDPOINT, Body=rows.read_bytes(), ContentType="text/csv"
        )["Body"].read()
    return [float(p) for p in json.loads(answer)["predictions"]]


def test_a_new_user_goes_from_a_csv_to_predictions(
    project: Path, home: dict[str, str], tmp_path: Path
) -> None:
    data = user_dataset()
    data.to_csv(project / "cancer.csv", index=False)
    truth = (data["diagnosis"].head(20) == "M").to_numpy()

    drafted = headrace(
        "model", "init", "cancer", "--from", "cancer.csv", "--target", "diagnosis", cwd=project, env=home
    )
    assert drafted.returncode == 0, drafted.stderr
    assert (project / "models" / "cancer.yaml").exists()

    checked = headrace("config", "check", cwd=project, env=home)
    assert checked.returncode == 0, checked.stderr
    assert "ok cancer" in checked.stdout and "ok churn" not in checked.stdout
    assert str(project / "models") in checked.stderr

    # `local up` in the foreground as in a terminal: its own process group, which Ctrl-C signals as a whole.
    work = project / ".headrace"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    said = tmp_path / "up.log"
    with said.open("w") as log:
        foreground = subprocess.Popen(
            [sys.executable, "-m", "headrace.cli.main", "local", "up", "--state-dir", ".headrace/state"],
            cwd=project,
            env=home,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        user = plane_env(elsewhere, home, foreground, said)
        assert json.loads((work / "plane.json").read_text())["pid"] == foreground.pid  # it is the plane

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

        table = wait_for(
            lambda: status_with_both(elsewhere, user),
            "both files in `headrace status`",
            timeout_s=60,
            interval_s=2,
        )
        # The reason in words, not the rule id, on one line: a pipe gets the table uncut.
        assert "in 'mean feature 3' is not float" in table

        wait_serving(user)
        data.drop(columns=["diagnosis"]).head(20).to_csv(elsewhere / "rows.csv", index=False)
        predicted = headrace(
            "predict", "cancer", "--csv", "rows.csv", "--json-output", cwd=elsewhere, env=user
        )
        assert predicted.returncode == 0, predicted.stderr
        result: dict[str, Any] = json.loads(predicted.stdout)
        scores = [float(p) for p in result["predictions"]]
        assert len(scores) == 20 and all(0 <= s <= 1 for s in scores)
        assert np.mean((np.array(scores) > 0.5) == truth) >= 0.7

        processes = recorded_processes(work)
        assert processes, "the endpoint's serve processes are recorded in containers.json"
        os.killpg(foreground.pid, signal.SIGINT)  # Ctrl-C
        stopped = _stopped(foreground, said)
    finally:
        if foreground.poll() is None:
            os.killpg(foreground.pid, signal.SIGKILL)
            foreground.wait()
    output = said.read_text()
    assert stopped == 0, output  # exits 0, as `local up --help` says
    assert output.index("synthesizing the CDK app") < output.index("local plane running on")  # progress shown
    assert "state saved to" in output and "stopped the local plane on" in output, output
    assert "Traceback" not in output, output
    assert not (work / "plane.json").exists()
    left = [pid for pid, started in processes.items() if still_running(pid, started)]
    assert not left, f"processes the foreground plane left running: {left}"
    gone = headrace("local", "env", cwd=elsewhere, env=home)
    assert gone.returncode == 3 and "no local plane is running" in gone.stderr, gone.stderr

    # The same project, detached, on the state the foreground plane saved.
    started = headrace("local", "up", "--detach", "--state-dir", ".headrace/state", cwd=project, env=home)
    assert started.returncode == 0, started.stdout + started.stderr
    user = plane_env(elsewhere, home)
    assert status_with_both(elsewhere, user), "the files uploaded before the restart are in `headrace status`"
    wait_serving(user)
    data.drop(columns=["diagnosis"]).head(20).to_csv(tmp_path / "rows.csv", index=False, header=False)
    scores = invoke_endpoint(tmp_path / "rows.csv", tmp_path / "out.json", user)
    assert len(scores) == 20 and np.mean((np.array(scores) > 0.5) == truth) >= 0.7
