"""A transform job's instance: the Model's serve container on a loopback port, driven as SageMaker's batch
transform drives it (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-batch-code.html): its
batch environment, `GET /ping` until it answers, the optional `GET /execution-parameters`, then
`POST /invocations` per mini-batch, retried as ModelClientConfig's defaults say."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from headrace.local.sagemaker.containers import Container
from headrace.local.sagemaker.transform_records import Plan, TransformFailed

LOG_GROUP = "/aws/sagemaker/TransformJobs"

PING_TIMEOUT_S = 60.0
# ModelClientConfig: "InvocationsTimeoutInSeconds ... The default value is 600"; "InvocationsMaxRetries ...
# The default value is 3" (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ModelClientConfig.html).
INVOKE_TIMEOUT_S = 600
INVOKE_RETRIES = 3


@dataclass
class Instance:
    """One transform instance: a serve container on a loopback port."""

    port: int
    process: Container
    _local: threading.local = field(default_factory=threading.local)

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            self._local.conn = conn
        return conn

    def drop_connection(self) -> None:
        if conn := getattr(self._local, "conn", None):
            conn.close()
            self._local.conn = None


def batch_environment(job: Any) -> dict[str, str]:
    """What SageMaker adds to a batch container's environment; the last three only when the job sets them."""
    variables = {"SAGEMAKER_BATCH": "true"}
    if job.max_payload_in_mb is not None:
        variables["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(job.max_payload_in_mb)
    if job.batch_strategy:
        variables["SAGEMAKER_BATCH_STRATEGY"] = (
            "SINGLE_RECORD" if job.batch_strategy == "SingleRecord" else "MULTI_RECORD"
        )
    if job.max_concurrent_transforms:
        variables["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(job.max_concurrent_transforms)
    return variables


def wait_ready(instance: Instance, model: str) -> None:
    deadline = time.monotonic() + PING_TIMEOUT_S
    while time.monotonic() < deadline:
        if instance.process.poll() is not None:
            raise TransformFailed(
                f"ClientError: the serving container of {model} exited with {instance.process.returncode} "
                f"before answering /ping (see {LOG_GROUP})"
            )
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                conn.close()
                return
        time.sleep(0.1)
    raise TransformFailed(f"ClientError: the container of {model} did not answer /ping in {PING_TIMEOUT_S} s")


def execution_parameters(instance: Instance) -> dict[str, Any]:
    """The container's `GET /execution-parameters` answer; {} when it has none (it is optional)."""
    with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
        conn = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=10)
        try:
            conn.request("GET", "/execution-parameters")
            answer = conn.getresponse()
            body = answer.read()
            if answer.status == 200:
                parsed = json.loads(body)
                return parsed if isinstance(parsed, dict) else {}
        finally:
            conn.close()
    return {}


def invoke(instance: Instance, body: bytes, plan: Plan) -> bytes:
    """POST one mini-batch; retried as ModelClientConfig's defaults say, then TransformFailed."""
    headers = {"Content-Length": str(len(body))}
    if plan.content_type:
        headers["Content-Type"] = plan.content_type
    if plan.accept:
        headers["Accept"] = plan.accept
    problem = ""
    for _ in range(1 + INVOKE_RETRIES):
        if instance.process.poll() is not None:
            raise OSError(f"the container exited with {instance.process.returncode}")
        try:
            conn = instance.connection(INVOKE_TIMEOUT_S)
            conn.request("POST", "/invocations", body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            instance.drop_connection()
            problem = f"{type(exc).__name__}: {exc}"
            continue
        if answer.status == 200:
            return data
        problem = f"the container answered {answer.status}: {data[:400].decode(errors='replace')}"
        if answer.getheader("Connection", "").lower() == "close":
            instance.drop_connection()
    raise TransformFailed(f"/invocations failed {1 + INVOKE_RETRIES} times; last: {problem}")
