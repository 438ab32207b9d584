"""In-memory stand-ins for the shared ports (headrace.ports), used by every unit test that drives a domain
through its ports bundle. Each records what it was asked, so a test asserts on what happened."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from headrace.ports import ObjectSummary

R = TypeVar("R", bound=BaseModel)


@dataclass
class FakeEvents:
    published: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        self.published.append((detail_type, detail))


@dataclass
class FakeMetrics:
    counted: list[tuple[str, str]] = field(default_factory=list)

    def count(self, name: str, model: str) -> None:
        self.counted.append((name, model))


@dataclass
class FakeStore:
    """Objects by (bucket, key), each with its content type and when it was written."""

    # What `put` stamps as last_modified; tests that list objects by time set it.
    now: datetime = datetime(2026, 1, 1)
    objects: dict[tuple[str, str], tuple[bytes, str, datetime]] = field(default_factory=dict)

    def read(self, bucket: str, key: str) -> bytes:
        return self.objects[(bucket, key)][0]

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.objects[(bucket, key)] = (body, content_type, self.now)

    def exists(self, bucket: str, key: str) -> bool:
        return (bucket, key) in self.objects

    def list(self, bucket: str, prefix: str) -> list[ObjectSummary]:
        return [
            ObjectSummary(key=key, size=len(body), last_modified=at)
            for (b, key), (body, _, at) in self.objects.items()
            if b == bucket and key.startswith(prefix)
        ]


@dataclass
class MemoryOnce(Generic[R]):
    """Idempotency in a dict: the first result per key is replayed."""

    done: dict[str, R] = field(default_factory=dict)

    def __call__(self, key: Mapping[str, str], work: Callable[[], R]) -> R:
        token = json.dumps(dict(key), sort_keys=True)
        if token not in self.done:
            self.done[token] = work()
        return self.done[token]


def fixed_clock(at: datetime) -> Callable[[], datetime]:
    return lambda: at
