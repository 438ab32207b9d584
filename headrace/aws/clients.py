"""boto3 clients, all with one retry policy. boto3 honours AWS_ENDPOINT_URL, so the same code talks to AWS,
to the local plane's moto server, or to moto in-process."""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

# Standard mode retries throttling and transient errors with backoff; 5 attempts ride out a burst.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


# Clients made without a session share one per AWS_* environment: a new Session loads the endpoint and service
# data again, so a function's second client cost 50-160 ms from a Session of its own against ~11-43 ms from
# the first one's (bench/RESULTS.md, cold start). Keyed by the environment so that a process whose AWS_*
# variables change (tests, the local plane) never gets a Session made for other credentials or endpoints.
_SHARED_SESSIONS: dict[tuple[tuple[str, str], ...], boto3.Session] = {}
_SHARED_MAX = 8
# A Session is not thread-safe (https://boto3.amazonaws.com/v1/documentation/api/latest/guide/session.html):
# clients are made from a shared one under this lock; the clients themselves are thread-safe.
_SHARED_LOCK = threading.RLock()


def _aws_environment() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))


def client(service: str, session: boto3.Session | None = None) -> Any:
    if session is not None:
        return session.client(service, config=CLIENT_CONFIG)
    key = _aws_environment()
    with _SHARED_LOCK:
        shared = _SHARED_SESSIONS.get(key)
        if shared is None:
            if len(_SHARED_SESSIONS) >= _SHARED_MAX:
                _SHARED_SESSIONS.clear()
            shared = _SHARED_SESSIONS[key] = boto3.Session()
        return shared.client(service, config=CLIENT_CONFIG)


class LazyClient:
    """A client made on its first call. A ports bundle holds every adapter its workflow has and each step
    uses a few: an unused client would still cost cold-start time (SageMaker's takes ~70 ms to build)."""

    def __init__(self, service: str, session: boto3.Session | None = None) -> None:
        self._service = service
        self._session = session
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = client(self._service, self._session)
        return getattr(self._client, name)


def lazy_client(service: str, session: boto3.Session | None = None) -> Any:
    return LazyClient(service, session)
