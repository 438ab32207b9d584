"""Handlers and containers against moto in-process."""

from typing import Any

import pytest

import headrace.aws.clients
from tests.support.moto import fresh_moto, moto_account  # noqa: F401  (fixtures)


@pytest.fixture
def built_clients(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The services of every client headrace.aws.clients builds from now on, in order (cold-start tests:
    which clients a runtime builds at init, and which its first event does)."""
    built: list[str] = []
    made = headrace.aws.clients.client

    def counted(service: str, session: Any = None) -> Any:
        built.append(service)
        return made(service, session)

    monkeypatch.setattr(headrace.aws.clients, "client", counted)
    return built
