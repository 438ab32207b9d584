"""The plane's control channel: lets another process (`headrace local tick`) make the plane act now.

A small HTTP server on 127.0.0.1, on a free port recorded in plane.json (`control_port`), in the process
that runs the plane:

    POST /tick  {"schedules": true, "alarms": true, "names": ["..."] | null}
      → 200 {"schedules": [{"name", "target", "execution", "error"}],
             "alarms": [{"name", "previous", "current", "reason"}]}
      → 404 {"error": "no schedule named ..."} for names that match no schedule, 400 for a bad body
      → 403 without `Authorization: Bearer <the plane's secret access key>` (any local user can reach it)

`schedules` fires the schedules now (all ENABLED ones, or those named), `alarms` evaluates every alarm once;
only the alarms whose state changed are listed. This module imports no moto: the CLI uses its models and
`request_tick`, and the plane hands the server its ScheduleRunner and AlarmEvaluator.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

log = logging.getLogger("headrace.local")

HOST = "127.0.0.1"
TICK_PATH = "/tick"
# The body of a tick is a few names: anything much larger is not one.
MAX_BODY_BYTES = 64 * 1024
BEARER = "Bearer "


# --- what goes over the wire --------------------------------------------------------------------------------


class TickRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schedules: bool = True
    alarms: bool = True
    names: list[str] | None = None  # schedules to fire; None: every ENABLED one


class ScheduleFired(BaseModel):
    name: str
    target: str
    execution: str | None  # the execution's name (state machine) or the invocation's id (Lambda)
    error: str | None = None  # why the target could not be reached


class AlarmChanged(BaseModel):
    name: str
    previous: str
    current: str
    reason: str


class TickReport(BaseModel):
    schedules: list[ScheduleFired] = []
    alarms: list[AlarmChanged] = []


# --- what the server drives (ScheduleRunner and AlarmEvaluator satisfy these) -------------------------------


class FiredLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def execution(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...


class ScheduleFiring(Protocol):
    def fire(self, names: list[str] | None = None) -> Sequence[FiredLike]:
        """Raises LookupError for names that match no schedule."""


class AlarmStateLike(Protocol):
    @property
    def value(self) -> str: ...
    @property
    def reason(self) -> str: ...


class StateChangeLike(Protocol):
    @property
    def alarm_name(self) -> str: ...
    @property
    def previous(self) -> AlarmStateLike: ...
    @property
    def current(self) -> AlarmStateLike: ...


class AlarmEvaluating(Protocol):
    def evaluate(self) -> Sequence[StateChangeLike]: ...


def tick(request: TickRequest, schedules: ScheduleFiring, alarms: AlarmEvaluating) -> TickReport:
    """Schedules first: what they start may put metrics that the alarms then see."""
    report = TickReport()
    if request.schedules:
        report.schedules = [
            ScheduleFired(name=f.name, target=f.target, execution=f.execution, error=f.error)
            for f in schedules.fire(request.names)
        ]
    if request.alarms:
        report.alarms = [
            AlarmChanged(
                name=c.alarm_name, previous=c.previous.value, current=c.current.value, reason=c.current.reason
            )
            for c in alarms.evaluate()
        ]
    return report


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        if not self._authorized():
            self.close_connection = True  # its body stays unread
            self._answer(
                HTTPStatus.FORBIDDEN, {"error": "the plane's secret is required (headrace local tick)"}
            )
            return
        if self.path.split("?", 1)[0] != TICK_PATH:
            self._answer(HTTPStatus.NOT_FOUND, {"error": f"no such path {self.path}; POST {TICK_PATH}"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._answer(HTTPStatus.BAD_REQUEST, {"error": "Content-Length must be a number of bytes"})
            return
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "the request body is too large"})
            return
        try:
            request = TickRequest.model_validate_json(self.rfile.read(length) or b"{}")
        except ValidationError as error:
            self._answer(HTTPStatus.BAD_REQUEST, {"error": f"bad tick request: {error}"})
            return
        try:
            report = tick(request, self.server.schedules, self.server.alarms)
        except LookupError as error:
            self._answer(HTTPStatus.NOT_FOUND, {"error": str(error).strip("'\"")})
            return
        except Exception as error:
            log.exception("tick failed")
            self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(error).__name__}: {error}"})
            return
        self._answer(HTTPStatus.OK, report.model_dump(mode="json"))

    def do_GET(self) -> None:
        self._answer(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"POST {TICK_PATH}"})

    def _authorized(self) -> bool:
        given = str(self.headers.get("Authorization") or "")
        return given.startswith(BEARER) and hmac.compare_digest(
            given.removeprefix(BEARER).encode(), self.server.secret.encode()
        )

    def _answer(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("control: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, schedules: ScheduleFiring, alarms: AlarmEvaluating, secret: str) -> None:
        super().__init__((HOST, port), _Handler)
        self.schedules = schedules
        self.alarms = alarms
        self.secret = secret


class ControlServer:
    """`start()` listens on 127.0.0.1 (port 0: a free one) in a thread and returns the port; only requests
    that carry `secret` (the plane's secret access key) are served."""

    def __init__(
        self, schedules: ScheduleFiring, alarms: AlarmEvaluating, secret: str, port: int = 0
    ) -> None:
        if not secret:
            raise ValueError("the control server needs a secret")
        self._schedules = schedules
        self._alarms = alarms
        self._secret = secret
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the control server is not running")
        return int(self._server.server_address[1])

    def start(self) -> int:
        if self._server is None:
            self._server = _Server(self._port, self._schedules, self._alarms, self._secret)
            # A short poll: stop() waits for serve_forever to notice, and the plane stops it on every down.
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="headrace-control", daemon=True
            )
            self._thread.start()
        return self.port

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server, self._thread = None, None


# --- the client side ----------------------------------------------------------------------------------------


class ControlError(RuntimeError):
    """The plane's answer to a tick was an error (`status` is its HTTP status; 0 when it did not answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def request_tick(port: int, request: TickRequest, secret: str, timeout_s: float = 60.0) -> TickReport:
    """`secret`: the plane's secret access key (PlaneInfo.credentials)."""
    http_request = urllib.request.Request(
        f"http://{HOST}:{port}{TICK_PATH}",
        data=request.model_dump_json().encode(),
        headers={"Content-Type": "application/json", "Authorization": BEARER + secret},
        method="POST",
    )
    try:
        with urllib.request.urlopen(http_request, timeout=timeout_s) as response:
            return TickReport.model_validate_json(response.read())
    except urllib.error.HTTPError as error:
        try:
            message = str(json.loads(error.read())["error"])
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {error.code}"
        raise ControlError(message, error.code) from error
    except (urllib.error.URLError, OSError) as error:
        raise ControlError(f"the plane's control port {port} did not answer: {error}") from error
