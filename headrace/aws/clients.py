"""boto3 clients, all with one retry policy. boto3 honours AWS_ENDPOINT_URL, so the same code talks to AWS,
to the local plane's moto server, or to moto in-process."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

# Standard mode retries throttling and transient errors with backoff; 5 attempts ride out a burst.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


def client(service: str, session: boto3.Session | None = None) -> Any:
    return (session or boto3.Session()).client(service, config=CLIENT_CONFIG)


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
