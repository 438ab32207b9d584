"""Publishing Headrace's own events on an EventBridge bus (ingest's outcomes, training's failures)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


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
