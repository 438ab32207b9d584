"""The plane's container processes are supervised (issue 13, findings 4, 5 and 8).

- A SIGKILL of the process that runs the plane's compute kills its train and serve processes at once (a
  parent-death signal, even for processes started from short-lived threads), and the next plane in the same
  work dir kills what is left of their process groups before it starts.
- A serve process that dies is noticed: the variant shows its instance being replaced, the calls that meet
  it answer 503 and count in Invocations and Invocation5XXErrors, a 5XX alarm on them fires; a container that
  keeps dying fails the endpoint with a FailureReason.
- Containers started with relative paths (a foreground plane's default `.headrace`) run from any cwd.

Stub containers stand in for the real images, as in test_local_hosting.py.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from headrace.local.aws import LOCAL_ACCOUNT, LOCAL_REGION, Clients
from headrace.local.cloudwatch.evaluator import AlarmEvaluator
from headrace.local.network import free_port
from headrace.local.sagemaker.containers import ImageRegistry, SubprocessLauncher
from headrace.local.sagemaker.hosting import EndpointHosting, served
from headrace.local.sagemaker.supervision import Supervisor
from headrace.local.seams.cloudwatch import MotoCloudWatch
from headrace.local.seams.sagemaker import MotoSageMakerRecords, hosting_installed
from headrace.waiting import wait_for

ROLE = f"arn:aws:iam::{LOCAL_ACCOUNT}:role/hosting"
BUCKET = "models"
# Each start is counted in its /opt/ml (kept when SageMaker replaces the instance): a start past
# STARTS_ALLOWED exits before /ping; a replacement waits RESTART_DELAY_S first, so that the replacement is
# seen from outside; the body `crash` kills the process mid-request.
FLAKY_SERVE = """
import json, os, pathlib, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = pathlib.Path(os.environ["HEADRACE_OPT_ML"])
STARTS = ROOT / "starts"
START = int(STARTS.read_text()) + 1 if STARTS.exists() else 1
STARTS.write_text(str(START))
if START > int(os.environ["STARTS_ALLOWED"]):
    print("cannot load the model", flush=True)
    sys.exit(3)
if START > 1:
    time.sleep(float(os.environ["RESTART_DELAY_S"]))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.answer(200, b"{}")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if body == b"crash":
            os._exit(1)
        self.answer(200, json.dumps({"start": START}).encode())

    def answer(self, status, payload):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


ThreadingHTTPServer((os.environ["HEADRACE_SERVE_HOST"], int(os.environ["PORT"])), Handler).serve_forever()
"""
# A container that forks a helper (as a server with workers would), records both pids, and runs on.
FORKING = """
import os, pathlib, subprocess, sys, time
root = pathlib.Path(os.environ["HEADRACE_OPT_ML"])
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
(root / "pids.json").write_text(f'{{"self": {os.getpid()}, "helper": {helper.pid}}}')
time.sleep(600)
"""
# The plane's compute in a process of its own: containers started from short-lived worker threads, as
# hosting and training start them, then nothing until it is killed.
PLANE = """
import sys, threading, time
from pathlib import Path
from headrace.local.sagemaker.containers import SubprocessLauncher
from headrace.local.sagemaker.supervision import Supervisor

work, image = Path(sys.argv[1]), Path(sys.argv[2])
launcher = SubprocessLauncher(Supervisor(work))

def start(entry):
    (work / entry).mkdir(parents=True)
    launcher.start(image, entry, work / entry, {}, port=0 if entry == "serve" else None)

threads = [threading.Thread(target=start, args=(entry,)) for entry in ("train", "serve")]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("started", flush=True)
time.sleep(600)
"""
# A plane's Lambda runtime in a process of its own: one function invoked twice from worker threads, one
# invocation done (its sandbox warm and idle), the other busy in a handler that forked a helper, then killed.
LAMBDA_PLANE = """
import io, sys, threading, time, zipfile
from pathlib import Path
from headrace.local.lambda_runtime import FunctionSpec, HandlerRuntime
from headrace.local.sagemaker.supervision import Supervisor

HANDLER = '''
import json, os, pathlib, subprocess, sys, time
def handler(event, context):
    if event.get("busy"):
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        pathlib.Path(event["pids"]).write_text(json.dumps({"self": os.getpid(), "helper": helper.pid}))
        time.sleep(600)
    return os.getpid()
'''
work = Path(sys.argv[1])
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w") as archive:
    archive.writestr("handler.py", HANDLER)
runtime = HandlerRuntime(work / "lambda", {}, supervisor=Supervisor(work))
spec = FunctionSpec(name="f", arn="arn:aws:lambda:us-east-1:123456789012:function:f",
                    handler="handler.handler", code_sha256="sha", environment={}, timeout_s=900)
idle = []
quick = threading.Thread(target=lambda: idle.append(runtime.invoke(spec, buffer.getvalue(), {}).payload))
quick.start()
quick.join()
busy = {"busy": True, "pids": str(work / "busy.json")}
threading.Thread(target=runtime.invoke, args=(spec, buffer.getvalue(), busy), daemon=True).start()
while not (work / "busy.json").exists() or not (work / "busy.json").read_text():
    time.sleep(0.05)
print(idle[0], flush=True)
time.sleep(600)
"""
TRAIN = """
import os, pathlib
root = pathlib.Path(os.environ["HEADRACE_OPT_ML"])
(root / "model").mkdir(parents=True, exist_ok=True)
(root / "model" / "model.txt").write_text("trained in " + os.getcwd())
"""


def alive(pid: int) -> bool:
    """Running (a zombie no one reaped yet is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _image(directory: Path, **entries: str) -> Path:
    directory.mkdir(parents=True)
    for entry, code in entries.items():
        (directory / entry).write_text(code)
    return directory


# --- a killed plane leaves no container process ---------------------------------------------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_sigkilled_plane_leaves_no_train_or_serve_process(tmp_path: Path) -> None:
    image = _image(tmp_path / "image", train=FORKING, serve=FORKING)
    work = tmp_path / "work"
    work.mkdir()
    plane = subprocess.Popen(
        [sys.executable, "-c", PLANE, str(work), str(image)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert plane.stdout is not None and plane.stdout.readline().strip() == "started"
        pid_files = [work / "train" / "pids.json", work / "serve" / "pids.json"]
        wait_for(lambda: all(f.exists() and f.read_text() for f in pid_files), "both containers", 30)
        containers = [json.loads(f.read_text()) for f in pid_files]
        assert all(alive(c["self"]) and alive(c["helper"]) for c in containers)
    finally:
        plane.send_signal(signal.SIGKILL)
        plane.wait()

    # The train and serve processes die with the plane, even though the threads that started them had ended.
    wait_for(lambda: not any(alive(c["self"]) for c in containers), "the containers to die", 10)
    # What they forked is in their process group: the next plane in this work dir kills it before starting.
    assert sorted(Supervisor(work).kill_leftovers()) == sorted(c["self"] for c in containers)
    wait_for(lambda: not any(alive(c["helper"]) for c in containers), "their helpers to die", 10)
    assert not (work / "containers.json").exists()


def _descendants(pid: int) -> set[int]:
    """Every process below `pid` now (Linux's /proc/<pid>/task/*/children)."""
    found: set[int] = set()
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in map(int, children.read_text().split()):
            found |= {child} | _descendants(child)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_sigkilled_plane_leaves_no_lambda_forkserver_or_sandbox(tmp_path: Path) -> None:
    command = [sys.executable, "-c", LAMBDA_PLANE, str(tmp_path)]
    plane = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert plane.stdout is not None
        idle_sandbox = int(plane.stdout.readline())  # the busy one is running by now
        busy = json.loads((tmp_path / "busy.json").read_text())
        # The forkserver, both sandboxes (and the helper, and multiprocessing's resource tracker).
        processes = _descendants(plane.pid)
        assert {idle_sandbox, busy["self"], busy["helper"]} <= processes
        assert len(processes) >= 4
        recorded = {r["pid"] for r in json.loads((tmp_path / "containers.json").read_text())}
        assert recorded == {idle_sandbox, busy["self"]}
    finally:
        plane.send_signal(signal.SIGKILL)
        plane.wait()

    # The forkserver dies with the plane, and the sandboxes with it, busy or idle.
    survivors = processes - {busy["helper"]}
    wait_for(lambda: not any(alive(p) for p in survivors), "the forkserver and the sandboxes to die", 10)
    # What a handler forked is in its sandbox's process group: the next plane kills it before starting.
    assert Supervisor(tmp_path).kill_leftovers() == [busy["self"]]
    wait_for(lambda: not alive(busy["helper"]), "the handler's helper to die", 10)


def test_the_next_plane_leaves_a_recycled_pid_alone(tmp_path: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        # A record of the stranger's pid with another start time: it is not the container that was recorded.
        (tmp_path / "containers.json").write_text(json.dumps([{"pid": stranger.pid, "started": 1}]))
        assert Supervisor(tmp_path).kill_leftovers() == []
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_container_started_with_relative_paths_runs_from_any_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _image(tmp_path / ".headrace" / "cdk.out" / "asset.train", train=TRAIN)
    (tmp_path / ".headrace" / "training" / "job").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    process = SubprocessLauncher().start(
        Path(".headrace/cdk.out/asset.train"), "train", Path(".headrace/training/job"), {}
    )
    assert process.stdout is not None
    output = process.stdout.read()
    assert process.wait() == 0, output
    trained = tmp_path / ".headrace" / "training" / "job" / "model" / "model.txt"
    assert trained.read_text() == f"trained in {tmp_path / '.headrace' / 'training' / 'job'}"


# --- a dead serve process shows ---------------------------------------------------------------------------
@dataclass
class Hosting:
    clients: Clients
    hosting: EndpointHosting
    sagemaker: Any
    runtime: Any
    cloudwatch: Any

    def endpoint(self, name: str, starts_allowed: int, restart_delay_s: float = 0.0) -> dict[str, Any]:
        key = f"{name}/model.tar.gz"
        self.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=_empty_archive())
        self.sagemaker.create_model(
            ModelName=name,
            PrimaryContainer={
                "Image": f"{LOCAL_ACCOUNT}.dkr.ecr.{LOCAL_REGION}.amazonaws.com/local:flaky",
                "ModelDataUrl": f"s3://{BUCKET}/{key}",
                "Environment": {
                    "STARTS_ALLOWED": str(starts_allowed),
                    "RESTART_DELAY_S": str(restart_delay_s),
                },
            },
            ExecutionRoleArn=ROLE,
        )
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": name,
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                    "InitialVariantWeight": 1.0,
                }
            ],
        )
        self.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
        return self.settled(name)

    def settled(self, name: str) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            described: dict[str, Any] = self.sagemaker.describe_endpoint(EndpointName=name)
            return None if described["EndpointStatus"] == "Creating" else described

        return wait_for(done, f"endpoint {name} to settle", timeout_s=30)

    def status(self, name: str, body: str = "1") -> int:
        """The HTTP status InvokeEndpoint answers."""
        try:
            self.runtime.invoke_endpoint(EndpointName=name, Body=body.encode(), ContentType="text/csv")
        except ClientError as exc:
            return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])
        return 200

    def variant(self, name: str) -> dict[str, Any]:
        summary: dict[str, Any] = self.sagemaker.describe_endpoint(EndpointName=name)["ProductionVariants"][0]
        return summary

    def sums(self, name: str) -> dict[str, float]:
        """Invocations and Invocation5XXErrors of the endpoint so far (Sum over the last hour)."""
        dims = [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}]
        sums: dict[str, float] = {}
        for metric in ("Invocations", "Invocation5XXErrors"):
            points = self.cloudwatch.get_metric_statistics(
                Namespace="AWS/SageMaker",
                MetricName=metric,
                Dimensions=dims,
                StartTime=_hours_ago(1),
                EndTime=_hours_ago(-1),
                Period=7200,
                Statistics=["Sum"],
            )["Datapoints"]
            sums[metric] = sum(p["Sum"] for p in points)
        return sums


def _hours_ago(hours: float) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(hours=hours)


def _empty_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("model.txt")
        archive.addfile(info, io.BytesIO(b""))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosting]:
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    clients = Clients(endpoint)
    clients.s3.create_bucket(Bucket=BUCKET)
    images = ImageRegistry()
    images.add("flaky", _image(tmp_path_factory.mktemp("images") / "flaky", serve=FLAKY_SERVE))
    hosting = EndpointHosting(
        clients,
        images,
        tmp_path_factory.mktemp("work"),
        lambda names: {},
        MotoSageMakerRecords(clients.account, clients.region),
    )
    # No retries: the 503 of a dead container is what is under test.
    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=endpoint,
        region_name=clients.region,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
    try:
        with served(hosting), hosting_installed(hosting):
            sagemaker, cloudwatch = clients.client("sagemaker"), clients.client("cloudwatch")
            yield Hosting(clients, hosting, sagemaker, runtime, cloudwatch)
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_a_killed_serve_process_is_replaced_and_the_variant_shows_it(local: Hosting) -> None:
    assert local.endpoint("replaced", starts_allowed=2, restart_delay_s=2.0)["EndpointStatus"] == "InService"
    [pid] = local.hosting.pids("replaced").values()
    os.kill(pid, signal.SIGKILL)

    replacing = wait_for(
        lambda: (v := local.variant("replaced")).get("VariantStatus") and v, "the replacement to show", 10
    )
    assert replacing["CurrentInstanceCount"] == 0
    assert replacing["VariantStatus"][0]["Status"] == "Updating"
    assert "exited with -9" in replacing["VariantStatus"][0]["StatusMessage"]
    assert local.status("replaced") == 503  # no instance in service: SageMaker's retryable error

    wait_for(lambda: local.variant("replaced")["CurrentInstanceCount"] == 1, "the new instance", 20)
    described = local.sagemaker.describe_endpoint(EndpointName="replaced")
    assert described["EndpointStatus"] == "InService"
    assert "VariantStatus" not in described["ProductionVariants"][0]
    assert local.status("replaced") == 200
    assert local.hosting.pids("replaced") != {"replaced/AllTraffic": pid}


def test_calls_to_a_dead_container_count_as_5xx_errors_and_trip_the_alarm(local: Hosting) -> None:
    local.endpoint("counted", starts_allowed=2, restart_delay_s=30.0)
    local.cloudwatch.put_metric_alarm(
        AlarmName="counted-5xx",
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[
            {"Name": "EndpointName", "Value": "counted"},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
    )
    assert local.status("counted") == 200
    assert local.status("counted", "crash") == 503  # dies mid-request
    assert [local.status("counted") for _ in range(3)] == [503, 503, 503]  # while it is being replaced

    expected = {"Invocations": 5.0, "Invocation5XXErrors": 4.0}
    wait_for(lambda: local.sums("counted") == expected, "the metrics to be flushed", 10)
    evaluator = AlarmEvaluator(MotoCloudWatch(LOCAL_ACCOUNT, LOCAL_REGION))

    def fired() -> bool:
        evaluator.evaluate()
        alarm = local.cloudwatch.describe_alarms(AlarmNames=["counted-5xx"])["MetricAlarms"][0]
        return bool(alarm["StateValue"] == "ALARM")

    wait_for(fired, "the 5XX alarm", 10)


def test_a_container_that_keeps_dying_fails_the_endpoint_with_the_reason(local: Hosting) -> None:
    local.endpoint("doomed", starts_allowed=1)
    assert local.status("doomed", "crash") == 503
    described = wait_for(
        lambda: (
            (d := local.sagemaker.describe_endpoint(EndpointName="doomed"))["EndpointStatus"] == "Failed"
            and d
        ),
        "the endpoint to fail",
        20,
    )
    assert "exited with 1" in described["FailureReason"]
    assert "its replacement did not start" in described["FailureReason"]
    assert "exited with 3 before answering /ping" in described["FailureReason"]
    assert local.status("doomed") == 503
