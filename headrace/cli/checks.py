"""What `headrace drift` and `headrace quality` share: start a check's state machine now, wait for it with
a progress line, and read what its Finish step wrote (result.json, report.html), with errors that say what
to do."""

from __future__ import annotations

import json
import time
import uuid
import webbrowser
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ValidationError

from headrace.waiting import WaitTimeout, wait_for

from .output import EXIT_FAILED, EXIT_UNREACHABLE, console, fail

UNREACHABLE_HINT = "start the local plane (`headrace local up --detach`) or set credentials"
Document = TypeVar("Document", bound=BaseModel)


def workflow(arn: str | None, stack: str, what: str, model: str) -> str:
    """The check's state machine ARN from the stack's outputs; a stack deployed before it exits 3."""
    if arn is None:
        fail(
            f"stack {stack} has no {what} workflow for '{model}'",
            "deploy the current pipeline stack (`cdk deploy`) or restart the local plane",
            EXIT_UNREACHABLE,
        )
    return arn


def read_s3(client: Any, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def start_check(sfn: Any, machine: str, what: str) -> str:
    """Start the check's state machine as the CLI does (trigger "cli"); the execution's ARN."""
    name = f"cli-{uuid.uuid4().hex[:12]}"
    try:
        sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps({"trigger": "cli"}))
    except (BotoCoreError, ClientError) as exc:
        fail(f"cannot start {what}: {exc}", UNREACHABLE_HINT, EXIT_UNREACHABLE)
    return machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def wait_check(sfn: Any, arn: str, what: str, doing: str, timeout: float) -> dict[str, Any]:
    """Wait for a started check, `doing… 12s` on screen; its `$.check` output, or exit naming what failed."""
    try:
        started = time.monotonic()
        with console.status(f"{doing}…") as spinner:

            def ended() -> dict[str, Any] | None:
                described = sfn.describe_execution(executionArn=arn)
                spinner.update(f"{doing}… {time.monotonic() - started:.0f}s")
                return dict(described) if described["status"] != "RUNNING" else None

            execution = wait_for(ended, what, timeout_s=timeout, interval_s=0.5)
    except WaitTimeout as exc:
        fail(f"{exc}; the execution goes on", f"aws stepfunctions describe-execution --execution-arn {arn}")
    except (BotoCoreError, ClientError) as exc:
        fail(f"cannot reach AWS: {exc}", UNREACHABLE_HINT, EXIT_UNREACHABLE)
    history = f"its history: aws stepfunctions get-execution-history --execution-arn {arn}"
    if execution["status"] != "SUCCEEDED":
        fail(
            f"{what} {arn.rsplit(':', 1)[-1]} ended {execution['status']}: {execution.get('error')}: "
            f"{execution.get('cause')}",
            history,
            EXIT_FAILED,
        )
    try:
        check: dict[str, Any] = json.loads(execution["output"])["check"]
    except (KeyError, TypeError, ValueError) as exc:
        fail(f"{what} succeeded but its output has no check outcome ({exc!r})", history, EXIT_FAILED)
    return check


def run_check(sfn: Any, machine: str, what: str, doing: str, timeout: float) -> dict[str, Any]:
    """Start the check and wait for it: its Finish step's outcome (`$.check`)."""
    return wait_check(sfn, start_check(sfn, machine, what), what, doing, timeout)


def read_result(s3: Any, uri: str | None, what: str) -> bytes:
    """The result document the check wrote; a missing one exits 1 naming the object."""
    if not uri:
        fail(f"{what} names no result document", "run the check again; if it persists, see its execution")
    try:
        return read_s3(s3, uri)
    except ClientError as exc:
        fail(f"cannot read {what}'s result {uri}: {exc}", "run the check again", EXIT_FAILED)
    except BotoCoreError as exc:
        fail(f"cannot reach AWS: {exc}", UNREACHABLE_HINT, EXIT_UNREACHABLE)


def parse_result(body: bytes, model: type[Document], uri: str | None, what: str) -> Document:
    """A result document validated; a malformed one exits 1 naming the object and the fields at fault."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'the document'}: {e['msg']}" for e in exc.errors()[:5]
        )
        fail(f"{what}'s result {uri} is malformed: {problems}", "run the check again", EXIT_FAILED)


def read_document(s3: Any, uri: str | None, model: type[Document], what: str) -> Document:
    return parse_result(read_result(s3, uri, what), model, uri, what)


def save_report(s3: Any, uri: str | None, path: Path, open_it: bool) -> None:
    """Copy the check's HTML report to `path` (and open it in a browser)."""
    if not uri:
        fail("the check wrote no HTML report", "reports are written when there was something to judge")
    try:
        path.write_bytes(read_s3(s3, uri))
    except ClientError as exc:
        fail(f"cannot read the report {uri}: {exc}", "run the check again", EXIT_FAILED)
    console.print(f"report: {path}")
    if open_it:
        webbrowser.open(path.resolve().as_uri())
