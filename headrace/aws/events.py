"""Publishing Headrace's own events on an EventBridge bus (headrace.ports.EventPublisher): ingest's outcomes,
training's and deployments' failures, retrain decisions, idle teardowns."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import boto3

from headrace.aws.clients import lazy_client
from headrace.lambda_env import BusSettings, FunctionSettings
from headrace.ports import EventPublisher


class EventBridgePublisher:
    def __init__(self, events: Any, bus: str, source: str) -> None:
        self._events = events
        self._bus = bus
        self._source = source

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        entry = {"Source": self._source, "DetailType": detail_type, "Detail": json.dumps(detail)}
        response = self._events.put_events(Entries=[{**entry, "EventBusName": self._bus}])
        # PutEvents reports per-entry failures in a 200 response; an unchecked one is a silently lost event.
        if response.get("FailedEntryCount"):
            failed = response["Entries"][0]
            raise RuntimeError(
                f"EventBridge refused the '{detail_type}' event on bus '{self._bus}': "
                f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}"
            )


class NoEventBus:
    """The publisher of a function whose settings name no bus: its steps announce nothing, and one that
    tries is a wiring mistake, said as such."""

    def __init__(self, owner: str) -> None:
        self._owner = owner

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        raise RuntimeError(f"{self._owner} has no EVENT_BUS_NAME: it cannot publish '{detail_type}'")


def publisher_for(settings: FunctionSettings, session: boto3.Session | None = None) -> EventPublisher:
    """The function's publisher: on its settings' bus, with the deployment's source."""
    if isinstance(settings, BusSettings):
        return EventBridgePublisher(
            lazy_client("events", session), settings.event_bus_name, settings.names.event_source
        )
    return NoEventBus(type(settings).__name__)
