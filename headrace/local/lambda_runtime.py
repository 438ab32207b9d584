"""Runs a Lambda function's own deployed code in this process, the way the Lambda Python runtime would.

The code is the zip moto's Lambda holds (the asset CDK synthesized and the local plane uploaded), unpacked
once per CodeSha256; the environment is the function's configuration. Invocations are serialized: the
process environment is swapped in for each one, as a Lambda sandbox runs one event at a time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from pydantic import BaseModel


class FunctionSpec(BaseModel):
    """What the runtime needs of a function: moto's LambdaFunction reduced to plain data."""

    name: str
    arn: str
    handler: str
    code_sha256: str
    environment: dict[str, str]
    timeout_s: int = 3
    memory_mb: int = 128


@dataclass
class InvocationResult:
    payload: Any
    errored: bool
    log: str
    duration_ms: float


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _ThreadRoutedStdout(io.TextIOBase):
    """sys.stdout replacement: writes from a thread that is running a handler go to that handler's log.

    Loggers bind sys.stdout when they are created (powertools' Logger does, at import); routing by thread
    rather than swapping sys.stdout per call keeps them pointed at the right log for every invocation.
    """

    def __init__(self, fallback: TextIO) -> None:
        self._fallback = fallback
        self._local = threading.local()

    @contextlib.contextmanager
    def capture(self) -> Iterator[io.StringIO]:
        buffer = io.StringIO()
        self._local.buffer = buffer
        try:
            yield buffer
        finally:
            self._local.buffer = None

    def write(self, text: str) -> int:
        buffer = getattr(self._local, "buffer", None)
        return (buffer or self._fallback).write(text)

    def flush(self) -> None:
        if getattr(self._local, "buffer", None) is None:
            self._fallback.flush()


def _routed_stdout() -> _ThreadRoutedStdout:
    if not isinstance(sys.stdout, _ThreadRoutedStdout):
        sys.stdout = _ThreadRoutedStdout(sys.stdout)
    return sys.stdout


class HandlerRuntime:
    """Loads each function's handler from its code zip and invokes it with the function's environment."""

    def __init__(self, code_dir: Path, base_environment: dict[str, str]) -> None:
        self._code_dir = code_dir
        self._base_environment = base_environment
        self._modules: dict[str, Callable[[Any, Any], Any]] = {}
        self._lock = threading.RLock()
        self.listeners: list[Callable[[FunctionSpec, InvocationResult], None]] = []

    def unpack(self, spec: FunctionSpec, code: bytes) -> Path:
        target = self._code_dir / spec.code_sha256.replace("/", "_").replace("+", "-")
        if not (target / ".complete").exists():
            target.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                archive.extractall(target)
            (target / ".complete").touch()
        return target

    @contextlib.contextmanager
    def _environment(self, spec: FunctionSpec, task_root: Path) -> Iterator[None]:
        saved = dict(os.environ)
        os.environ.update(self._base_environment)
        os.environ.update(spec.environment)
        os.environ.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "LAMBDA_TASK_ROOT": str(task_root),
                "_HANDLER": spec.handler,
            }
        )
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def _load(self, spec: FunctionSpec, task_root: Path) -> Callable[[Any, Any], Any]:
        key = f"{spec.name}:{spec.code_sha256}"
        if key not in self._modules:
            module_path, _, attribute = spec.handler.rpartition(".")
            source = task_root / (module_path.replace(".", "/") + ".py")
            if not source.exists():
                raise FileNotFoundError(f"handler module {module_path} not found in the code of {spec.name}")
            module_name = f"headrace_lambda_{spec.name.replace('-', '_')}_{abs(hash(key)) % 10**8}"
            module_spec = importlib.util.spec_from_file_location(module_name, source)
            assert module_spec and module_spec.loader
            module: ModuleType = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module
            module_spec.loader.exec_module(module)
            self._modules[key] = getattr(module, attribute)
        return self._modules[key]

    def invoke(self, spec: FunctionSpec, code: bytes, event: Any) -> InvocationResult:
        """Run one event; a raised exception becomes Lambda's {errorType, errorMessage} with errored=True."""
        stdout = _routed_stdout()
        task_root = self.unpack(spec, code)
        started = time.perf_counter()
        with self._lock, self._environment(spec, task_root), stdout.capture() as log:
            context = LambdaContext(spec.name, spec.arn, spec.memory_mb, spec.timeout_s)
            print(f"START RequestId: {context.aws_request_id} Version: $LATEST")
            try:
                handler = self._load(spec, task_root)
                payload, errored = handler(event, context), False
            except Exception as exc:
                payload = {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_exception(exc)[-6:],
                }
                errored = True
                print(json.dumps({"level": "ERROR", "message": "handler failed", **payload}, default=str))
            duration_ms = (time.perf_counter() - started) * 1000
            print(f"END RequestId: {context.aws_request_id}")
            print(f"REPORT RequestId: {context.aws_request_id}\tDuration: {duration_ms:.2f} ms")
        result = InvocationResult(payload, errored, log.getvalue(), duration_ms)
        for listener in self.listeners:
            listener(spec, result)
        return result
