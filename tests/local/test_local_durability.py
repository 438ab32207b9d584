"""The local plane loses nothing it acknowledged: state is committed before a change is answered.

The store and the committer are checked on their own; then a real plane (the daemon, with a state directory)
is SIGKILLed mid-burst and after a recorded dataset, started again, and asked for everything it answered.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import stat
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from headrace.config import load_models
from headrace.datagen import generate
from headrace.local.aws import Clients
from headrace.local.control import start_detached, stop_detached
from headrace.local.durability import Committer, changes_state, durable_requests
from headrace.local.plane_info import PlaneInfo, process_alive
from headrace.local.state_store import MANIFEST, StateMismatch, StateStore, current_versions
from headrace.naming import Outputs, execution_name
from headrace.waiting import wait_for

from .conftest import LOADED_STOP_S

REPO = Path(__file__).resolve().parents[2]


def _modes(root: Path) -> set[tuple[str, int]]:
    return {
        ("dir" if path.is_dir() else "file", stat.S_IMODE(path.stat().st_mode))
        for path in [root, *root.rglob("*")]
    }


def test_state_files_are_private_even_under_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0o000)
    try:
        store = StateStore(tmp_path / "state")
        store.put_blob(b"x" * 100)
        store.commit({"s3": b"pickled"})
    finally:
        os.umask(previous)
    assert _modes(tmp_path / "state") == {("dir", 0o700), ("file", 0o600)}


def test_state_written_by_other_versions_is_refused_with_the_versions_named(tmp_path: Path) -> None:
    StateStore(tmp_path).commit({"s3": b"pickled"})
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    manifest["versions"]["moto"] = "4.0.0"
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(
        StateMismatch, match=r"moto 4\.0\.0.*this plane runs.*moto " + current_versions()["moto"]
    ):
        StateStore(tmp_path).load()


def test_a_snapshot_from_before_versions_were_recorded_is_refused(tmp_path: Path) -> None:
    (tmp_path / "moto-state.pickle").write_bytes(b"old")
    with pytest.raises(StateMismatch, match="older Headrace"):
        StateStore(tmp_path).load()


def test_a_commit_rewrites_only_what_changed_and_leaves_no_superseded_files(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    assert store.commit({"s3": b"one", "sqs": b"queues"})
    assert not store.commit({"s3": b"one", "sqs": b"queues"})
    assert store.commit({"s3": b"two"})
    assert StateStore(tmp_path).load() == {"s3": b"two", "sqs": b"queues"}
    assert len(list((tmp_path / "services").iterdir())) == 2


def test_leftovers_of_a_crash_mid_write_are_removed_and_the_last_commit_stands(tmp_path: Path) -> None:
    StateStore(tmp_path).commit({"s3": b"one"})
    (tmp_path / f".{MANIFEST}.99.tmp").write_text("{half")
    assert StateStore(tmp_path).load() == {"s3": b"one"}
    assert not list(tmp_path.glob("*.tmp"))


def _environ(method: str, path: str = "/", body: bytes = b"", **headers: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        **headers,
    }


@pytest.mark.parametrize(
    ("environ", "changes"),
    [
        (_environ("GET", "/bucket/key"), False),
        (_environ("PUT", "/bucket/key"), True),
        (_environ("POST", HTTP_X_AMZ_TARGET="DynamoDB_20120810.GetItem"), False),
        (_environ("POST", HTTP_X_AMZ_TARGET="DynamoDB_20120810.PutItem"), True),
        (_environ("POST", HTTP_X_AMZ_TARGET="AWSStepFunctions.GetActivityTask"), True),
        (_environ("POST", "/service/GraniteServiceVersion20100801/operation/PutMetricData"), True),
        (
            _environ(
                "POST",
                body=b"Action=DescribeStacks&Version=2010-05-15",
                CONTENT_TYPE="application/x-www-form-urlencoded",
            ),
            False,
        ),
        (_environ("POST", "/2015-03-31/functions/f/invocations"), True),
    ],
)
def test_requests_that_may_change_state_are_told_from_reads(environ: dict[str, Any], changes: bool) -> None:
    assert changes_state(environ) is changes


def test_concurrent_writes_are_answered_after_a_commit_that_began_after_them() -> None:
    changes: list[int] = []
    committed_upto: list[int] = []  # for each commit, how many changes it saw

    def commit() -> None:
        committed_upto.append(len(changes))
        time.sleep(0.02)

    committer = Committer(commit, interval_s=60)
    answered: list[tuple[int, int]] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        changes.append(1)
        mine = len(changes)
        start_response("200 OK", [])
        return [str(mine).encode()]

    wrapped = durable_requests(app, committer)

    def request() -> None:
        statuses: list[str] = []
        body = b"".join(wrapped(_environ("PUT"), lambda status, headers, exc=None: statuses.append(status)))  # type: ignore[arg-type]
        answered.append((int(body), len(committed_upto)))

    committer.start()
    try:
        threads = [threading.Thread(target=request) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        committer.stop()
    assert len(answered) == 20
    for change, commits_done in answered:
        # Some commit that had finished before the answer had seen this change.
        assert any(seen >= change for seen in committed_upto[:commits_done])
    assert len(committed_upto) < 20  # group commit: concurrent writes shared commits


# A real plane, killed.


def _kill(info: PlaneInfo) -> None:
    """SIGKILL the plane's whole process group (its training and serving children too): a crash."""
    if not process_alive(info.pid):
        return
    os.killpg(info.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _burst(
    clients: Clients, bucket: str, acknowledged: dict[str, bytes], stop: threading.Event, n: int
) -> None:
    for i in range(400):
        if stop.is_set():
            return
        key = f"durability/{n}/{i}.bin"
        body = os.urandom(200_000 if i % 3 == 0 else 2_000)  # blobs and inline bodies both
        try:
            clients.s3.put_object(Bucket=bucket, Key=key, Body=body)
        except Exception:
            return  # the plane died under this request: not acknowledged
        acknowledged[key] = body


def test_a_sigkilled_plane_keeps_every_acknowledged_upload_dataset_and_run(tmp_path: Path) -> None:
    work_dir, state_dir = tmp_path / "plane", tmp_path / "state"
    acknowledged: dict[str, bytes] = {}
    info = start_detached(work_dir=work_dir, state_dir=state_dir)
    try:
        clients = info.clients()
        bucket = info.outputs["headrace-dev-data"][Outputs.DATA_BUCKET]
        stop = threading.Event()
        uploaders = [
            threading.Thread(target=_burst, args=(clients, bucket, acknowledged, stop, n)) for n in range(4)
        ]
        for uploader in uploaders:
            uploader.start()
        wait_for(lambda: len(acknowledged) >= 40, "40 acknowledged uploads", timeout_s=60)
        _kill(info)  # mid-burst: requests are in flight
        stop.set()
        for uploader in uploaders:
            uploader.join()
    finally:
        _kill(info)

    info = start_detached(work_dir=work_dir, state_dir=state_dir)
    try:
        clients = info.clients()
        for uploaded, body in acknowledged.items():
            assert clients.s3.get_object(Bucket=bucket, Key=uploaded)["Body"].read() == body, uploaded
        # An upload the pipeline takes up: its dataset is recorded and its run started, then a crash.
        csv = generate(_churn_model(), 700, seed=3).to_csv(index=False).encode()
        sha = hashlib.sha256(csv).hexdigest()
        key = "churn/incoming/durable.csv"
        version = clients.s3.put_object(Bucket=bucket, Key=key, Body=csv)["VersionId"]
        table = info.outputs["headrace-dev-data"][Outputs.LEDGER_TABLE]
        machine = info.outputs["headrace-dev-pipeline"]["TrainingStateMachineChurn"]
        wait_for(lambda: _recorded(clients, table, sha), "the dataset in the ledger", timeout_s=60)
        wait_for(lambda: _run(clients, machine, sha), "the training run", timeout_s=60)
        _kill(info)
    finally:
        _kill(info)

    info = start_detached(work_dir=work_dir, state_dir=state_dir)
    try:
        clients = info.clients()
        versions = clients.s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
        assert version in [v["VersionId"] for v in versions], (version, versions)
        assert clients.s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read() == csv
        assert _recorded(clients, table, sha)
        assert _run(clients, machine, sha)
    finally:
        stop_detached(work_dir, timeout_s=LOADED_STOP_S)
    assert _modes(state_dir) == {("dir", 0o700), ("file", 0o600)}


def _churn_model() -> Any:
    return next(m for m in load_models(REPO / "models") if m.name == "churn")


def _recorded(clients: Clients, table: str, sha: str) -> bool:
    items = clients.client("dynamodb").scan(TableName=table)["Items"]
    return sha in json.dumps(items)


def _run(clients: Clients, machine: str, sha: str) -> bool:
    executions = clients.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    return execution_name("churn", sha) in [e["name"] for e in executions]
