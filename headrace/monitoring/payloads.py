"""The drift state machine's payloads. Its input is the schedule's (or `headrace drift`'s)
`{"trigger": ...}`; each step's output lands at the path named.

    $.window    Window         what the check reads
    $.partials  [PartialOut]   one per batch (the Map's iterations)
    $.check     CheckOutcome   Finish's output
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from headrace.drift import DriftStatus
from headrace.steps import Execution, NonEmpty, Payload

CheckStatus = DriftStatus | Literal["not_serving"]


class WindowRequest(Payload):
    model: NonEmpty
    execution: Execution
    trigger: str = "schedule"


class Window(Payload):
    model: NonEmpty
    check_id: NonEmpty
    since: datetime | None
    until: datetime
    # The serving version's reference: profile.json and features.json copied out of its model artifact.
    reference_prefix: str | None
    endpoint_config: str | None
    batches: list[list[str]]
    objects: int
    bytes: int
    trigger: str


class PartialRequest(Payload):
    model: NonEmpty
    check_id: NonEmpty
    index: Annotated[int, Field(ge=0)]
    reference_prefix: NonEmpty
    keys: list[str]


class PartialOut(Payload):
    key: NonEmpty
    rows: int


class FinishRequest(Payload):
    window: Window
    partials: list[PartialOut]


class CheckOutcome(Payload):
    model: str
    check_id: str
    status: CheckStatus
    rows: int
    drifted_features: list[str]
    result_uri: str | None
    report_uri: str | None
