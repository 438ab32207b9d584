"""Runs a Lambda function's own deployed code locally, the way the Lambda service would, limits included.

The code is the zip moto's Lambda holds (the asset CDK synthesized and the local plane uploaded), unpacked
once per CodeSha256; the environment is the function's configuration. Each function runs in an execution
environment of its own (lambda_sandbox.py): a child process, kept warm between events, one event at a time.

Why a process and not the plane's own: Lambda enforces MemorySize and Timeout on the sandbox, and neither
can be enforced in-process. A thread cannot be killed at its deadline, and the plane's memory holds moto's
state (every S3 object), so neither RSS nor tracemalloc's peak (global, and blind to native buffers) can
say what one invocation used. A child process has its own resident set, which is what Lambda meters: the
parent reads it from /proc while the event runs and kills the child with SIGKILL once it is over MemorySize
(Lambda: Runtime.OutOfMemory, "Runtime exited with error: signal: killed"), or once Timeout has passed
(Sandbox.Timedout, "Task timed out after N seconds"). Either way the sandbox is gone and the next event
starts a fresh one, as on Lambda. Processes are forked from a forkserver that preloaded the libraries every
handler imports, so a cold start costs the function's own imports only and the loop stays fast.
Payload quotas are checked on the way in and out (lambda_limits.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from headrace.local import lambda_limits
from headrace.local.lambda_sandbox import PRELOAD, LambdaContext, SandboxConfig, serve

__all__ = ["FunctionSpec", "HandlerRuntime", "InvocationResult", "LambdaContext"]

# How often the parent samples a running sandbox's memory; the peak (VmHWM) is checked after each event too.
MEMORY_POLL_S = 0.02
MEGABYTE = 1024 * 1024


class FunctionSpec(BaseModel):
    """What the runtime needs of a function: moto's LambdaFunction reduced to plain data."""

    name: str
    arn: str
    handler: str
    code_sha256: str
    environment: dict[str, str]
    timeout_s: float = 3
    memory_mb: int = 128
    role_arn: str = ""  # the execution role, whose session credentials the function runs with


@dataclass
class InvocationResult:
    payload: Any
    errored: bool
    log: str
    duration_ms: float
    max_memory_mb: float = 0.0


def _memory_mb(pid: int | None, field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of a process in MB; 0 where /proc cannot say (not Linux, gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sandbox:
    """A warm execution environment for one function configuration."""

    def __init__(self, config: SandboxConfig) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        self._connection, child = context.Pipe()
        self.process: BaseProcess = context.Process(
            target=serve, args=(child, config), name=f"lambda-{config.name}", daemon=True
        )
        self.process.start()
        child.close()
        self.lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self._connection.close()

    def run(
        self, request_id: str, event_json: str, timeout_s: float, memory_mb: int
    ) -> tuple[tuple[str, bool, str] | None, str, float]:
        """(answer or None, why there is none: "timeout" / "memory" / "exited", peak MB)."""
        self._connection.send((request_id, event_json, timeout_s))
        deadline = time.monotonic() + timeout_s
        peak = 0.0
        connection: Connection = self._connection
        while True:
            remaining = deadline - time.monotonic()
            try:
                ready = connection.poll(max(0.0, min(MEMORY_POLL_S, remaining)))
            except (EOFError, OSError):
                ready = True
            peak = max(peak, _memory_mb(self.process.pid, "VmHWM"))
            if peak > memory_mb:
                return None, "memory", peak
            if ready:
                try:
                    answer: tuple[str, bool, str] = connection.recv()
                except (EOFError, OSError):
                    return None, "exited", peak
                peak = max(peak, _memory_mb(self.process.pid, "VmHWM"))
                return (None, "memory", peak) if peak > memory_mb else (answer, "", peak)
            if remaining <= 0:
                return None, "timeout", peak


class HandlerRuntime:
    """Loads each function's handler from its code zip and invokes it in the function's own sandbox."""

    def __init__(self, code_dir: Path, base_environment: dict[str, str]) -> None:
        self._code_dir = code_dir
        self._base_environment = base_environment
        self._sandboxes: dict[str, Sandbox] = {}
        self._lock = threading.Lock()
        self.listeners: list[Callable[[FunctionSpec, InvocationResult], None]] = []
        # The execution role's session credentials for a function's environment (seams/iam.py), if IAM is on.
        self.credentials: Callable[[FunctionSpec], dict[str, str]] | None = None

    def unpack(self, spec: FunctionSpec, code: bytes) -> Path:
        target = self._code_dir / spec.code_sha256.replace("/", "_").replace("+", "-")
        if not (target / ".complete").exists():
            target.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                archive.extractall(target)
            (target / ".complete").touch()
        return target

    def _config(self, spec: FunctionSpec, task_root: Path) -> SandboxConfig:
        environment = {
            **self._base_environment,
            **spec.environment,
            **(self.credentials(spec) if self.credentials else {}),
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "LAMBDA_TASK_ROOT": str(task_root),
            "_HANDLER": spec.handler,
        }
        return SandboxConfig(spec.name, spec.arn, spec.handler, str(task_root), spec.memory_mb, environment)

    def _sandbox(self, spec: FunctionSpec, task_root: Path) -> tuple[str, Sandbox]:
        # A new configuration (code, environment, limits) gets new sandboxes, as on Lambda.
        key = f"{spec.name}:{hashlib.sha256(spec.model_dump_json().encode()).hexdigest()}"
        with self._lock:
            sandbox = self._sandboxes.get(key)
            if sandbox is None or not sandbox.alive:
                sandbox = self._sandboxes[key] = Sandbox(self._config(spec, task_root))
            return key, sandbox

    def _discard(self, key: str, sandbox: Sandbox) -> None:
        with self._lock:
            if self._sandboxes.get(key) is sandbox:
                del self._sandboxes[key]
        sandbox.kill()

    def close(self) -> None:
        with self._lock:
            sandboxes, self._sandboxes = list(self._sandboxes.values()), {}
        for sandbox in sandboxes:
            sandbox.kill()

    def invoke(
        self, spec: FunctionSpec, code: bytes, event: Any, asynchronous: bool = False
    ) -> InvocationResult:
        """Run one event; a raised exception becomes Lambda's {errorType, errorMessage} with errored=True,
        and so do a timeout, running out of memory and an oversized response. An oversized event raises
        lambda_limits.RequestTooLarge: Lambda refuses the call and runs nothing."""
        event_json = json.dumps(event, default=str)
        lambda_limits.check_request(event_json.encode(), asynchronous)
        task_root = self.unpack(spec, code)
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        key, sandbox = self._sandbox(spec, task_root)
        with sandbox.lock:
            answer, failure, peak = sandbox.run(request_id, event_json, spec.timeout_s, spec.memory_mb)
        duration_ms = (time.perf_counter() - started) * 1000
        lines = [f"START RequestId: {request_id} Version: $LATEST"]
        if answer is None:
            self._discard(key, sandbox)
            code_ = sandbox.process.exitcode
            payload = {
                "timeout": lambda_limits.timed_out(request_id, spec.timeout_s),
                "memory": lambda_limits.out_of_memory(request_id),
            }.get(failure) or lambda_limits.exited(request_id, code_)
            errored, body = True, ""
            lines.append(f"{_timestamp()} {request_id} {payload['errorMessage'].split(' Error: ', 1)[-1]}")
        else:
            result_json, errored, body = answer
            payload = json.loads(result_json)
            if len(result_json.encode()) > lambda_limits.SYNC_PAYLOAD_BYTES and not asynchronous:
                payload, errored = lambda_limits.response_too_large(), True
        lines += [
            f"END RequestId: {request_id}",
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Memory Size: {spec.memory_mb} MB\tMax Memory Used: {peak:.0f} MB",
        ]
        log = lines[0] + "\n" + body + "\n".join(lines[1:]) + "\n"
        result = InvocationResult(payload, errored, log, duration_ms, peak)
        for listener in self.listeners:
            listener(spec, result)
        return result


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
