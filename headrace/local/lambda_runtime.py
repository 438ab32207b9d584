"""Runs a Lambda function's own deployed code locally, the way the Lambda service would, limits included.

The code is the zip moto's Lambda holds (the asset CDK synthesized and the local plane uploaded), unpacked
once per CodeSha256; the environment is the function's configuration. Each function runs in execution
environments of its own (lambda_sandbox.py): child processes, kept warm between events, one event at a time
each, and as many at once as the function has concurrent invocations, as on Lambda.

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

Concurrency as Lambda counts it: each invocation in flight holds one unit of the function's reserved
concurrency (ReservedConcurrentExecutions) or of the account's unreserved pool; with none left the call is
throttled (lambda_limits.Throttled, 429) before anything runs. How many sandbox processes the machine runs
at once is a separate, local cap (`max_sandboxes`): an invocation beyond it waits for one, like a slow cold
start, and an idle sandbox of another function is retired to make room.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import multiprocessing.forkserver
import os
import signal
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
from headrace.local.sagemaker.supervision import Supervisor, on_spawner_thread

__all__ = ["FunctionSpec", "HandlerRuntime", "InvocationResult", "LambdaContext"]

# How often the parent samples a running sandbox's memory; the peak (VmHWM) is checked after each event too.
MEMORY_POLL_S = 0.02
MEGABYTE = 1024 * 1024
# Sandbox processes the plane runs at once over all functions: the machine's share, not a Lambda quota.
DEFAULT_MAX_SANDBOXES = max(8, 4 * (os.cpu_count() or 1))


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
    reserved_concurrency: int | None = (
        None  # ReservedConcurrentExecutions; None: the account's unreserved pool
    )


@dataclass
class InvocationResult:
    payload: Any
    errored: bool
    log: str
    duration_ms: float
    max_memory_mb: float = 0.0
    started_at: float = 0.0  # epoch seconds: when the invocation began and ended, to see overlaps
    ended_at: float = 0.0


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

    def __init__(self, config: SandboxConfig, supervisor: Supervisor | None = None) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        # Started (once) from the thread that lives as long as the plane: the forkserver dies with it.
        on_spawner_thread(multiprocessing.forkserver.ensure_running)
        self._connection, child = context.Pipe()
        self.process: BaseProcess = context.Process(
            target=serve, args=(child, config), name=f"lambda-{config.name}", daemon=True
        )
        self.process.start()
        child.close()
        self._supervisor = supervisor
        if supervisor and self.process.pid:
            supervisor.adopt(self.process.pid)

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        if self.process.is_alive() and self.process.pid:
            try:  # its group: what the handler started goes with the sandbox, as on Lambda
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.process.kill()  # not leading its group yet
        self.process.join(timeout=5)
        self._connection.close()
        if self._supervisor and self.process.pid:
            self._supervisor.forget(self.process.pid)

    def run(
        self, request_id: str, event_json: str, timeout_s: float, memory_mb: int
    ) -> tuple[tuple[str, bool, str] | None, str, float]:
        """(answer or None, why there is none: "timeout" / "memory" / "exited", peak MB)."""
        try:
            self._connection.send((request_id, event_json, timeout_s))
        except OSError:  # it died while idle
            return None, "exited", 0.0
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
    """Loads each function's handler from its code zip and invokes it in a sandbox of the function's own,
    concurrently: a pool of warm sandboxes per function configuration."""

    def __init__(
        self,
        code_dir: Path,
        base_environment: dict[str, str],
        account_concurrency: int = lambda_limits.ACCOUNT_CONCURRENCY,
        max_sandboxes: int | None = None,
        supervisor: Supervisor | None = None,
    ) -> None:
        self._code_dir = code_dir
        self._supervisor = supervisor  # records the sandboxes for the next plane, if given
        self._base_environment = base_environment
        self.account_concurrency = account_concurrency
        self.max_sandboxes = max_sandboxes or int(
            os.environ.get("HEADRACE_LOCAL_LAMBDA_SANDBOXES", DEFAULT_MAX_SANDBOXES)
        )
        self._idle: dict[str, list[Sandbox]] = {}  # warm and free, per configuration
        self._sandboxes: set[Sandbox] = set()  # every live one, busy or idle
        self._starting = 0
        self._running: dict[str, int] = {}  # invocations in flight per function
        self._reservations: dict[str, int] = {}  # reserved concurrency per function, as last seen
        self._slots = threading.Condition()
        self._unpacking = threading.Lock()
        self.listeners: list[Callable[[FunctionSpec, InvocationResult], None]] = []
        # The execution role's session credentials for a function's environment (seams/iam.py), if IAM is on.
        self.credentials: Callable[[FunctionSpec], dict[str, str]] | None = None

    def running(self, function_name: str) -> int:
        """Invocations of the function in flight now (its concurrency, as Lambda's metric counts it)."""
        with self._slots:
            return self._running.get(function_name, 0)

    def unpack(self, spec: FunctionSpec, code: bytes) -> Path:
        target = self._code_dir / spec.code_sha256.replace("/", "_").replace("+", "-")
        with self._unpacking:  # concurrent first invocations unpack once
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

    def _reserve(self, spec: FunctionSpec) -> None:
        """Take one unit of concurrency for an invocation, or raise Throttled as Lambda would."""
        with self._slots:
            if spec.reserved_concurrency is None:
                self._reservations.pop(spec.name, None)
            else:
                self._reservations[spec.name] = spec.reserved_concurrency
            running = self._running.get(spec.name, 0)
            if spec.reserved_concurrency is not None:
                if running >= spec.reserved_concurrency:
                    raise lambda_limits.Throttled(lambda_limits.RESERVED_LIMIT)
            else:
                unreserved = self.account_concurrency - sum(self._reservations.values())
                in_use = sum(n for name, n in self._running.items() if name not in self._reservations)
                if in_use >= unreserved:
                    raise lambda_limits.Throttled(lambda_limits.ACCOUNT_LIMIT)
            self._running[spec.name] = running + 1

    def _release(self, spec: FunctionSpec) -> None:
        with self._slots:
            self._running[spec.name] -= 1
            self._slots.notify_all()

    def _checkout(self, key: str, spec: FunctionSpec, task_root: Path) -> Sandbox:
        """A warm sandbox of this configuration, else a new one once the machine has room for it."""
        with self._slots:
            while True:
                idle = self._idle.get(key, [])
                while idle:
                    sandbox = idle.pop()
                    if sandbox.alive:
                        return sandbox
                    self._retire(sandbox)
                if len(self._sandboxes) + self._starting < self.max_sandboxes:
                    break
                victim = next((pool.pop() for pool in self._idle.values() if pool), None)
                if victim is not None:
                    self._retire(victim)  # an idle sandbox of another configuration makes room
                    continue
                self._slots.wait()
            self._starting += 1  # counts against max_sandboxes while its process starts
        try:
            sandbox = Sandbox(self._config(spec, task_root), self._supervisor)
        finally:
            with self._slots:
                self._starting -= 1
                self._slots.notify_all()
        with self._slots:
            self._sandboxes.add(sandbox)
        return sandbox

    def _checkin(self, key: str, sandbox: Sandbox, healthy: bool) -> None:
        with self._slots:
            if healthy and sandbox in self._sandboxes:
                self._idle.setdefault(key, []).append(sandbox)
            else:
                self._retire(sandbox)
            self._slots.notify_all()

    def _retire(self, sandbox: Sandbox) -> None:
        """Called holding _slots; SIGKILL and a join of a process that is gone or idle are quick."""
        self._sandboxes.discard(sandbox)
        sandbox.kill()

    def close(self) -> None:
        with self._slots:
            sandboxes, self._sandboxes, self._idle = list(self._sandboxes), set(), {}
            self._slots.notify_all()
        for sandbox in sandboxes:
            sandbox.kill()

    def invoke(
        self, spec: FunctionSpec, code: bytes, event: Any, asynchronous: bool = False
    ) -> InvocationResult:
        """Run one event; a raised exception becomes Lambda's {errorType, errorMessage} with errored=True,
        and so do a timeout, running out of memory and an oversized response. An oversized event raises
        lambda_limits.RequestTooLarge and one with no concurrency left raises lambda_limits.Throttled: Lambda
        refuses the call and runs nothing."""
        event_json = json.dumps(event, default=str)
        lambda_limits.check_request(event_json.encode(), asynchronous)
        task_root = self.unpack(spec, code)
        request_id = str(uuid.uuid4())
        # A new configuration (code, environment, limits) gets new sandboxes, as on Lambda.
        configuration = spec.model_dump_json(exclude={"reserved_concurrency"}).encode()
        key = f"{spec.name}:{hashlib.sha256(configuration).hexdigest()}"
        self._reserve(spec)
        try:
            started_at, started = time.time(), time.perf_counter()
            sandbox = self._checkout(key, spec, task_root)
            try:
                answer, failure, peak = sandbox.run(request_id, event_json, spec.timeout_s, spec.memory_mb)
            except BaseException:
                self._checkin(key, sandbox, healthy=False)
                raise
            self._checkin(key, sandbox, healthy=answer is not None)
            duration_ms = (time.perf_counter() - started) * 1000
        finally:
            self._release(spec)
        lines = [f"START RequestId: {request_id} Version: $LATEST"]
        if answer is None:
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
        result = InvocationResult(payload, errored, log, duration_ms, peak, started_at, time.time())
        for listener in self.listeners:
            listener(spec, result)
        return result


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
