"""One Lambda execution environment: a child process that loads a function's handler and runs its events.

The child is forked from a forkserver that has already imported what every handler imports (boto3,
Powertools, pydantic), so a cold start costs the function's own imports only, and it is a process of its own
so that the parent can do to it what Lambda does to a sandbox: measure its memory, kill it when it is over its
MemorySize or its Timeout, and start a fresh one for the next event. Protocol over a multiprocessing Pipe:
the parent sends (request_id, event JSON, timeout_s), the child answers (payload JSON, errored, log).

Neither outlives the plane (issue 13): the forkserver is forked from the plane's spawner thread and, once
running, asks for the parent-death signal (on importing this module, which it preloads); each sandbox asks
for it too, against the forkserver, and leads its own process group, which the plane records
(sagemaker/supervision.py), so what a handler started dies with it at the next plane's start.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import multiprocessing.forkserver
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from headrace.local.sagemaker.supervision import die_with_parent

# Imported by the forkserver before it forks any sandbox: shared by every handler, so paid for once.
PRELOAD = ["boto3", "botocore.session", "pydantic", "aws_lambda_powertools", "headrace.local.lambda_sandbox"]


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_s: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _SwitchedStdout(io.TextIOBase):
    """sys.stdout for the sandbox: loggers bind it at import (powertools' Logger does), so the stream stays
    and only its target changes, to the current invocation's log."""

    def __init__(self, fallback: TextIO) -> None:
        self._fallback = fallback
        self.buffer_: io.StringIO | None = None

    @contextlib.contextmanager
    def capture(self) -> Iterator[io.StringIO]:
        self.buffer_ = io.StringIO()
        try:
            yield self.buffer_
        finally:
            self.buffer_ = None

    def write(self, text: str) -> int:
        return (self.buffer_ or self._fallback).write(text)

    def flush(self) -> None:
        if self.buffer_ is None:
            self._fallback.flush()


@dataclass(frozen=True)
class SandboxConfig:
    name: str
    arn: str
    handler: str
    task_root: str
    memory_mb: int
    environment: dict[str, str]


def load_handler(config: SandboxConfig) -> Callable[[Any, Any], Any]:
    module_path, _, attribute = config.handler.rpartition(".")
    source = Path(config.task_root) / (module_path.replace(".", "/") + ".py")
    if not source.exists():
        raise FileNotFoundError(f"handler module {module_path} not found in the code of {config.name}")
    module_name = f"headrace_lambda_{config.name.replace('-', '_')}"
    module_spec = importlib.util.spec_from_file_location(module_name, source)
    assert module_spec and module_spec.loader
    module: ModuleType = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    handler: Callable[[Any, Any], Any] = getattr(module, attribute)
    return handler


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc)[-6:],
    }


def serve(connection: Connection, config: SandboxConfig) -> None:
    """The sandbox's main loop (the child process): one event at a time until the parent hangs up."""
    os.setpgid(0, 0)  # what the handler starts goes with the group the plane kills
    die_with_parent()  # the forkserver, single-threaded: this dies when it does, and it with the plane
    os.environ.clear()
    os.environ.update(config.environment)
    stdout = _SwitchedStdout(sys.stdout)
    sys.stdout = stdout
    handler: Callable[[Any, Any], Any] | None = None
    while True:
        try:
            request_id, event_json, timeout_s = connection.recv()
        except EOFError:
            return
        with stdout.capture() as log:
            context = LambdaContext(config.name, config.arn, config.memory_mb, timeout_s, request_id)
            try:
                # An Init error is reported on each invocation until the code loads, as Lambda does.
                handler = handler or load_handler(config)
                payload, errored = handler(json.loads(event_json), context), False
            except Exception as exc:
                payload, errored = _error(exc), True
                print(json.dumps({"level": "ERROR", "message": "handler failed", **payload}, default=str))
        connection.send((json.dumps(payload, default=str), errored, log.getvalue()))


def _arm_in_forkserver() -> None:
    """The forkserver's side of dying with the plane: it imports this module among PRELOAD from inside
    `multiprocessing.forkserver.main`; anywhere else (the plane itself) importing it changes nothing.
    The plane forks the forkserver from its spawner thread (lambda_runtime.Sandbox), so the signal comes
    when the plane dies, not when some worker thread ends."""
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code is multiprocessing.forkserver.main.__code__:
            die_with_parent()
            return
        frame = frame.f_back  # type: ignore[assignment]


_arm_in_forkserver()
