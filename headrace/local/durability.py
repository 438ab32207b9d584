"""Nothing the plane acknowledged is lost when it dies: state is committed before a change is answered.

Every request that may change state (`changes_state`) is answered only after a commit that began once its
change was made has reached the disk: the response waits for it (group commit: one commit covers every
request that finished before it began, so concurrent requests share its cost). The plane's own threads
change state too (training and endpoint status, alarm states, executions moving on); a commit also runs
every `interval_s` while the plane is up, writing only the services whose state changed.

The bound on loss, for a SIGKILL at any moment:
- an acknowledged request (its response sent): nothing; its change was on disk first;
- an unacknowledged one (in flight at the kill): its change is kept whole or lost whole, or, if a commit
  caught it midway, kept as far as moto had applied it;
- what the plane's own threads changed in the last `interval_s` (plus one commit's time) may be lost.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from headrace.local.state_store import StateStore

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("headrace.local")

COMMIT_INTERVAL_S = 1.0
# Operations that only read, by name prefix (AWS's own naming convention); anything else may write.
_READ_PREFIXES = (
    "Describe",
    "List",
    "Get",
    "Head",
    "BatchGet",
    "Query",
    "Scan",
    "Search",
    "Lookup",
    "Filter",
    "Validate",
    "Simulate",
    "Decrypt",
    "Encrypt",
    "Verify",
)
# Reads by name that change state: an activity worker's poll claims a task.
_WRITES_NAMED_AS_READS = frozenset({"GetActivityTask"})
_FORM = "application/x-www-form-urlencoded"


def _operation(environ: WSGIEnvironment) -> str | None:
    """The operation a request names: JSON protocols in X-Amz-Target, CBOR in the path, query in Action."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    path = str(environ.get("PATH_INFO", ""))
    if "/operation/" in path:  # smithy-rpc-v2-cbor: /service/<Service>/operation/<Operation>
        return path.rsplit("/", 1)[-1]
    action = parse_qs(str(environ.get("QUERY_STRING", ""))).get("Action")
    if action:
        return action[0]
    if str(environ.get("CONTENT_TYPE", "")).startswith(_FORM):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    return None


def changes_state(environ: WSGIEnvironment) -> bool:
    """Whether a request may change state: REST reads are GET/HEAD; RPC reads are named as reads."""
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    if method in ("GET", "HEAD", "OPTIONS"):
        return False
    operation = _operation(environ)
    if operation is None:
        return True  # a REST write (S3 PUT, Lambda POST) or something unknown: commit to be safe
    return operation in _WRITES_NAMED_AS_READS or not operation.startswith(_READ_PREFIXES)


class CommitFailed(RuntimeError):
    pass


class Committer:
    """A thread that runs `commit` when a request asks for one, and every `interval_s` regardless."""

    def __init__(self, commit: Callable[[], None], interval_s: float = COMMIT_INTERVAL_S) -> None:
        self._commit = commit
        self._interval_s = interval_s
        self._changed = threading.Condition()
        self._requested = 0  # tickets handed out
        self._committed = 0  # every ticket up to this one is on disk
        self._failure: Exception | None = None
        self._running = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="headrace-state-commits", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._changed:
            self._running = False
            self._changed.notify_all()
        if self._thread:
            self._thread.join()

    def durable(self) -> None:
        """Return once a commit begun after this call is on disk (at once while no committer runs).
        Raises CommitFailed when that commit failed."""
        with self._changed:
            if not self._running:
                return
            self._requested += 1
            ticket = self._requested
            self._changed.notify_all()
            while self._committed < ticket:  # the thread answers every ticket before it ends
                self._changed.wait()
            if self._failure is not None and self._committed >= ticket:
                raise CommitFailed(f"the local plane could not save its state: {self._failure}")

    def _run(self) -> None:
        while True:
            with self._changed:
                deadline = time.monotonic() + self._interval_s
                while self._running and self._requested == self._committed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._changed.wait(remaining)
                if not self._running and self._requested == self._committed:
                    return
                ticket = self._requested
            try:
                self._commit()
                failure = None
            except Exception as exc:
                log.exception("committing the local plane's state failed")
                failure = exc
            with self._changed:
                self._committed, self._failure = ticket, failure
                self._changed.notify_all()


def durable_requests(app: WSGIApplication, committer: Committer) -> WSGIApplication:
    """Wrap moto's WSGI app: a request that may change state is answered after its commit."""

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not changes_state(environ):
            return app(environ, start_response)
        answer: list[Any] = []
        written: list[bytes] = []

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            answer[:] = [status, headers, exc_info]
            return written.append

        result = app(environ, hold)
        try:
            body = b"".join([*written, *result])
        finally:
            close = getattr(result, "close", None)
            if close:
                close()
        try:
            committer.durable()
        except CommitFailed as failure:
            message = str(failure).encode()
            start_response("503 Service Unavailable", [("Content-Length", str(len(message)))])
            return [message]
        start_response(*answer)
        return [body]

    return wrapped


class DurableState:
    """The plane's state directory, restored on start and committed while the plane runs."""

    def __init__(self, state_dir: Path, interval_s: float = COMMIT_INTERVAL_S) -> None:
        self.store = StateStore(state_dir)
        self.committer = Committer(self.commit, interval_s)
        self._commit_lock = threading.Lock()
        self._blobs: set[str] = set()  # the S3 bodies the committed state names
        self.commits = 0
        self.skipped: list[str] = []

    def restore(self) -> bool:
        """Load the committed state into moto; False for a fresh directory. Raises StateMismatch."""
        from headrace.local.seams import snapshot

        referenced = snapshot.restore(self.store)
        if referenced is None:
            return False
        self.store.collect_blobs(referenced)  # bodies of objects deleted after the last commit
        return True

    def wsgi(self, app: WSGIApplication) -> WSGIApplication:
        return durable_requests(app, self.committer)

    def open(self) -> None:
        """Commit what start-up built, then commit continuously (until then, requests are not held)."""
        self.commit()
        self.committer.start()

    def commit(self) -> None:
        from headrace.local.seams import snapshot

        with self._commit_lock:
            pickled, referenced = snapshot.dump(self.store)
            self.skipped = [service for service in snapshot.SERVICES if service not in pickled]
            if self.store.commit(pickled):
                self.commits += 1
            if "s3" in pickled:  # only S3 keeps bodies as blobs
                self._blobs = referenced

    def close(self) -> list[str]:
        """The last commit (the plane has stopped changing state); returns the services it could not save."""
        self.committer.stop()
        self.commit()
        if not self.skipped:
            self.store.collect_blobs(self._blobs)
        return self.skipped
