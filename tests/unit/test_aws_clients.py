"""Clients made without a session share one boto3 Session per AWS_* environment (a function's later clients
then skip loading the endpoint and service data again); another environment gets a Session of its own."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest

from headrace.aws import clients


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clients, "_SHARED_SESSIONS", {})
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def _sessions(monkeypatch: pytest.MonkeyPatch) -> list[boto3.Session]:
    made: list[boto3.Session] = []
    real = boto3.Session

    def session(*args: Any, **kwargs: Any) -> boto3.Session:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(boto3, "Session", session)
    return made


def test_lazy_clients_of_one_environment_share_one_session(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _sessions(monkeypatch)
    s3, dynamodb = clients.lazy_client("s3"), clients.lazy_client("dynamodb")
    assert made == []  # nothing is built before a call
    assert s3.meta.service_model.service_name == "s3"
    assert dynamodb.meta.service_model.service_name == "dynamodb"
    assert len(made) == 1


def test_another_environment_gets_its_own_session_with_its_own_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = _sessions(monkeypatch)
    first = clients.client("s3")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    second = clients.client("s3")
    assert len(made) == 2
    assert (first.meta.region_name, second.meta.region_name) == ("us-east-1", "eu-west-1")


def test_a_given_session_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    own = boto3.Session(region_name="ap-south-1")
    made = _sessions(monkeypatch)
    assert clients.client("s3", own).meta.region_name == "ap-south-1"
    assert made == []


def test_clients_made_from_threads_at_once_share_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _sessions(monkeypatch)
    lazy = [clients.lazy_client(service) for service in ("s3", "dynamodb", "sqs", "sns") * 2]
    threads = [threading.Thread(target=lambda c=c: c.meta) for c in lazy]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1
