"""The EventBridge envelope, as pydantic: the fields of Powertools' `EventBridgeModel`, without importing
`aws_lambda_powertools.utilities.parser`, whose package imports every event model it ships (~60-80 ms of a
cold start for the one envelope a handler reads)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventBridgeEvent(BaseModel):
    """An EventBridge event; a subclass narrows `detail-type`, `source` and `detail`."""

    model_config = ConfigDict(populate_by_name=True)

    version: str
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: str = Field(alias="detail-type")
    detail: Any
    replay_name: str | None = Field(None, alias="replay-name")
